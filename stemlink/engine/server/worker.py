"""Worker threads: take a job, run it with `execute_task`, hand replies back to the I/O thread.

The request was checked at the wire (`check_request`) and on submit (`check_model`), so the
worker does not check it again.

Workers never touch the ROUTER socket: each owns a PUSH socket connected to the I/O thread's
inproc PULL socket and sends `[client identity, *message frames]`; the I/O thread forwards
them unchanged (zero-copy). Progress is sent after each model step (throttled); a set cancel
flag makes the progress callback raise its reason (`Cancelled`, or `Timeout` once the job has
run longer than the engine's job timeout), so cancellation lands within one step. A job is
marked done in the queue before its final reply is sent (`status` never lags a result).
Before a result, a `send` progress (total = result bytes) tells the client how long the
result transfer may keep the line silent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from stemlink.bridge.protocol import Error, Message, Progress, Result, encode
from stemlink.engine.registry import ModelRegistry
from stemlink.engine.server.jobs import EngineJob, JobQueue
from stemlink.errors import StemlinkError

log = logging.getLogger("stemlink.engine.server")
PROGRESS_MIN_INTERVAL = 0.02  # seconds between progress messages of one job (last one always sent)


class Worker(threading.Thread):
    """Runs jobs from `queue` until `stop` is set."""

    def __init__(
        self, index: int, context: zmq.Context, reply_address: str, queue: JobQueue, registry: ModelRegistry, stop: threading.Event
    ):
        super().__init__(name=f"stemlink-worker-{index}", daemon=True)
        self.context = context
        self.reply_address = reply_address
        self.queue = queue
        self.registry = registry
        self.stop_event = stop

    def run(self) -> None:
        out = self.context.socket(zmq.PUSH)
        out.linger = 1000  # inproc: let the last reply reach the I/O thread after close
        out.sndtimeo = 5000  # never hang on a server that already shut down
        out.connect(self.reply_address)
        try:
            while not self.stop_event.is_set():
                job = self.queue.get(timeout=0.1)
                if job is not None:
                    self._run_job(job, out)
        finally:
            out.close(linger=0)

    def _send(self, out: zmq.Socket, job: EngineJob, msg: Message, frames: list[Any] | None = None) -> None:
        try:
            out.send_multipart([job.identity, *(frames if frames is not None else encode(msg))], copy=False)
        except zmq.Again:
            log.warning("job %s: reply %s dropped, the I/O thread is gone", job.id, msg.TYPE)

    def _callback(self, job: EngineJob, out: zmq.Socket) -> Callable[[int, int], None]:
        last = [0.0]

        def callback(done: int, total: int) -> None:
            job.check()  # raises the cancel reason: Cancelled, or Timeout past the job timeout
            job.done, job.total = int(done), int(total)
            now = time.monotonic()
            if done >= total or now - last[0] >= PROGRESS_MIN_INTERVAL:
                last[0] = now
                self._send(out, job, Progress(id=job.id, done=job.done, total=job.total, stage="run"))

        return callback

    def _run_job(self, job: EngineJob, out: zmq.Socket) -> None:
        from stemlink.engine.tasks import execute_task

        request = job.request
        ok = False
        outcome = "ok"
        try:
            self._send(out, job, Progress(id=job.id, done=0, total=0, stage="load"))
            model = self.registry.get(job.model)
            job.check()  # cancelled (or timed out) while the model was loading: do not start it
            scorer, no_scorer = self._scorer() if request.task == "accompany" and request.candidates > 1 else (None, "")
            result = execute_task(model, request, callback=self._callback(job, out), scorer=scorer, no_scorer=no_scorer)
            reply: Message = Result(id=job.id, result=result)
            nbytes = sum(int(getattr(a, "nbytes", 0)) for a in result.stems.values())
            # Announce the upload: over a slow network a big result is one long silence.
            self._send(out, job, Progress(id=job.id, done=0, total=nbytes, stage="send"))
            ok = True
        except StemlinkError as exc:
            reply, outcome = Error.from_exception(job.id, exc), exc.code
        except Exception as exc:  # a bug in a model or task must not kill the worker
            log.exception("job %s failed", job.id)
            reply, outcome = Error.from_exception(job.id, exc), "INTERNAL"
        try:
            frames = encode(reply)
        except StemlinkError as exc:  # e.g. a result the protocol cannot carry
            reply = Error.from_exception(job.id, exc)
            frames, ok, outcome = encode(reply), False, exc.code
        # Done before the final reply leaves: a client holding its result must never see the
        # job as running (or its slot, memory and client limit as taken) in a later `status`.
        self.queue.finish(job, ok)
        self._send(out, job, reply, frames)
        length = next((a.shape[-1] for a in request.inputs.values()), request.frames)
        log.info(
            "job %s task=%s model=%s frames=%d -> %s in %.2fs",
            job.id,
            request.task,
            job.model,
            length,
            outcome,
            time.monotonic() - job.started,
        )

    def _scorer(self) -> tuple[Any, str]:
        """(the default "score" model, "") to rank accompaniment candidates, or (None, why not):
        the result then carries a warning (`execute_task`), and the log says why."""
        try:
            return self.registry.get(self.registry.default_for("score")), ""
        except StemlinkError as exc:
            log.warning("accompaniment candidates cannot be ranked: %s", exc.message)
            return None, f"no score model could be loaded to rank them ({exc.message})"
