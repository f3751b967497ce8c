"""The "echo" debug family: a tiny exported network every serving test and benchmark uses.

The network multiplies a mono window by fixed per-stem gains that sum to exactly 1 and
optionally shifts it right by `delay` samples (a declared latency the apply layer must
compensate):  (B, T) -> (B, S, T),  stems[b, s, t] = gains[s] * x[b, t - delay].

`EchoModel` implements every capability with it:
- Separator: the stems above, so (after delay compensation) the stems sum to the mix
  (the apply layer derives extract/remove from it).
- Accompanist: the same on the context sub-mix.
- Generator: deterministic noise drawn from the request's `torch.Generator`, through the net.
- Scorer: 8 segment RMS values of the (delayed) input as embedding, cosine similarity.

Debug parameters (validated by `parse_params`): `steps` (network calls per window, progress
reported after each) and `sleep` (seconds per step) simulate a slow diffusion sampler so tests
can cancel mid-job, fill the queue or kill the engine mid-job.

`build_echo_export(dir, ...)` exports the network to ONNX and/or TorchScript and writes the
manifest entries, so tests never need a trained checkpoint.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from stemlink.engine.models.base import Accompanist, EngineModel, Generator, ModelSpec, ProgressCallback, Scorer, Separator
from stemlink.errors import InvalidInput
from stemlink.limits import MAX_STEPS

ECHO_STEMS = ("bass", "drums", "guitar", "piano")
ECHO_GAINS = (0.125, 0.25, 0.25, 0.375)  # dyadic, sum exactly 1.0
ECHO_TASKS = ("separate", "extract", "remove", "accompany", "generate", "score")
EMBED_SEGMENTS = 8


class EchoNet(nn.Module):
    """(B, T) -> (B, S, T): per-stem gains of the input delayed by `delay` samples."""

    def __init__(self, gains: Sequence[float] = ECHO_GAINS, delay: int = 0):
        super().__init__()
        self.delay = int(delay)
        self.register_buffer("gains", torch.tensor(list(gains), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pad(x, (self.delay, 0))[:, : x.shape[-1]]
        return y[:, None, :] * self.gains[None, :, None]


@dataclass(frozen=True)
class EchoParams:
    steps: int = 1  # network calls per window (progress after each)
    sleep: float = 0.0  # seconds slept per step (simulated slow sampler)


class EchoModel(EngineModel, Separator, Accompanist, Generator, Scorer):
    """Debug model over an exported `EchoNet` (any runtime: ONNX or TorchScript)."""

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.network = network

    def parse_params(self, task: str, params: Mapping[str, Any]) -> EchoParams:
        merged = {**dict(self.spec.defaults), **dict(params or {})}
        unknown = set(merged) - {"steps", "sleep"}
        if unknown:
            raise InvalidInput(f"model {self.name!r}: unknown parameter(s) {sorted(unknown)}; allowed: steps, sleep", field=f"params.{sorted(unknown)[0]}")
        steps = merged.get("steps", 1)
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            raise InvalidInput(f"model {self.name!r}: params.steps must be an integer in 1..{MAX_STEPS}, got {steps!r}", field="params.steps")
        sleep = merged.get("sleep", 0.0)
        if not isinstance(sleep, (int, float)) or isinstance(sleep, bool) or not (math.isfinite(sleep) and 0 <= sleep <= 10):
            raise InvalidInput(f"model {self.name!r}: params.sleep must be a number of seconds in 0..10, got {sleep!r}", field="params.sleep")
        return EchoParams(steps=steps, sleep=float(sleep))

    def _run(self, x: torch.Tensor, params: EchoParams | None, callback: ProgressCallback) -> torch.Tensor:
        params = params or EchoParams()
        out = x
        for step in range(params.steps):
            out = self.network(x)
            if params.sleep:
                time.sleep(params.sleep)
            callback(step + 1, params.steps)
        return out

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) -> (B, S, T)."""
        return self._run(mix, params, callback)

    def accompany(self, context: torch.Tensor, *, context_stems: Sequence[str], params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) -> (B, S, T)."""
        return self._run(context, params, callback)

    def generate(self, batch: int, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """-> (B, S, T): seeded noise (std 0.1) through the network."""
        noise = 0.1 * torch.randn(batch, self.window, generator=generator)
        return self._run(noise, params, callback)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, 8) segment RMS of the network's stem sum."""
        y = self.network(audio).sum(dim=1)
        usable = (y.shape[-1] // EMBED_SEGMENTS) * EMBED_SEGMENTS
        segments = y[:, :usable].reshape(y.shape[0], EMBED_SEGMENTS, -1)
        return segments.pow(2).mean(dim=-1).add(1e-12).sqrt()

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> (B,) cosine similarity."""
        return nn.functional.cosine_similarity(a, b, dim=-1)


def _export_onnx(net: nn.Module, path: Path, window: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, window),), str(path), dynamo=False, opset_version=17,
            input_names=["audio"], output_names=["stems"],
            dynamic_axes={"audio": {0: "batch", 1: "time"}, "stems": {0: "batch", 2: "time"}},
        )


def _export_torchscript(net: nn.Module, path: Path, window: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(net).save(str(path))


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
    from stemlink.engine.registry import add_to_manifest, sha256_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gains = ECHO_GAINS if tuple(stems) == ECHO_STEMS else tuple(1.0 / len(stems) for _ in stems)
    net = EchoNet(gains, delay).eval()
    exporters = {"onnx": (_export_onnx, "onnx"), "torchscript": (_export_torchscript, "pt")}
    for fmt in formats:
        if fmt not in exporters:
            raise InvalidInput(f"format {fmt!r} is not supported; allowed: {', '.join(exporters)}", field="formats")
        export, suffix = exporters[fmt]
        path = directory / f"{name}.{suffix}"
        export(net, path, window)
        spec = ModelSpec(
            name=name, version="1", family="echo", tasks=tuple(tasks), format=fmt, file=path.name,
            sha256=sha256_file(path), sample_rate=sample_rate, stems=tuple(stems), window=window, delay=delay,
            card=None, config={"gains": list(gains)}, defaults=dict(defaults or {}),
        )
        add_to_manifest(directory, spec)
    return directory
