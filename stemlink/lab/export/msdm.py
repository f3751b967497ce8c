"""Export an MSDM denoiser (family "msdm") for the engine, both formats.

    load_denoiser(checkpoint) -> (denoiser, MSDMConfig, checkpoint dict)   EMA weights by default
    export_denoiser(model, config, exports_dir, name=...) -> ExportResult
    export_msdm(checkpoint, exports_dir, name="msdm-small") -> MSDMExport  (`stemlink export msdm`)

The exported graph is the preconditioned denoiser D(x (B, N, T), sigma (B,)) -> (B, N, T)
with dynamic batch and time axes (T a multiple of the U-Net hop), served by
`stemlink.engine.models.msdm` for its `MSDM_TASKS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.msdm import MSDM_TASKS
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.config import MSDMConfig, build_denoiser

SIGNATURE = OnnxSignature(inputs=("x", "sigma"), outputs=("denoised",), dynamic_axes={"x": {0: "batch", 2: "time"}, "sigma": {0: "batch"}})


@dataclass
class MSDMExport:
    specs: list[ModelSpec]
    parity: dict[str, float]  # format -> max abs diff vs torch
    step: int
    wall_time: float


def load_denoiser(checkpoint: str | Path, *, ema: bool = True) -> tuple[torch.nn.Module, MSDMConfig, dict[str, Any]]:
    """Checkpoint -> (denoiser in eval mode, its config, the checkpoint dict)."""
    state = load_checkpoint(checkpoint, family="msdm")
    config = MSDMConfig.from_dict(state["config"])
    model = build_denoiser(config)
    model.load_state_dict(state["ema" if ema else "model"])
    return model.eval(), config, state


def export_denoiser(
    model: torch.nn.Module,
    config: MSDMConfig,
    exports_dir: str | Path,
    *,
    name: str,
    version: str = "1",
    formats: Sequence[str] = ("onnx", "torchscript"),
    defaults: Mapping[str, Any] | None = None,
    card: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
    parity_tol: float = 1e-3,
    default_for: Sequence[str] = (),
) -> ExportResult:
    """Export `model` in each format, check parity, register. Raises if parity > parity_tol."""
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(2, len(config.stems), config.window, generator=g) * 0.3, torch.tensor([0.5, 0.01]))
    spec = ModelSpec(
        name=name,
        version=version,
        family="msdm",
        tasks=MSDM_TASKS,
        format=formats[0],
        file="",
        sha256="",
        sample_rate=config.sample_rate,
        stems=config.stems,
        window=config.window,
        delay=0,
        card=card,
        config={**config.to_dict(), "hop": config.hop, **dict(extra_config or {})},
        defaults=dict(defaults or {}),
    )
    return export_network(
        model, [example], exports_dir, spec, onnx=SIGNATURE, formats=formats, tolerance=parity_tol, default_for=default_for
    )


def export_msdm(checkpoint: str | Path, exports_dir: str | Path, *, name: str = "msdm-small", **kwargs: Any) -> MSDMExport:
    """Export a training checkpoint's EMA denoiser (see `export_denoiser` for kwargs)."""
    model, config, state = load_denoiser(checkpoint)
    extra: dict[str, Any] = {"train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)}
    if state.get("init"):  # the run continued from earlier weights (`stemlink train --init`)
        extra["train_init"] = str(state["init"])
    result = export_denoiser(model, config, exports_dir, name=name, extra_config=extra, **kwargs)
    return MSDMExport(result.specs, result.parity, int(state["step"]), float(state["wall_time"]))
