"""Training utilities shared by every model family: distributed init, EMA, a JSONL loss log
and a wall-time/step budget (checkpoints: `stemlink.lab.checkpoints`).

Distributed training follows torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT): gloo on CPU, nccl on CUDA. Without those variables everything
runs as a single process.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str | None) -> torch.device:
    """None -> cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's env vars (no-op when WORLD_SIZE <= 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev)


def agreed_stop(stop: bool, world_size: int) -> bool:
    """Every rank stops at the same step (a wall-time budget can differ per process)."""
    if world_size <= 1:
        return stop
    flag = torch.tensor([1 if stop else 0])
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def scheduled_lr(step: int, lr: float, warmup_steps: int, decay_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warm-up to `lr` over `warmup_steps`; then constant (`decay_steps` 0), or a cosine
    from `lr` down to `min_lr` over the next `decay_steps` steps, and `min_lr` after that."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay_steps <= 0:
        return lr
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def cleanup_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


M = TypeVar("M", bound=nn.Module)


class EMA(Generic[M]):
    """Exponential moving average of a module's parameters (buffers are copied)."""

    def __init__(self, module: M, decay: float = 0.999):
        self.decay = float(decay)
        self.module: M = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int | None = None) -> None:
        # warm-up: early steps average over fewer updates (as in k-diffusion's EMA warmup)
        decay = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.module.parameters(), module.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers(), strict=True):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state)


class JsonlLog:
    """Append-only JSON-lines log (one dict per line), flushed on every write."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class Budget:
    """Stop condition for one invocation: max optimizer steps (total) and/or max wall minutes
    (this invocation only; a resumed run gets a fresh time budget)."""

    def __init__(self, max_steps: int | None, max_minutes: float | None):
        self.max_steps = max_steps
        self.max_seconds = None if max_minutes is None else max_minutes * 60.0
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def done(self, step: int) -> bool:
        if self.max_steps is not None and step >= self.max_steps:
            return True
        return self.max_seconds is not None and self.elapsed >= self.max_seconds
