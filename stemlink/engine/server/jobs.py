"""Jobs and the bounded job queue shared by the server's I/O thread and its workers.

A job is keyed by (client identity, submit id). States: "queued" -> "running" -> "done".
`JobQueue.put` never blocks; it refuses at once, in this order:
- TOO_LARGE: the job's cost alone exceeds the memory budget (it can never run);
- BUSY (field `max_client_jobs`): the client already has that many active jobs;
- BUSY (field `queue`): the queue is full;
- BUSY (field `memory_budget`): the job would fit, but not next to the active jobs now.
A job's cost (`job_cost`) is its input bytes plus its estimated output bytes (every model
stem, (C, N) float32, as the task computes them); it is held from `put` until `finish`.

Cancelling a queued job removes it (the caller replies CANCELLED); cancelling a running job
sets its cancel flag with a reason (`Cancelled`, or `Timeout` for the engine's job timeout),
which the worker's progress callback raises within one step. A cancelled running job no
longer counts towards its client's job limit (it is on its way out; its memory still counts).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from stemlink.bridge.protocol import Submit
from stemlink.contract import TaskRequest
from stemlink.errors import Busy, Cancelled, InvalidInput, StemlinkError, Timeout, TooLarge

MiB = 2**20
MAX_CLIENT_JOBS = 2  # default active jobs per client
MEMORY_BUDGET_FRACTION = 0.25  # of the machine's RAM, the default memory budget


def default_memory_budget() -> int:
    """A quarter of the machine's physical memory, in bytes."""
    import psutil

    return int(psutil.virtual_memory().total * MEMORY_BUDGET_FRACTION)


