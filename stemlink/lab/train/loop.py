"""Training utilities shared by every model family: distributed init, EMA, self-describing
checkpoints (atomic save, resume), a JSONL loss log and a wall-time/step budget.

Distributed training follows torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT): gloo on CPU, nccl on CUDA. Without those variables everything
runs as a single process.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

CHECKPOINT_VERSION = 1


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


def cleanup_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class EMA:
    """Exponential moving average of a module's parameters (buffers are copied)."""

    def __init__(self, module: nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int | None = None) -> None:
        # warm-up: early steps average over fewer updates (as in k-diffusion's EMA warmup)
        decay = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state)


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """Atomically write a self-describing checkpoint (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"checkpoint_version": CHECKPOINT_VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (plain tensors/dicts only: weights_only)."""
    from stemlink.errors import ModelLoadError

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {str(path)!r} does not exist", field="checkpoint")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ModelLoadError(f"checkpoint {str(path)!r} has version {state.get('checkpoint_version')!r}, expected {CHECKPOINT_VERSION}")
    return state


def warm_start(module: nn.Module, path: str | os.PathLike) -> str:
    """Load the weights of a previous run into `module` (fine-tuning / continuing a shipped model).

    `path` is a training checkpoint (its EMA weights when it has them, else its weights) or an
    exported TorchScript file (`exports/NAME.pt`). Every parameter and persistent buffer of
    `module` must be present with the same shape; extra entries are allowed only when they are
    non-persistent buffers of `module` (an export also stores those). Returns a description of
    what was loaded, for the run log.
    """
    from stemlink.errors import ModelLoadError

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"--init file {str(path)!r} does not exist", field="init")
    try:
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
        kind = "TorchScript export"
    except RuntimeError:
        try:
            checkpoint = load_checkpoint(path)
        except ModelLoadError:
            raise
        except Exception as exc:  # not a zip, not a checkpoint: say so instead of a traceback
            raise ModelLoadError(f"--init {str(path)!r} is neither a TorchScript export nor a training checkpoint ({exc})",
                                 field="init") from exc
        state = checkpoint.get("ema") or checkpoint.get("model")
        kind = "checkpoint EMA weights" if checkpoint.get("ema") else "checkpoint weights"
        if not state:
            raise ModelLoadError(f"--init checkpoint {str(path)!r} holds no weights", field="init")
    own = module.state_dict()
    buffers = {name for name, _ in module.named_buffers()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(k for k in set(state) - set(own) if k not in buffers)
    mismatched = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or mismatched:
        raise ModelLoadError(
            f"--init {str(path)!r} does not fit this preset's model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {mismatched[:5]}", field="init")
    module.load_state_dict({k: state[k] for k in own})
    return f"{kind} of {path}"


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
