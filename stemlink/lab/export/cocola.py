"""Export a COCOLA encoder (family "cocola", task "score") for the engine, both formats.

    load_cocola(checkpoint) -> (CocolaNet in eval mode, checkpoint dict)
    export_cocola(net, exports_dir, name="cocola-small") -> ExportResult
    export_cocola_checkpoint(checkpoint, exports_dir)    (`stemlink export cocola`)

What is exported (`CocolaExport`), front end included:

    audio (B, T) at `sample_rate`  ->  (embedding (B, D), W (D, D))

so one file carries the whole model; `stemlink.engine.models.cocola.CocolaModel` serves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.engine.models.base import ModelSpec
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.cocola import CocolaNet, build_cocola

SIGNATURE = OnnxSignature(inputs=("audio",), outputs=("embedding", "similarity_w"), dynamic_axes={"audio": {0: "batch"}})


class CocolaExport(nn.Module):
    """What gets exported: audio (B, T) -> (encoder(audio) (B, D), W (D, D))."""

    def __init__(self, net: CocolaNet):
        super().__init__()
        self.encoder = net.encoder
        self.similarity = net.similarity

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(audio), self.similarity.weight * 1.0


def load_cocola(path: str | Path, map_location: str = "cpu") -> tuple[CocolaNet, dict[str, Any]]:
    """Checkpoint -> (CocolaNet in eval mode, the checkpoint dict)."""
    state = load_checkpoint(path, map_location=map_location, family="cocola")
    net = build_cocola(**state["config"])
    net.load_state_dict(state["model"])
    return net.eval(), state


@torch.no_grad()
def export_cocola(
    net: CocolaNet,
    exports_dir: str | Path,
    *,
    name: str = "cocola-small",
    version: str = "0.1.0",
    formats: Sequence[str] = ("onnx", "torchscript"),
    card: str | None = None,
    tolerance: float = 1e-3,
    default: bool = True,
    extra_config: dict[str, Any] | None = None,
) -> ExportResult:
    """Export `net` and register it (the default scorer unless `default=False`).

    Parity covers both outputs and a batch size not seen at export time; raises
    `ModelLoadError` when it exceeds `tolerance`."""
    cfg = net.config
    example = 0.1 * torch.randn(2, cfg.clip_samples, generator=torch.Generator().manual_seed(0))
    examples = [(example,), (torch.cat([example, -example, 0.5 * example]),)]
    spec = ModelSpec(
        name=name,
        version=version,
        family="cocola",
        tasks=("score",),
        format=formats[0],
        file="",
        sha256="",
        sample_rate=cfg.sample_rate,
        stems=(),
        window=cfg.clip_samples,
        card=card,
        config={**cfg.to_dict(), **(extra_config or {})},
    )
    return export_network(
        CocolaExport(net).eval(),
        examples,
        exports_dir,
        spec,
        onnx=SIGNATURE,
        formats=formats,
        tolerance=tolerance,
        default_for=("score",) if default else (),
    )


def export_cocola_checkpoint(
    checkpoint: str | Path, exports_dir: str | Path, *, name: str = "cocola-small", version: str = "0.1.0", card: str | None = None
) -> ExportResult:
    """Export a training checkpoint, recording its step in the manifest config."""
    net, state = load_cocola(checkpoint)
    return export_cocola(net, exports_dir, name=name, version=version, card=card, extra_config={"trained_steps": int(state.get("step", 0))})
