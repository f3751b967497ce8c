"""Export a GMSDI denoiser (family "gmsdi", `stemlink export gmsdi`): D(x (N, 1, T), sigma (N,),
tags (N, V)) -> (N, 1, T), dynamic batch and time, parity-checked and registered; the manifest's
`stems` are the tag vocabulary; served by `stemlink.engine.models.gmsdi.GMSDIModel`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.gmsdi import GMSDI_TASKS, parse_gmsdi_params
from stemlink.engine.params import task_defaults
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.gmsdi import GMSDIConfig, build_gmsdi_denoiser

SIGNATURE = OnnxSignature(
    inputs=("x", "sigma", "tags"),
    outputs=("denoised",),
    dynamic_axes={"x": {0: "batch", 2: "time"}, "sigma": {0: "batch"}, "tags": {0: "batch"}},
)


class TagGraph(torch.nn.Module):
    def __init__(self, denoiser: torch.nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x, sigma, tags):  # noqa: ANN001, ANN201
        return self.denoiser(x, sigma, tags)


def export_gmsdi(
    checkpoint: str | Path,
    exports_dir: str | Path,
    *,
    name: str = "gmsdi-small",
    version: str = "1",
    formats: Sequence[str] = ("onnx", "torchscript"),
    card: str | None = None,
    default_for: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> ExportResult:
    """`defaults`: the manifest's parameter defaults, optionally a table per task (validated here)."""
    defaults = dict(defaults or {})
    for task in GMSDI_TASKS:
        parse_gmsdi_params(task_defaults(defaults, task, GMSDI_TASKS), model=name)
    state = load_checkpoint(checkpoint, family="gmsdi")
    config = GMSDIConfig.from_dict(state["config"])
    model = build_gmsdi_denoiser(config)
    model.load_state_dict(state["ema" if "ema" in state else "model"])
    g = torch.Generator().manual_seed(0)
    v = len(config.tags)

    def example(b: int, n: int) -> tuple[torch.Tensor, ...]:
        return (torch.randn(b, 1, n, generator=g) * 0.2, torch.rand(b, generator=g) + 0.01, (torch.rand(b, v, generator=g) > 0.5).float())

    spec = ModelSpec(
        name=name,
        version=version,
        family="gmsdi",
        tasks=GMSDI_TASKS,
        format=formats[0],
        file="",
        sha256="",
        sample_rate=config.sample_rate,
        stems=config.tags,
        window=config.window,
        card=card,
        defaults=defaults,
        config={
            **config.to_dict(),
            "hop": config.hop,
            "train_step": int(state["step"]),
            "train_wall_seconds": round(float(state["wall_time"]), 1),
        },
    )
    examples = [example(2, config.window), example(1, config.hop * 3)]
    return export_network(TagGraph(model.eval()), examples, exports_dir, spec, onnx=SIGNATURE, formats=formats, default_for=default_for)
