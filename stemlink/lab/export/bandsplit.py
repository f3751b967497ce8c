"""Export a band-split separator (family "bandsplit") for the engine, both formats.

    load_bandsplit(checkpoint) -> (network, BandSplitConfig, checkpoint dict)   EMA weights by default
    export_bandsplit(checkpoint, exports_dir, name="bandsplit-small") -> ExportResult  (`stemlink export bandsplit`)

The exported graph is the mask network `spec (B, 2, F, N) -> masks (B, S, F, N)` with dynamic
batch and frame axes; STFT/iSTFT are engine code (`stemlink.engine.models.bandsplit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.bandsplit import BANDSPLIT_TASKS
from stemlink.engine.models.base import ModelSpec
from stemlink.engine.spectral import as_channels, stft
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.bandsplit import BandSplitConfig, BandSplitNet

FAMILY = "bandsplit"
SIGNATURE = OnnxSignature(inputs=("spec",), outputs=("masks",), dynamic_axes={"spec": {0: "batch", 3: "frames"}})


def load_bandsplit(checkpoint: str | Path, *, ema: bool = True) -> tuple[BandSplitNet, BandSplitConfig, dict[str, Any]]:
    """Checkpoint (a run's last.pt or a curve snapshot) -> (network in eval mode, config, checkpoint dict)."""
    state = load_checkpoint(checkpoint, family=FAMILY)
    config = BandSplitConfig.from_dict(state["config"])
    net = BandSplitNet(config)
    net.load_state_dict(state["ema" if ema and "ema" in state else "model"])
    return net.eval(), config, state


def export_network_of(
    net: BandSplitNet,
    config: BandSplitConfig,
    exports_dir: str | Path,
    *,
    name: str,
    version: str = "1",
    formats: Sequence[str] = ("onnx", "torchscript"),
    card: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
    default_for: Sequence[str] = (),
    parity_tol: float = 1e-4,
) -> ExportResult:
    """Export `net` in each format with a parity check on two shapes, and register it."""
    g = torch.Generator().manual_seed(0)
    examples = [
        (as_channels(stft(torch.randn(2, config.window, generator=g) * 0.1, config.n_fft, config.hop)),),
        (as_channels(stft(torch.randn(1, config.window // 2 + 77, generator=g) * 0.01, config.n_fft, config.hop)),),
    ]
    spec = ModelSpec(
        name=name,
        version=version,
        family=FAMILY,
        tasks=BANDSPLIT_TASKS,
        format=formats[0],
        file="",
        sha256="",
        sample_rate=config.sample_rate,
        stems=config.stems,
        window=config.window,
        delay=0,
        card=card,
        config={**config.to_dict(), **dict(extra_config or {})},
    )
    return export_network(net, examples, exports_dir, spec, onnx=SIGNATURE, formats=formats, tolerance=parity_tol, default_for=default_for)


def export_bandsplit(checkpoint: str | Path, exports_dir: str | Path, *, name: str = "bandsplit-small", **kwargs: Any) -> ExportResult:
    """Export a checkpoint's EMA network (see `export_network_of` for kwargs)."""
    net, config, state = load_bandsplit(checkpoint)
    extra: dict[str, Any] = {"train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)}
    if state.get("init"):
        extra["train_init"] = str(state["init"])
    return export_network_of(net, config, exports_dir, name=name, extra_config=extra, **kwargs)
