"""Export a CLAP bridge (family "bridge") for the engine (`stemlink export bridge`): the EDM denoiser
D(x (B, D), sigma (B,), text (B, D), has_text (B,)) -> (B, D), parity-checked and registered;
served by `stemlink.engine.models.bridge.BridgeModel`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.bridge import BridgeConfig, build_bridge

SIGNATURE = OnnxSignature(
    inputs=("x", "sigma", "text", "has_text"),
    outputs=("denoised",),
    dynamic_axes={"x": {0: "batch"}, "sigma": {0: "batch"}, "text": {0: "batch"}, "has_text": {0: "batch"}},
)


class BridgeGraph(torch.nn.Module):
    def __init__(self, denoiser: torch.nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x, sigma, text, has_text):  # noqa: ANN001, ANN201
        return self.denoiser(x, sigma, text, has_text)


def export_bridge(
    checkpoint: str | Path,
    exports_dir: str | Path,
    *,
    name: str = "clap-bridge",
    version: str = "1",
    formats: Sequence[str] = ("torchscript",),
    card: str | None = None,
) -> ExportResult:
    state = load_checkpoint(checkpoint, family="bridge")
    config = BridgeConfig.from_dict(state["config"])
    model = build_bridge(config)
    model.load_state_dict(state["ema" if "ema" in state else "model"])
    g = torch.Generator().manual_seed(0)

    def example(b: int) -> tuple[torch.Tensor, ...]:
        return (
            torch.randn(b, config.embed_dim, generator=g) * 0.1,
            torch.rand(b, generator=g) + 0.01,
            torch.randn(b, config.embed_dim, generator=g) * 0.1,
            torch.ones(b),
        )

    spec = ModelSpec(
        name=name,
        version=version,
        family="bridge",
        tasks=(),
        format=formats[0],
        file="",
        sha256="",
        sample_rate=44100,  # unused: the bridge maps embeddings, not audio
        stems=(),
        window=1,
        card=card,
        config={**config.to_dict(), "train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)},
    )
    return export_network(
        BridgeGraph(model.eval()), [example(3), example(1)], exports_dir, spec, onnx=SIGNATURE, formats=formats, tolerance=1e-4
    )
