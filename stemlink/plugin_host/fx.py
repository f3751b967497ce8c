"""Post-processing FX chains from presets: pedalboard built-ins and VST3 plugins, validated.

A preset lists effects in order (`[[fx]]` tables)::

    [[fx]]
    type = "HighpassFilter"
    cutoff_frequency_hz = 40.0
    [[fx]]
    type = "vst3"
    path = "/usr/lib/vst3/MyComp.vst3"
    params = { threshold = -12.0 }

`FxSpec` is the validated, typed form; `build_chain` turns specs into a
`pedalboard.Pedalboard` (VST3 files are loaded only then, with `pedalboard.load_plugin`).
An unknown effect or parameter raises `PresetError` naming it and the allowed values.
Effects are applied per stem after the engine returns it, so they change the audio but not
its length or timeline position (tails are cut at the region end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemlink.errors import MissingDependency, PresetError

BUILTINS = (
    "Bitcrush",
    "Chorus",
    "Clipping",
    "Compressor",
    "Delay",
    "Distortion",
    "Gain",
    "HighShelfFilter",
    "HighpassFilter",
    "Invert",
    "LadderFilter",
    "Limiter",
    "LowShelfFilter",
    "LowpassFilter",
    "NoiseGate",
    "PeakFilter",
    "Phaser",
    "PitchShift",
    "Reverb",
)
Scalar = (bool, int, float, str)


@dataclass(frozen=True)
class FxSpec:
    """One effect: a built-in `type` with its parameters, or `type == "vst3"` with a `path`."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None


def _pedalboard():
    try:
        import pedalboard
    except ImportError as exc:  # pragma: no cover - core dependency
        raise MissingDependency("FX chains need pedalboard: pip install pedalboard") from exc
    return pedalboard


def builtin_params(name: str) -> list[str]:
    """Settable parameters of a pedalboard built-in (its properties, minus the base class's)."""
    pb = _pedalboard()
    cls, base = getattr(pb, name), pb.Plugin
    return sorted(n for n in dir(cls) if not n.startswith("_") and isinstance(getattr(cls, n, None), property) and not hasattr(base, n))


def parse_fx(entries: Any, where: str = "fx") -> tuple[FxSpec, ...]:
    """Validate the preset's `fx` list into `FxSpec`s (built-in names and parameters checked)."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise PresetError(f"{where} must be a list of tables ([[fx]]), got {type(entries).__name__}", field=where)
    specs = []
    for i, entry in enumerate(entries):
        label = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
            raise PresetError(
                f"{label} must be a table with a string 'type'; allowed types: {', '.join(BUILTINS)}, vst3", field=f"{label}.type"
            )
        kind = entry["type"]
        rest = {k: v for k, v in entry.items() if k != "type"}
        if kind == "vst3":
            specs.append(_parse_vst3(rest, label))
            continue
        if kind not in BUILTINS:
            raise PresetError(f"{label}.type: unknown effect {kind!r}; allowed: {', '.join(BUILTINS)}, vst3", field=f"{label}.type")
        allowed = builtin_params(kind)
        for key, value in rest.items():
            if key not in allowed:
                raise PresetError(
                    f"{label}: {kind} has no parameter {key!r}; allowed: {', '.join(allowed) or '(none)'}", field=f"{label}.{key}"
                )
            if not isinstance(value, Scalar):
                raise PresetError(f"{label}.{key} must be a number, bool or string, got {type(value).__name__}", field=f"{label}.{key}")
        try:  # let pedalboard check ranges and types now, not after the engine ran
            getattr(_pedalboard(), kind)(**rest)
        except (TypeError, ValueError) as exc:
            raise PresetError(f"{label}: {kind}({rest}) rejected: {exc}", field=label) from exc
        specs.append(FxSpec(type=kind, params=dict(rest)))
    return tuple(specs)


def _parse_vst3(rest: Mapping[str, Any], label: str) -> FxSpec:
    unknown = set(rest) - {"path", "params"}
    if unknown:
        raise PresetError(f"{label}: vst3 takes 'path' and 'params', got {sorted(unknown)}", field=f"{label}.{sorted(unknown)[0]}")
    path = rest.get("path")
    if not isinstance(path, str) or not path.endswith(".vst3"):
        raise PresetError(f"{label}.path must be the path of a .vst3 plugin, got {path!r}", field=f"{label}.path")
    params = rest.get("params", {})
    if not isinstance(params, Mapping) or any(not isinstance(v, Scalar) for v in params.values()):
        raise PresetError(f"{label}.params must be a table of scalars", field=f"{label}.params")
    return FxSpec(type="vst3", params=dict(params), path=path)


def build_chain(specs: Sequence[FxSpec]):
    """A `pedalboard.Pedalboard` for `specs`; VST3 plugins are loaded and their params checked."""
    pb = _pedalboard()
    plugins = []
    for i, spec in enumerate(specs):
        if spec.type != "vst3":
            plugins.append(getattr(pb, spec.type)(**spec.params))
            continue
        assert spec.path is not None  # parse_fx gives every vst3 spec a path
        if not Path(spec.path).exists():
            raise PresetError(f"fx[{i}].path: VST3 plugin not found: {spec.path}", field=f"fx[{i}].path")
        try:
            plugin = pb.load_plugin(spec.path)
        except (ImportError, RuntimeError, ValueError) as exc:
            raise PresetError(f"fx[{i}].path: cannot load VST3 {spec.path}: {exc}", field=f"fx[{i}].path") from exc
        known = getattr(plugin, "parameters", {})
        for key, value in spec.params.items():
            if key not in known:  # pedalboard would silently ignore a wrong name
                raise PresetError(
                    f"fx[{i}].params: {spec.path} has no parameter {key!r}; allowed: {', '.join(sorted(known))}",
                    field=f"fx[{i}].params.{key}",
                )
            setattr(plugin, key, value)
        plugins.append(plugin)
    return pb.Pedalboard(plugins)


def apply_chain(board, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Run a (C, N) float32 stem through `board` (state reset first); same shape out."""
    if board is None or len(board) == 0:
        return audio
    board.reset()
    out = board(np.ascontiguousarray(audio, dtype=np.float32), sample_rate, reset=True)
    if out.shape != audio.shape:  # effects never change length here, but be exact anyway
        fixed = np.zeros_like(audio)
        n = min(out.shape[-1], audio.shape[-1])
        fixed[: out.shape[0], :n] = out[:, :n]
        out = fixed
    return out.astype(np.float32, copy=False)