def parse_size(text: str) -> int:
    """ "4G", "512M", "1.5GiB", "25%" (of RAM), "0" (no budget), a plain byte count -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%|[kKmMgGtT]i?[bB]?|[bB])?\s*", str(text))
    if match is None:
        raise InvalidInput(
            f"memory size {text!r} is not understood; use e.g. 4G, 512M, 25% (of RAM) or 0 for no budget", field="memory_budget"
        )
    value, unit = float(match.group(1)), (match.group(2) or "").upper().rstrip("B").rstrip("I")
    if unit == "%":
        return int(default_memory_budget() / MEMORY_BUDGET_FRACTION * value / 100)
    return int(value * 1024 ** " KMGT".index(unit or " "))


def job_cost(request: TaskRequest, stems: Sequence[str]) -> int:
    """Bytes a job holds while active: inputs plus estimated outputs (all `stems` of the
    model, at the input's shape; generate: `channels` (0 = 2) x `frames`; accompany with
    several candidates keeps the best one beside the current one)."""
    inputs = sum(int(a.nbytes) for a in request.inputs.values())
    if request.task == "score":
        return inputs
    if request.task == "generate":
        per_stem = max(1, request.channels or 2) * request.frames * 4
    else:
        per_stem = max((int(a.nbytes) for a in request.inputs.values()), default=0)
    copies = 2 if request.task == "accompany" and request.candidates > 1 else 1
    return inputs + copies * max(1, len(stems)) * per_stem


@dataclass(eq=False)
class EngineJob:
    """One submit in the engine: queued, then running on a worker, then done."""

    identity: bytes  # ZeroMQ routing id of the client
    submit: Submit
    model: str  # resolved model name
    cost: int = 0  # bytes (`job_cost`)
    timeout: float = 0.0  # seconds it may run (0 = no limit)
    state: str = "queued"
    done: int = 0
    total: int = 0
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: StemlinkError | None = None  # why it was cancelled (raised by the worker)

    @property
    def id(self) -> str:
        return self.submit.id

    @property
    def request(self) -> TaskRequest:
        return self.submit.request

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.identity, self.submit.id)

    def request_cancel(self, reason: StemlinkError | None = None) -> None:
        if not self.cancel.is_set():
            self.reason = reason or Cancelled(f"job {self.id!r} was cancelled", field="job")
            self.cancel.set()

    def check(self) -> None:
        """Raise the cancel reason, or `Timeout` past the job timeout (worker callback)."""
        if self.timeout > 0 and not self.cancel.is_set() and time.monotonic() - self.started > self.timeout:
            self.request_cancel(
                Timeout(
                    f"job {self.id!r} ran longer than the engine's job timeout ({self.timeout:g} s) and was stopped", field="job_timeout"
                )
            )
        if self.cancel.is_set():
            raise self.reason or Cancelled(f"job {self.id!r} was cancelled", field="job")


@dataclass(frozen=True)
class QueueSnapshot:
    queued: list[EngineJob]
    running: list[EngineJob]
    jobs_done: int
    jobs_failed: int
    memory_used: int


def _mib(nbytes: int) -> str:
    return f"{nbytes / MiB:.1f} MiB"


class JobQueue:
    """Bounded FIFO of queued jobs plus the set of running ones (thread-safe).

    `max_client_jobs` and `memory_budget` (bytes): 0 = no limit."""

    def __init__(self, size: int, *, max_client_jobs: int = 0, memory_budget: int = 0):
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = size
        self.max_client_jobs = max_client_jobs
        self.memory_budget = memory_budget
        self._queued: deque[EngineJob] = deque()
        self._running: dict[tuple[bytes, str], EngineJob] = {}
        self._cond = threading.Condition()
        self.jobs_done = 0
        self.jobs_failed = 0

    def _active(self) -> list[EngineJob]:
        return [*self._queued, *self._running.values()]

    def put(self, job: EngineJob) -> int:
        """Queue `job`; returns its position (jobs ahead of it). Raises `TooLarge` or `Busy`
        naming the limit (module docstring)."""
        with self._cond:
            active = self._active()
            if any(j.key == job.key for j in active):
                raise InvalidInput(f"job id {job.id!r} is already active for this client; use a new id", field="id")
            budget = self.memory_budget
            if budget and job.cost > budget:
                raise TooLarge(
                    f"job needs about {_mib(job.cost)} (inputs + estimated outputs); the engine's memory budget is "
                    f"{_mib(budget)} (stemlink serve --memory-budget): split the region",
                    field="memory_budget",
                )
            mine = sum(1 for j in active if j.identity == job.identity and not j.cancel.is_set())
            if self.max_client_jobs and mine >= self.max_client_jobs:
                raise Busy(
                    f"this client already has {mine} active job(s); the engine's limit is {self.max_client_jobs} per client "
                    "(stemlink serve --client-jobs): wait for one to finish",
                    field="max_client_jobs",
                )
            if len(self._queued) >= self.size:
                raise Busy(f"engine queue is full ({self.size} jobs waiting); retry later", field="queue")
            used = sum(j.cost for j in active)
            if budget and used + job.cost > budget:
                raise Busy(
                    f"engine memory budget in use: {_mib(used)} of {_mib(budget)} held by {len(active)} job(s), this job needs "
                    f"{_mib(job.cost)}; retry later",
                    field="memory_budget",
                )
            self._queued.append(job)
            self._cond.notify()
            return len(self._queued) - 1 + len(self._running)

    def get(self, timeout: float) -> EngineJob | None:
        """Next queued job, now marked running; None after `timeout` seconds."""
        with self._cond:
            if not self._queued:
                self._cond.wait(timeout)
            if not self._queued:
                return None
            job = self._queued.popleft()
            job.state = "running"
            job.started = time.monotonic()
            self._running[job.key] = job
            return job

    def finish(self, job: EngineJob, ok: bool) -> None:
        """Mark a running job done. The worker calls it BEFORE sending the final reply, so a
        client that has its result never sees the job as running in `status`."""
        with self._cond:
            job.state = "done"
            self._running.pop(job.key, None)
            if ok:
                self.jobs_done += 1
            else:
                self.jobs_failed += 1

    def cancel(self, identity: bytes, job_id: str, reason: StemlinkError | None = None) -> EngineJob | None:
        """Cancel a job of this client. Returns the job if it was still queued (now removed,
        the caller replies), sets the flag of a running one (its worker replies) and returns
        None; raises `InvalidInput` when the client has no such active job."""
        key = (identity, job_id)
        with self._cond:
            for job in self._queued:
                if job.key == key:
                    self._queued.remove(job)
                    job.state = "done"
                    job.request_cancel(reason)
                    self.jobs_failed += 1
                    return job
            running = self._running.get(key)
            if running is None:
                raise InvalidInput(f"no queued or running job {job_id!r} for this client", field="job")
            running.request_cancel(reason)
            return None

    def drain(self) -> list[EngineJob]:
        """Remove and return every queued job (shutdown)."""
        with self._cond:
            jobs = list(self._queued)
            self._queued.clear()
            for job in jobs:
                job.state = "done"
            self._cond.notify_all()
            return jobs

    def cancel_running(self) -> list[EngineJob]:
        with self._cond:
            for job in self._running.values():
                job.request_cancel()
            return list(self._running.values())

    def active(self) -> list[EngineJob]:
        """Queued and running jobs (for heartbeats)."""
        with self._cond:
            return self._active()

    def running(self) -> list[EngineJob]:
        with self._cond:
            return list(self._running.values())

    def queued(self) -> list[EngineJob]:
        with self._cond:
            return list(self._queued)

    def snapshot(self) -> QueueSnapshot:
        """Queued and running jobs and the counters, read together (for `status`)."""
        with self._cond:
            active = self._active()
            return QueueSnapshot(
                queued=list(self._queued),
                running=list(self._running.values()),
                jobs_done=self.jobs_done,
                jobs_failed=self.jobs_failed,
                memory_used=sum(j.cost for j in active),
            )

    def depth(self) -> int:
        with self._cond:
            return len(self._queued)

    def memory_used(self) -> int:
        with self._cond:
            return sum(j.cost for j in self._active())
