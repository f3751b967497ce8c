"""Jobs and the bounded job queue shared by the server's I/O thread and its workers.

A job is keyed by (client identity, submit id). States: "queued" -> "running" -> "done".
`JobQueue.put` never blocks: a full queue raises `Busy` at once. Cancelling a queued job
removes it (the caller replies CANCELLED); cancelling a running job sets its cancel flag,
which the worker's progress callback turns into `Cancelled` within one step.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from stemlink.bridge.protocol import Submit
from stemlink.errors import Busy, InvalidInput


@dataclass(eq=False)
class Job:
    identity: bytes  # ZeroMQ routing id of the client
    submit: Submit
    model: str  # resolved model name
    state: str = "queued"
    done: int = 0
    total: int = 0
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return self.submit.id

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.identity, self.submit.id)


class JobQueue:
    """Bounded FIFO of queued jobs plus the set of running ones (thread-safe)."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = size
        self._queued: deque[Job] = deque()
        self._running: dict[tuple[bytes, str], Job] = {}
        self._cond = threading.Condition()
        self.jobs_done = 0
        self.jobs_failed = 0

    def put(self, job: Job) -> int:
        """Queue `job`; returns its position (jobs ahead of it). Raises `Busy` when full."""
        with self._cond:
            if any(j.key == job.key for j in self._queued) or job.key in self._running:
                raise InvalidInput(f"job id {job.id!r} is already active for this client; use a new id", field="id")
            if len(self._queued) >= self.size:
                raise Busy(f"engine queue is full ({self.size} jobs waiting); retry later", field="queue")
            self._queued.append(job)
            self._cond.notify()
            return len(self._queued) - 1 + len(self._running)

    def get(self, timeout: float) -> Job | None:
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

    def finish(self, job: Job, ok: bool) -> None:
        with self._cond:
            job.state = "done"
            self._running.pop(job.key, None)
            if ok:
                self.jobs_done += 1
            else:
                self.jobs_failed += 1

    def cancel(self, identity: bytes, job_id: str) -> Job | None:
        """Cancel a job of this client. Returns the job if it was still queued (now removed,
        the caller replies), sets the flag of a running one (its worker replies) and returns
        None; raises `InvalidInput` when the client has no such active job."""
        key = (identity, job_id)
        with self._cond:
            for job in self._queued:
                if job.key == key:
                    self._queued.remove(job)
                    job.state = "done"
                    job.cancel.set()
                    self.jobs_failed += 1
                    return job
            running = self._running.get(key)
            if running is None:
                raise InvalidInput(f"no queued or running job {job_id!r} for this client", field="job")
            running.cancel.set()
            return None

    def drain(self) -> list[Job]:
        """Remove and return every queued job (shutdown)."""
        with self._cond:
            jobs = list(self._queued)
            self._queued.clear()
            for job in jobs:
                job.state = "done"
            self._cond.notify_all()
            return jobs

    def cancel_running(self) -> list[Job]:
        with self._cond:
            for job in self._running.values():
                job.cancel.set()
            return list(self._running.values())

    def active(self) -> list[Job]:
        """Queued and running jobs (for heartbeats)."""
        with self._cond:
            return [*self._queued, *self._running.values()]

    def running(self) -> list[Job]:
        with self._cond:
            return list(self._running.values())

    def depth(self) -> int:
        with self._cond:
            return len(self._queued)
