"""Shared base of the "bring your own" separators: a user's demucs / MDX-Net ONNX / RoFormer file.

These networks are stereo-native: a family model declares `channels` (2, or 1 for a mono
network, from `config["channels"]`) and the apply layer feeds it channel pairs (`stemlink.engine.apply`):

    mix:    (B, C, T)     C == channels (a (B, T) window when channels == 1), T == window
    stems:  (B, S, C, T)  (B, S, T) when channels == 1

A family implements `run(x (B, C, T)) -> (B, N, C, T)` (its network's stems) and, for
`stemlink models add`, `describe(path, options) -> FileDescription` (rate, stems, window and
config read from the file and the user's options). With `config["complement"]` the last
served stem is not a network output but the rest of the mix (`mix - sum(network stems)`,
e.g. "other" beside an MDX vocals model). Chunking, resampling and stereo pairing stay in
the apply layer; these classes only compute.

`ModuleNetwork` wraps a torch module loaded from a checkpoint (format "checkpoint") as a
`Network`: inference mode, the thread policy's (or the explicit) torch thread count.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from stemlink.engine.models.base import EngineModel, ModelSpec, ProgressCallback, Separator
from stemlink.engine.runtime import resolve_device, set_torch_threads
from stemlink.engine.threads import free_threads, requested_threads
from stemlink.errors import InvalidInput, ModelLoadError

SEPARATION_TASKS = ("separate", "extract", "remove")  # what a user separator serves


@dataclass(frozen=True)
class FileDescription:
    """The manifest fields a family reads from a user's file (and options) at `stemlink models add`."""

    sample_rate: int
    stems: tuple[str, ...]
    window: int  # samples at sample_rate per network call
    config: Mapping[str, Any]  # JSON-ready family constants; "channels" (1 or 2) and "complement" (bool) at least


class ModuleNetwork:
    """A torch `nn.Module` as a `Network`: eval mode, on `device`, run under `torch.inference_mode()`."""

    format = "checkpoint"

    def __init__(self, module: torch.nn.Module, device: str | torch.device | None, threads: int | None):
        self.device = resolve_device(device)
        self.threads = requested_threads(threads)
        self.module = module.to(self.device).eval()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            set_torch_threads(self.threads if self.threads is not None else free_threads())
        with torch.inference_mode():
            out = self.module(*(t.to(self.device) for t in inputs))
        return out.to(inputs[0].device if inputs else self.device)


class UserSeparator(EngineModel, Separator):
    """A separator over a user's file; stereo pairs in, (B, S, 2, T) out (see the module docstring)."""

    file_format: ClassVar[str]  # the manifest `format` of this family's files: "onnx" or "checkpoint"

    def __init__(self, spec: ModelSpec, network: Callable[..., Any]):
        super().__init__(spec)
        self.network = network
        if self.channels not in (1, 2):
            raise ValueError(f"config.channels must be 1 or 2, got {spec.config.get('channels')!r}")

    @property
    def channels(self) -> int:
        """1: mono windows (B, T); 2: stereo pairs (B, 2, T) (the apply layer's stereo-pair policy)."""
        return int(self.spec.config.get("channels", 2))

    @property
    def complement(self) -> bool:
        return bool(self.spec.config.get("complement", False))

    @abstractmethod
    def run(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, N, C, T): the network's stems (N = len(stems) - complement)."""

    @classmethod
    @abstractmethod
    def describe(cls, path: Path, options: Any) -> FileDescription:
        """Read a user's file (and the family's options) into the manifest fields; `ModelLoadError` if unusable."""

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, C, T) (or (B, T) when mono) -> (B, S, C, T) (or (B, S, T))."""
        x = mix.float() if self.channels == 2 else mix.float()[:, None]
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise InvalidInput(f"model {self.name!r} takes {self.channels}-channel windows, got {tuple(mix.shape)}", field="mix")
        stems = self.run(x)
        if self.complement:
            stems = torch.cat([stems, (x - stems.sum(dim=1))[:, None]], dim=1)
        callback(1, 1)
        return stems if self.channels == 2 else stems[:, :, 0]


def load_weights(path: Path, what: str, allowed: list[Any] | None = None) -> Any:
    """`torch.load(path, weights_only=True)` with `allowed` classes; a failure is one line naming the file.

    Nothing but tensors, containers and the `allowed` classes is unpickled: a user's file
    cannot run code when it is added or served."""
    try:
        with torch.serialization.safe_globals(list(allowed or [])):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one holding other objects than allowed
        text = str(exc)
        found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|Check the documentation|$)", text, re.S)
        reason = " ".join((found.group(1) if found else text).split())[:300]
        raise ModelLoadError(
            f"{str(path)!r} is not {what} (read with torch.load(weights_only=True), tensors and {what}'s classes only): "
            f"{type(exc).__name__}: {reason}",
            field="file",
        ) from exc


def check_stems(name: str, stems: Any) -> tuple[str, ...]:
    """Distinct non-empty stem names, or `ModelLoadError` naming `name` (where they came from)."""
    if not isinstance(stems, (list, tuple)) or not stems or any(not isinstance(s, str) or not s for s in stems):
        raise ModelLoadError(f"{name} must be a non-empty list of stem names, got {stems!r}", field="stems")
    if len(set(stems)) != len(stems):
        raise ModelLoadError(f"{name} must be distinct, got {list(stems)}", field="stems")
    return tuple(stems)
