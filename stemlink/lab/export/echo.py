"""Export the "echo" debug network (`stemlink.lab.nn.echo.EchoNet`) so that tests and
benchmarks get a served model without a trained checkpoint.

    build_echo_export(directory, sample_rate=16000, window=16384, delay=0) -> directory

ONNX with dynamic batch and time axes, TorchScript scripted (shape-generic). The manifest
entry serves every task (`ECHO_TASKS`); `defaults` become the entry's default params
(`steps`, `sleep`: see `stemlink.engine.models.echo`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.lab.export.network import OnnxSignature, export_network
from stemlink.lab.nn.echo import ECHO_GAINS, ECHO_STEMS, EchoNet

ECHO_TASKS = ("separate", "extract", "remove", "accompany", "generate", "score")
SIGNATURE = OnnxSignature(
    inputs=("audio",), outputs=("stems",), dynamo=False, dynamic_axes={"audio": {0: "batch", 1: "time"}, "stems": {0: "batch", 2: "time"}}
)


def build_echo_export(
    directory: str | Path,
    *,
    sample_rate: int = 16000,
    window: int = 16384,
    delay: int = 0,
    formats: Sequence[str] = ("onnx", "torchscript"),
    name: str = "echo",
    stems: Sequence[str] = ECHO_STEMS,
    defaults: Mapping[str, Any] | None = None,
    tasks: Sequence[str] = ECHO_TASKS,
) -> Path:
    """Export an `EchoNet` into `directory` and register it there. Returns `directory`.

    `stems` get gains that sum to 1 (the default 4 stems use `ECHO_GAINS`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gains = ECHO_GAINS if tuple(stems) == ECHO_STEMS else tuple(1.0 / len(stems) for _ in stems)
    example = (0.1 * torch.randn(1, window, generator=torch.Generator().manual_seed(0)),)
    spec = ModelSpec(
        name=name,
        version="1",
        family="echo",
        tasks=tuple(tasks),
        format=formats[0] if formats else "onnx",
        file="",
        sha256="",
        sample_rate=sample_rate,
        stems=tuple(stems),
        window=window,
        delay=delay,
        card=None,
        config={"gains": list(gains)},
        defaults=dict(defaults or {}),
    )
    export_network(EchoNet(gains, delay).eval(), [example], directory, spec, onnx=SIGNATURE, formats=formats, script=True, tolerance=1e-6)
    return directory
