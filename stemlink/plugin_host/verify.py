"""The host trusts nothing it receives: every engine result is checked before a file is written.

Discovery (`stemlink/bridge/discovery.py`) takes any local process that answers a ping on the default
address as the engine, and `--engine` may name any address, so a result may come from a
broken or hostile program. `check_result` refuses one whose

- task, model or seed differ from the request's, or whose model version / sha256 are missing
  (the sidecar's provenance would be false);
- stem names are not exactly the planned ones, or could name a path (`/`, `\\`, `..`, NUL);
- stems are not float32 numpy arrays of the region's shape (channels, frames);
- samples are NaN or infinite (checked in blocks, no full-size temporary), or whose
  required scores are missing or not finite,

with `BadResult` naming the engine's address, the field and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from stemlink.errors import BadResult

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHECK_BLOCK = 1 << 16  # frames per finiteness check
_PATH_CHARS = ("/", "\\", "\0")


def check_result(
    result: Any,
    *,
    source: str,
    task: str,
    model: str,
    seed: int,
    stems: Iterable[str],
    channels: int,
    frames: int,
    scores: Iterable[str] = (),
) -> None:
    """Raise `BadResult` unless `result` is what was asked for (see module docstring).

    `scores`: score names that must be present and finite (the `score` task's result).
    """

    def bad(what: str, field: str) -> BadResult:
        return BadResult(f"refusing the result from the engine at {source}: {what}; nothing was written", field=field)

    if result.task != task:
        raise bad(f"it is for task {result.task!r}, the request was {task!r}", "task")
    if result.model != model:
        raise bad(f"it names model {result.model!r}, the request was for {model!r}", "model")
    if not isinstance(result.model_version, str) or not result.model_version:
        raise bad("its provenance has no model version", "model_version")
    if not isinstance(result.model_sha256, str) or not SHA256.match(result.model_sha256):
        raise bad(f"its model sha256 {str(result.model_sha256)[:80]!r} is not 64 lowercase hex digits", "model_sha256")
    if isinstance(result.seed, bool) or not isinstance(result.seed, (int, np.integer)) or result.seed != seed:
        raise bad(f"it used seed {result.seed!r}, the request asked for {seed}", "seed")
    for key in scores:
        value = result.scores.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(f"score {key!r} is {value!r}, not a finite number", "scores")
    expected = tuple(stems)
    got = tuple(result.stems)
    unsafe = [name for name in got if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in _PATH_CHARS)]
    if unsafe:
        raise bad(f"stem name {unsafe[0]!r} is not a plain name", "stems")
    if set(got) != set(expected):
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        detail = "; ".join(part for part in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if part)
        raise bad(f"it has stems {sorted(got)}, expected {sorted(expected)} ({detail})", "stems")
    for name in expected:
        check_stem(result.stems[name], name, channels, frames, bad)


def check_stem(audio: Any, name: str, channels: int, frames: int, bad) -> None:
    """One stem: a float32 (channels, frames) array of finite samples."""
    if not isinstance(audio, np.ndarray):
        raise bad(f"stem {name!r} is a {type(audio).__name__}, not an array", "stems")
    if audio.dtype != np.float32:
        raise bad(f"stem {name!r} has dtype {audio.dtype}, expected float32", "stems")
    if audio.shape != (channels, frames):
        shape = " x ".join(map(str, audio.shape)) or "scalar"
        raise bad(f"stem {name!r} is {shape} samples, the region is {channels} x {frames}", "stems")
    for i in range(0, frames, CHECK_BLOCK):
        if not np.isfinite(audio[:, i : i + CHECK_BLOCK]).all():
            raise bad(f"stem {name!r} contains NaN or infinite samples", "stems")
