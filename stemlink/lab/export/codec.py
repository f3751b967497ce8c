"""Export an STFT codec (family "codec") for the engine: `NAME.encoder` and `NAME.decoder`, one
network file each, parity-checked and registered (`stemlink export codec`).

    load_codec(checkpoint) -> (STFTCodec in eval mode, STFTCodecConfig, checkpoint dict)   EMA weights
    export_codec(checkpoint, exports_dir, name="stft-codec") -> {"encoder": ExportResult, "decoder": ExportResult}

TorchScript only by default: the two files are ~26 MB together and exports/ has a size budget;
`formats=("onnx", "torchscript")` writes and checks both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, component_spec, export_network
from stemlink.lab.nn.stft_codec import STFTCodec, STFTCodecConfig

FAMILY = "codec"
SIGNATURES = {
    "encoder": OnnxSignature(inputs=("features",), outputs=("latent",), dynamic_axes={"features": {0: "batch", 2: "frames"}}),
    "decoder": OnnxSignature(inputs=("latent",), outputs=("head",), dynamic_axes={"latent": {0: "batch", 2: "latents"}}),
}


def load_codec(checkpoint: str | Path, *, ema: bool = True) -> tuple[STFTCodec, STFTCodecConfig, dict[str, Any]]:
    state = load_checkpoint(checkpoint, family=FAMILY)
    config = STFTCodecConfig.from_dict(state["config"])
    codec = STFTCodec(config)
    codec.load_state_dict(state["ema" if ema and "ema" in state else "model"])
    return codec.eval(), config, state


def export_codec_network(
    codec: STFTCodec,
    exports_dir: str | Path,
    *,
    name: str = "stft-codec",
    version: str = "1",
    formats: Sequence[str] = ("torchscript",),
    card: str | None = None,
    extra_config: dict[str, Any] | None = None,
    parity_tol: float = 1e-3,
    parts: Sequence[str] = ("encoder", "decoder"),
) -> dict[str, ExportResult]:
    """`parts=("decoder",)`: register a new decoder and leave the encoder entry (and the latent
    space DiTs were trained on) as it is."""
    config = codec.config
    g = torch.Generator().manual_seed(0)
    audio = [
        torch.randn(2, config.channels, config.samples_per_latent * 6, generator=g) * 0.1,
        torch.randn(1, config.channels, 5000, generator=g) * 0.01,
    ]
    with torch.no_grad():
        features = [(codec.geometry.features(a),) for a in audio]
        latents = [(codec.encoder(f[0]),) for f in features]
    results = {}
    for part, module, examples in (("encoder", codec.encoder, features), ("decoder", codec.decoder, latents)):
        if part not in parts:
            continue
        spec = component_spec(
            name, part, version=version, family=FAMILY, fmt=formats[0], sample_rate=config.sample_rate,
            window=config.samples_per_latent, card=card, config={**config.to_dict(), **(extra_config or {})},
        )  # fmt: skip
        results[part] = export_network(module, examples, exports_dir, spec, onnx=SIGNATURES[part], formats=formats, tolerance=parity_tol)
    return results


def export_codec(checkpoint: str | Path, exports_dir: str | Path, **kwargs: Any) -> dict[str, ExportResult]:
    codec, _, state = load_codec(checkpoint)
    extra: dict[str, Any] = {"train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)}
    if state.get("init"):
        extra["train_init"] = str(state["init"])
    return export_codec_network(codec, exports_dir, extra_config=extra, **kwargs)
