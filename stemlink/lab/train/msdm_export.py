"""Export a trained MSDM checkpoint (EMA weights) as the engine's denoiser, both formats.

    export_msdm(checkpoint, exports_dir, name="msdm-small") -> MSDMExport

The exported graph is the preconditioned denoiser D(x (B, N, T), sigma (B,)) -> (B, N, T)
with dynamic batch and time axes (T a multiple of the U-Net hop). Both files are reloaded
through the engine runtime and compared with the torch module (max abs diff) before they
are registered in `exports_dir/manifest.json`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from stemlink.lab.export import check_parity, export_onnx, export_torchscript, register
from stemlink.engine.models.base import ModelSpec
from stemlink.lab.nn.config import MSDMConfig, build_denoiser
from stemlink.errors import ModelLoadError

TASKS = ("separate", "accompany", "generate")
SUFFIX = {"onnx": "onnx", "torchscript": "pt"}


@dataclass
class MSDMExport:
    specs: list[ModelSpec]
    parity: dict[str, float]  # format -> max abs diff vs torch
    step: int
    wall_time: float


def load_denoiser(checkpoint: str | Path, *, ema: bool = True) -> tuple[torch.nn.Module, MSDMConfig, dict[str, Any]]:
    """Checkpoint -> (denoiser in eval mode, its config, the checkpoint dict)."""
    from stemlink.lab.train.loop import load_checkpoint

    state = load_checkpoint(checkpoint)
    if state.get("family") != "msdm":
        raise ModelLoadError(f"checkpoint {str(checkpoint)!r} is family {state.get('family')!r}, not 'msdm'", field="checkpoint")
    config = MSDMConfig.from_dict(state["config"])
    model = build_denoiser(config)
    model.load_state_dict(state["ema" if ema else "model"])
    return model.eval(), config, state


def export_denoiser(model: torch.nn.Module, config: MSDMConfig, exports_dir: str | Path, *, name: str,
                    version: str = "1", formats: Sequence[str] = ("onnx", "torchscript"),
                    defaults: Mapping[str, Any] | None = None, card: str | None = None,
                    extra_config: Mapping[str, Any] | None = None, parity_tol: float = 1e-3,
                    default_for: Sequence[str] = ()) -> tuple[list[ModelSpec], dict[str, float]]:
    """Export `model` in each format, check parity, register. Raises if parity > parity_tol."""
    exports_dir = Path(exports_dir)
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(2, len(config.stems), config.window, generator=g) * 0.3, torch.tensor([0.5, 0.01]))
    specs, parity = [], {}
    for fmt in formats:
        path = exports_dir / f"{name}.{SUFFIX[fmt]}"
        if fmt == "onnx":
            export_onnx(model, example, path, input_names=["x", "sigma"], output_names=["denoised"],
                        dynamic_axes={"x": {0: "batch", 2: "time"}, "sigma": {0: "batch"}})
        else:
            export_torchscript(model, example, path)
        parity[fmt] = check_parity(model, path, fmt, example)
        if not parity[fmt] <= parity_tol:
            raise ModelLoadError(f"{path.name}: parity check failed, max abs diff {parity[fmt]:.3g} > {parity_tol}", field="parity")
        spec = ModelSpec(name=name, version=version, family="msdm", tasks=TASKS, format=fmt, file=path.name, sha256="0" * 64,
                         sample_rate=config.sample_rate, stems=config.stems, window=config.window, delay=0, card=card,
                         config={**config.to_dict(), "hop": config.hop, **dict(extra_config or {})},
                         defaults=dict(defaults or {}))
        specs.append(register(exports_dir, spec, default_for=default_for if fmt == formats[0] else ()))
    return specs, parity


def export_msdm(checkpoint: str | Path, exports_dir: str | Path, *, name: str = "msdm-small", **kwargs: Any) -> MSDMExport:
    """Export a training checkpoint's EMA denoiser (see `export_denoiser` for kwargs)."""
    model, config, state = load_denoiser(checkpoint)
    extra = {"train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)}
    if state.get("init"):  # the run continued from earlier weights (`stemlink train --init`)
        extra["train_init"] = str(state["init"])
    specs, parity = export_denoiser(model, config, exports_dir, name=name, extra_config=extra, **kwargs)
    return MSDMExport(specs, parity, int(state["step"]), float(state["wall_time"]))
