"""Task requests and results, and `run_task`: one task on one loaded model, at the host rate.

This is the seam between the server (which decodes wire messages into a `TaskRequest`) and
the apply layer (which runs a model's capability over a region of any rate, length and channel
count). Audio here is numpy float32, channels-first, at the host rate:

    inputs[name]: (C, N)     outputs.stems[name]: (C, N)   (same C and N as the request)

Inputs per task: separate / extract / remove -> "mix"; accompany -> "context";
score -> "a" and "b"; generate -> none (`frames` and `channels` give the output shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class TaskRequest:
    task: str
    sample_rate: int  # host rate of inputs and outputs
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    model: str | None = None  # None -> the registry's default model for the task
    params: Mapping[str, Any] = field(default_factory=dict)  # validated by the model family
    seed: int = 0
    stems: tuple[str, ...] = ()  # stems wanted (accompany/extract/remove/generate); () -> model default
    context_stems: tuple[str, ...] = ()  # accompany: which stems the context contains
    candidates: int = 1  # accompany: generate N, return the best by COCOLA score
    frames: int = 0  # generate: output length at the host rate
    channels: int = 0  # generate: output channel count


@dataclass
class TaskResult:
    task: str
    model: str
    model_version: str
    model_sha256: str
    stems: dict[str, np.ndarray]  # name -> (C, N) at the host rate
    scores: dict[str, float] = field(default_factory=dict)  # score task, accompany candidates
    params: dict[str, Any] = field(default_factory=dict)  # the parameters actually used
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # timings, window count, ...
