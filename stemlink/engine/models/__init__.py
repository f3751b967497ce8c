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
}

__all__ = ["Accompanist", "EngineModel", "FAMILIES", "Generator", "ModelSpec", "ProgressCallback", "Scorer", "Separator"]
