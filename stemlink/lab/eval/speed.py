"""Real-time factor of a task through the full engine path (`run_task`: apply layer,
resampling, stereo, overlap-add), for a synthetic host-rate region.

RTF = processing seconds / region seconds (lower is faster; <= 1 is faster than real time).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np


def region(seconds: float, sample_rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """A (channels, frames) float32 test region: decaying tones + noise bursts, peak < 1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    out = np.zeros((channels, n), dtype=np.float32)
    for c in range(channels):
        for f in (55.0 * (c + 1), 220.0, 330.0, 660.0):
            out[c] += (0.1 * np.sin(2 * np.pi * f * t) * np.exp(-(t % 0.5) * 4)).astype(np.float32)
        out[c] += (0.05 * rng.standard_normal(n) * np.exp(-(t % 0.25) * 30)).astype(np.float32)
    return out


def task_rtf(
    model: Any,
    task: str,
    audio: np.ndarray,
    sample_rate: int,
    params: Mapping[str, Any],
    *,
    context_stems: tuple[str, ...] = (),
    seed: int = 0,
) -> tuple[float, Any]:
    """-> (RTF, TaskResult) of one `run_task` call on `audio` (C, N) at `sample_rate`."""
    from stemlink.contract import TaskRequest
    from stemlink.engine.tasks import run_task

    inputs = {"mix": audio} if task == "separate" else {"context": audio}
    request = TaskRequest(task=task, sample_rate=sample_rate, inputs=inputs, params=dict(params), seed=seed, context_stems=context_stems)
    t0 = time.perf_counter()
    result = run_task(model, request)
    return (time.perf_counter() - t0) / (audio.shape[-1] / sample_rate), result
