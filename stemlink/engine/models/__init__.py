"""Engine capabilities (base) and their implementations, one module per model family."""

from stemlink.engine.models.base import (
    Accompanist,
    EngineModel,
    Generator,
    ModelSpec,
    ProgressCallback,
    Scorer,
    Separator,
)

# Model family -> "module:Class", imported lazily by the registry (`stemlink.engine.registry`).
FAMILIES = {
    "echo": "stemlink.engine.models.echo:EchoModel",
    "msdm": "stemlink.engine.models.msdm:MSDMModel",
    "cocola": "stemlink.engine.models.cocola:CocolaModel",
    "bandsplit": "stemlink.engine.models.bandsplit:BandSplitModel",
    "codec": "stemlink.engine.models.codec:CodecModel",
    "riff": "stemlink.engine.models.riff:RiffModel",
    "clap": "stemlink.engine.models.clap:ClapEncoderModel",
    "bridge": "stemlink.engine.models.bridge:BridgeModel",
    "gmsdi": "stemlink.engine.models.gmsdi:GMSDIModel",
    # user-supplied separators (`stemlink models add --family ...`, stemlink/engine/user_models.py)
    "demucs": "stemlink.engine.models.demucs:DemucsModel",
    "mdx-onnx": "stemlink.engine.models.mdx_onnx:MdxOnnxModel",
    "roformer": "stemlink.engine.models.roformer:RoformerModel",
}

__all__ = ["Accompanist", "EngineModel", "FAMILIES", "Generator", "ModelSpec", "ProgressCallback", "Scorer", "Separator"]
