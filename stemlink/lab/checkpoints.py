"""Self-describing training checkpoints: the one loader every model family uses.

    save_checkpoint(path, family="msdm", config=..., model=..., step=...)   atomic write
    load_checkpoint(path, family="msdm")       -> the checkpoint dict (version + family checked)
    warm_start(module, path)                   -> `--init`: weights from a checkpoint or an export

A checkpoint is a plain dict (tensors, numbers, strings, nested dicts) saved with `torch.save`
and read back with `weights_only=True`: `checkpoint_version`, `family`, `config` (the model
config as a dict), `model` (state dict), optionally `ema`, `optimizer`, `step`, `metrics`, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import ModelLoadError

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """Atomically write a self-describing checkpoint (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"checkpoint_version": CHECKPOINT_VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", *, family: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (plain tensors/dicts only: weights_only).

    With `family`, a checkpoint of another family is a `ModelLoadError` naming both."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {str(path)!r} does not exist", field="checkpoint")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ModelLoadError(
            f"checkpoint {str(path)!r} has version {state.get('checkpoint_version')!r}, expected {CHECKPOINT_VERSION}", field="checkpoint"
        )
    if family is not None and state.get("family") != family:
        raise ModelLoadError(f"checkpoint {str(path)!r} is family {state.get('family')!r}, not {family!r}", field="checkpoint")
    return state


def _init_weights(path: Path) -> tuple[Mapping[str, Any], str]:
    """(state dict, what it is) from a TorchScript export or a training checkpoint."""
    try:
        return torch.jit.load(str(path), map_location="cpu").state_dict(), "TorchScript export"
    except RuntimeError:
        pass
    try:
        checkpoint = load_checkpoint(path)
    except ModelLoadError:
        raise
    except Exception as exc:  # not a zip, not a checkpoint: say so instead of a traceback
        raise ModelLoadError(
            f"--init {str(path)!r} is neither a TorchScript export nor a training checkpoint ({exc})", field="init"
        ) from exc
    state = checkpoint.get("ema") or checkpoint.get("model")
    if not state:
        raise ModelLoadError(f"--init checkpoint {str(path)!r} holds no weights", field="init")
    return state, "checkpoint EMA weights" if checkpoint.get("ema") else "checkpoint weights"


def _unwrapped(state: Mapping[str, Any], own: Mapping[str, Any]) -> Mapping[str, Any]:
    """An export whose graph wraps the network in one module (e.g. `denoiser.` around the
    denoiser, for named ONNX inputs) -> the network's own keys, when that is what fits."""
    if set(own) <= set(state):
        return state
    heads = {k.split(".", 1)[0] for k in state}
    if len(heads) == 1 and all("." in k for k in state):
        stripped = {k.split(".", 1)[1]: v for k, v in state.items()}
        if set(own) <= set(stripped):
            return stripped
    return state


def warm_start(module: nn.Module, path: str | os.PathLike) -> str:
    """Load the weights of a previous run into `module` (fine-tuning / continuing a shipped model).

    `path` is a training checkpoint (its EMA weights when it has them, else its weights) or an
    exported TorchScript file (`exports/NAME.pt`). Every parameter and persistent buffer of
    `module` must be present with the same shape; extra entries are allowed only when they are
    non-persistent buffers of `module` (an export also stores those). Returns a description of
    what was loaded, for the run log.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"--init file {str(path)!r} does not exist", field="init")
    state, kind = _init_weights(path)
    own = module.state_dict()
    state = _unwrapped(state, own)
    buffers = {name for name, _ in module.named_buffers()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(k for k in set(state) - set(own) if k not in buffers)
    mismatched = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or mismatched:
        raise ModelLoadError(
            f"--init {str(path)!r} does not fit this preset's model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {mismatched[:5]}",
            field="init",
        )
    module.load_state_dict({k: state[k] for k in own})
    return f"{kind} of {path}"


def average_checkpoints(paths: list[str | os.PathLike], *, key: str = "ema") -> dict[str, Any]:
    """Checkpoints of one run (same family and config) -> one whose `key` weights are the mean of
    theirs (uniform weight averaging of late snapshots, as in SWA / model soups). Its `step`,
    `wall_time` and `cpu_time` are the newest one's; `averaged` lists the steps averaged."""
    if not paths:
        raise ModelLoadError("no checkpoints to average", field="checkpoint")
    states = [load_checkpoint(p) for p in paths]
    first = states[0]
    for p, s in zip(paths, states, strict=True):
        if s.get("family") != first.get("family") or s.get("config") != first.get("config"):
            raise ModelLoadError(f"checkpoint {str(p)!r} is not of the same family and config as {str(paths[0])!r}", field="checkpoint")
        if key not in s:
            raise ModelLoadError(f"checkpoint {str(p)!r} has no {key!r} weights", field="checkpoint")
    mean = {}
    for name, value in first[key].items():
        if torch.is_floating_point(value):
            mean[name] = torch.stack([s[key][name].float() for s in states]).mean(dim=0).to(value.dtype)
        else:
            mean[name] = value  # integer buffers (counters): the first one's
    newest = max(states, key=lambda s: int(s.get("step", 0)))
    kept = {k: v for k, v in newest.items() if k not in ("model", "ema", "optimizer", "checkpoint_version")}
    return {**kept, key: mean, "averaged": [int(s.get("step", 0)) for s in states]}
