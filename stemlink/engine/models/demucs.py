"""A user's Demucs checkpoint (demucs package save format), served as a stereo separator.

The file is what `demucs.states.serialize_model` returns, saved with `torch.save` (the
`.th` files of the demucs model zoo): a dict with `klass` (HTDemucs, HDemucs or Demucs),
`args`, `kwargs` and `state` (plus `training_args`). It is read with
`torch.load(weights_only=True)`, only those demucs classes (and `fractions.Fraction`, for
`segment`) allowed, then built by `demucs.states.load_model`. The model object gives the rate
(`samplerate`), the stems (`sources`), the channels (`audio_channels`) and the window
(`segment` seconds x rate, as `demucs.apply` uses it).

One network call: (B, C, window) -> (B, S, C, window), padded to the model's
`valid_length` and centre-trimmed as `demucs.apply` does. Bags of models (yaml) are not
supported: add each checkpoint of the bag on its own.
"""

from __future__ import annotations

import fractions
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.byo import FileDescription, ModuleNetwork, UserSeparator, check_stems, load_weights
from stemlink.errors import MissingDependency, ModelLoadError

INSTALL_HINT = "the demucs family needs the demucs package: pip install 'stemlink[byo]' (or: pip install demucs==4.0.1)"


@dataclass(frozen=True)
class DemucsOptions:
    """`stemlink models add --family demucs` takes no options: everything comes from the checkpoint."""


def _demucs_classes() -> list[type]:
    try:
        from demucs.demucs import Demucs
        from demucs.hdemucs import HDemucs
        from demucs.htdemucs import HTDemucs
    except ImportError as exc:
        raise MissingDependency(f"{INSTALL_HINT} ({exc})") from exc
    return [HTDemucs, HDemucs, Demucs]


def read_demucs(path: Path) -> Any:
    """The demucs model (eval mode, CPU) saved in `path`; `ModelLoadError` naming the file if it is not one."""
    classes = _demucs_classes()
    from demucs.states import load_model

    package = load_weights(path, "a demucs checkpoint", [*classes, fractions.Fraction])
    missing = [k for k in ("klass", "args", "kwargs", "state") if not isinstance(package, dict) or k not in package]
    if missing:
        raise ModelLoadError(
            f"{str(path)!r} is not a demucs checkpoint: missing {missing} (expected the dict of demucs.states.serialize_model)",
            field="file",
        )
    if package["klass"] not in classes:
        allowed = ", ".join(c.__name__ for c in classes)
        raise ModelLoadError(f"{str(path)!r}: klass {package['klass']!r} is not one of {allowed}", field="file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # demucs warns about (and drops) constructor arguments it no longer has
            model = load_model(package)
    except Exception as exc:  # wrong shapes, missing keys, a quantized state without diffq, ...
        raise ModelLoadError(f"{str(path)!r}: demucs could not build the model: {type(exc).__name__}: {exc}", field="file") from exc
    return model.eval()


class DemucsModel(UserSeparator):
    """HTDemucs / HDemucs / Demucs from a demucs checkpoint."""

    file_format = "checkpoint"

    @classmethod
    def describe(cls, path: Path, options: Any) -> FileDescription:
        model = read_demucs(path)
        rate, segment, channels = getattr(model, "samplerate", None), getattr(model, "segment", None), getattr(model, "audio_channels", 2)
        if not isinstance(rate, int) or segment is None or float(segment) <= 0:
            raise ModelLoadError(f"{str(path)!r}: the demucs model has no usable samplerate/segment ({rate!r}, {segment!r})", field="file")
        return FileDescription(
            sample_rate=rate,
            stems=check_stems(f"{str(path)!r}: sources", list(model.sources)),
            window=int(segment * rate),
            config={"channels": int(channels), "complement": False, "class": type(model).__name__},
        )

    @classmethod
    def load_checkpoint(cls, path: Path, spec: ModelSpec, device: str | None, threads: int | None) -> ModuleNetwork:
        return ModuleNetwork(read_demucs(path), device, threads)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        module = getattr(self.network, "module", None)
        valid = module.valid_length(length) if module is not None and hasattr(module, "valid_length") else length
        delta = valid - length
        out = self.network(F.pad(x, (delta // 2, delta - delta // 2)) if delta else x)
        trim = (out.shape[-1] - length) // 2
        return out[..., trim : trim + length]
