"""The "echo" debug family: a tiny exported network every serving test and benchmark uses.

The network (`stemlink.lab.nn.echo.EchoNet`) multiplies a mono window by fixed per-stem
gains that sum to exactly 1 and optionally shifts it right by `delay` samples (a declared
latency the apply layer must compensate):  (B, T) -> (B, S, T),
stems[b, s, t] = gains[s] * x[b, t - delay].

`EchoModel` implements every capability with it:
- Separator: the stems above, so (after delay compensation) the stems sum to the mix
  (the apply layer derives extract/remove from it).
- Accompanist: the same on the context sub-mix.
- Generator: deterministic noise drawn from the request's `torch.Generator`, through the net.
- Scorer: 8 segment RMS values of the (delayed) input as embedding, cosine similarity.

Debug parameters (validated by `parse_params`): `steps` (network calls per window, progress
reported after each) and `sleep` (seconds per step) simulate a slow diffusion sampler so tests
can cancel mid-job, fill the queue or kill the engine mid-job.

`stemlink.lab.export.echo.build_echo_export(dir, ...)` exports the network to ONNX and/or
TorchScript and writes the manifest entries, so tests never need a trained checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from stemlink.contract import MAX_STEPS
from stemlink.engine.models.base import Accompanist, EngineModel, Generator, ModelSpec, ProgressCallback, Scorer, Separator
from stemlink.errors import InvalidInput

EMBED_SEGMENTS = 8


@dataclass(frozen=True)
class EchoParams:
    steps: int = 1  # network calls per window (progress after each)
    sleep: float = 0.0  # seconds slept per step (simulated slow sampler)


class EchoModel(EngineModel, Separator, Accompanist, Generator, Scorer):
    """Debug model over an exported echo network (any runtime: ONNX or TorchScript)."""

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.network = network

    def parse_params(self, task: str, params: Mapping[str, Any]) -> EchoParams:
        merged = {**dict(self.spec.defaults), **dict(params or {})}
        unknown = set(merged) - {"steps", "sleep"}
        if unknown:
            raise InvalidInput(
                f"model {self.name!r}: unknown parameter(s) {sorted(unknown)}; allowed: steps, sleep", field=f"params.{sorted(unknown)[0]}"
            )
        steps = merged.get("steps", 1)
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            raise InvalidInput(
                f"model {self.name!r}: params.steps must be an integer in 1..{MAX_STEPS}, got {steps!r}", field="params.steps"
            )
        sleep = merged.get("sleep", 0.0)
        if not isinstance(sleep, (int, float)) or isinstance(sleep, bool) or not (math.isfinite(sleep) and 0 <= sleep <= 10):
            raise InvalidInput(
                f"model {self.name!r}: params.sleep must be a number of seconds in 0..10, got {sleep!r}", field="params.sleep"
            )
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

    def accompany(
        self, context: torch.Tensor, *, context_stems: Sequence[str], params: Any, generator: torch.Generator, callback: ProgressCallback
    ) -> torch.Tensor:
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
