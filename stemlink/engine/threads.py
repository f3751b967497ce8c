"""Thread policy for a shared machine: passive OpenMP waiting and a thread count that follows
the cores actually free.

A DAW user's CPU is never idle. Two things make an inference engine crawl beside other
CPU-bound work: OpenMP (torch) and onnxruntime threads that *spin* while waiting for each
other (a spinning thread burns the core a descheduled team mate needs), and a thread team
larger than the cores left over (every parallel step then waits for a thread that is not
running). So:

- `configure_process()` sets `OMP_WAIT_POLICY=PASSIVE` and `KMP_BLOCKTIME=0` (GNU and Intel
  OpenMP: sleep instead of spin when idle) unless the user set them. OpenMP reads them once,
  when torch loads, so it must run before `import torch`: the CLI's `main()` (which also
  starts `stemlink serve` and the embedded engine's child) calls it first; a library user
  calls it at the top of their program. It changes nothing but those environment variables.
- onnxruntime sessions are built with spinning off (`session.intra_op.allow_spinning=0`,
  `session.inter_op.allow_spinning=0`) and sequential execution (`stemlink/engine/runtime.py`).
- `thread_count(cpus, busy_elsewhere)` is the policy: the cores this process may run on minus
  what other processes keep busy, rounded, at least 1. `busy_elsewhere()` measures the latter
  from `/proc/stat` minus this process's own CPU time since the previous sample (the 1-minute
  load average on the first sample or off Linux). An explicit count wins: `STEMLINK_THREADS`,
  `stemlink serve --threads`, `ServerConfig.threads`, `ModelRegistry(threads=...)`.

Pure functions (`thread_count`, `parse_threads`, `busy_from_samples`) are unit tested; only
`CpuSampler` reads the machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from stemlink.errors import InvalidInput

ENV_THREADS = "STEMLINK_THREADS"
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
MIN_SAMPLE_SECONDS = 0.25  # shorter intervals are too noisy: keep the previous estimate
MAX_THREADS = 1024


def configure_process(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set passive OpenMP waiting in `environ` (default `os.environ`) unless already set.

    Call before torch or onnxruntime are imported (OpenMP reads these once, at load).
    Returns the variables it set (empty when the user had set them all).
    """
    environ = os.environ if environ is None else environ
    added = {key: value for key, value in PASSIVE_ENV.items() if key not in environ}
    environ.update(added)
    return added


def parse_threads(value: object, source: str = ENV_THREADS) -> int | None:
    """An explicit thread count: None/""/"0"/"auto" -> None (the policy decides), else 1..1024.

    Raises `InvalidInput` naming `source` for anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "0", "auto")):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{source} must be a thread count 1..{MAX_THREADS} or 'auto', got {value!r}", field="threads")
    try:
        count = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInput(f"{source} must be a thread count 1..{MAX_THREADS} or 'auto', got {value!r}", field="threads") from None
    if count == 0:
        return None
    if not 1 <= count <= MAX_THREADS or (not isinstance(value, str) and count != value):
        raise InvalidInput(f"{source} must be a thread count 1..{MAX_THREADS} or 'auto', got {value!r}", field="threads")
    return count


def requested_threads(threads: int | None = None, environ: Mapping[str, str] | None = None) -> int | None:
    """The explicit count: `threads` if given, else `$STEMLINK_THREADS`, else None (policy)."""
    if threads is not None:
        return parse_threads(threads, "threads")
    environ = os.environ if environ is None else environ
    return parse_threads(environ.get(ENV_THREADS), ENV_THREADS)


def thread_count(cpus: int, busy_elsewhere: float) -> int:
    """The policy: `cpus` (usable cores) minus the cores other processes keep busy, rounded
    to the nearest integer, clamped to 1..cpus."""
    cpus = max(int(cpus), 1)
    free = cpus - max(float(busy_elsewhere), 0.0)
    return max(1, min(cpus, int(free + 0.5)))


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask; `os.cpu_count()` elsewhere)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class CpuSample:
    """A point in time: wall seconds, busy CPU seconds of the whole machine, of this process."""

    wall: float
    machine_busy: float
    own: float


def busy_from_samples(before: CpuSample, after: CpuSample) -> float | None:
    """Cores other processes kept busy between two samples (None if the interval is too short)."""
    wall = after.wall - before.wall
    if wall < MIN_SAMPLE_SECONDS:
        return None
    others = (after.machine_busy - before.machine_busy) - (after.own - before.own)
    return max(others / wall, 0.0)


def _machine_busy_seconds() -> float | None:
    """Busy CPU seconds of all cores since boot, from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuSampler:
    """Estimates the cores other processes keep busy, from one sample to the next (thread-safe).

    The first call (no earlier sample) answers the 1-minute load average: a fresh process has
    not added to it yet.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: CpuSample | None = None
        self._estimate: float | None = None

    def _sample(self) -> CpuSample | None:
        machine = _machine_busy_seconds()
        return None if machine is None else CpuSample(time.monotonic(), machine, _own_seconds())

    def busy_elsewhere(self) -> float:
        with self._lock:
            now = self._sample()
            if now is not None and self._last is not None:
                value = busy_from_samples(self._last, now)
                if value is not None:
                    self._estimate, self._last = value, now
            elif now is not None:
                self._last = now
            if self._estimate is None:
                try:
                    self._estimate = os.getloadavg()[0]
                except (AttributeError, OSError):
                    self._estimate = 0.0
            return self._estimate


_SAMPLER = CpuSampler()


def free_threads(sampler: CpuSampler | None = None) -> int:
    """The policy applied to this machine now: `thread_count(usable_cpus(), busy_elsewhere)`."""
    return thread_count(usable_cpus(), (sampler or _SAMPLER).busy_elsewhere())


def threads_now(threads: int | None = None) -> int:
    """The thread count to use now: the explicit one (argument or `$STEMLINK_THREADS`), else the policy."""
    explicit = requested_threads(threads)
    return explicit if explicit is not None else free_threads()
