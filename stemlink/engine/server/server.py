"""The engine server: one ZeroMQ ROUTER socket, a bounded job queue, worker threads.

Only the I/O thread touches the ROUTER socket. It decodes and validates every request (a bad
one gets an `error` reply, never an exception), answers hello/ping/status/cancel itself,
queues submits (a full queue answers BUSY at once), forwards the workers' replies from an
inproc PULL socket, and sends a `heartbeat` for every unfinished job each
`heartbeat_interval`, so a client notices a dead engine within its heartbeat timeout.

Shutdown (`request_stop()`, or SIGTERM/SIGINT in `stemlink serve`): queued jobs get an
ENGINE_UNAVAILABLE error, running jobs are cancelled (or allowed to finish for
`shutdown_grace` seconds when `finish_running`), their final replies are forwarded, and the
sockets close with linger 0.

Abandoned jobs: the ROUTER is `ROUTER_MANDATORY`, so a reply or heartbeat to a client whose
connection is gone fails at once; every active job of that client is then cancelled (within a
heartbeat interval of the disconnect). A submit may also declare `keepalive` seconds; its
client then sends something (the `Client` pings) at least that often while the job is
unfinished. A job whose client has been silent for 3 keepalive intervals (a hung DAW, a dead
network without a reset) is cancelled. Silence is counted in time the engine itself ran: a
stall of the I/O loop (SIGSTOP, a machine under load) is forgiven.

Fair share (stemlink/engine/server/jobs.py): at most `max_client_jobs` active jobs per client
connection, a `memory_budget` in bytes for all active jobs (default a quarter of the
machine's RAM), an optional `job_timeout` (seconds a job may run; then TIMEOUT).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from stemlink import __version__
from stemlink.bridge.discovery import DEFAULT_ADDRESS
from stemlink.bridge.liveness import ProcessIdentity
from stemlink.bridge.protocol import (
    Accepted,
    Cancel,
    Capabilities,
    Error,
    Heartbeat,
    Hello,
    Message,
    ModelInfo,
    Ping,
    Pong,
    Status,
    StatusRequest,
    Submit,
    decode,
    encode,
)
from stemlink.bridge.zap import secure_server
from stemlink.contract import Limits, check_conditions, check_model
from stemlink.engine.registry import ModelRegistry
from stemlink.engine.server.jobs import MAX_CLIENT_JOBS, EngineJob, JobQueue, default_memory_budget, job_cost
from stemlink.engine.server.worker import Worker
from stemlink.errors import Cancelled, EngineUnavailable, ProtocolError, StemlinkError

log = logging.getLogger("stemlink.engine.server")
DEFAULT_BIND = DEFAULT_ADDRESS
SHUTDOWN_LINGER_MS = 200
KEEPALIVE_MISSES = 3  # a job whose client sent nothing for this many keepalive intervals is cancelled
STALL_GAP = 1.0  # s between two I/O loop turns (normally <= 0.1 s): the engine itself was stalled
UNKNOWN_ID = "-"  # id of error replies to messages whose own id could not be read


@dataclass
class ServerConfig:
    bind: str = DEFAULT_BIND
    exports_dir: Path | None = None
    workers: int = 1
    queue_size: int = 8
    heartbeat_interval: float = 0.5
    shutdown_grace: float = 5.0
    finish_running: bool = False  # on shutdown: let running jobs finish (else cancel them)
    device: str | None = None
    threads: int | None = None
    limits: Limits = field(default_factory=Limits)
    curve_dir: Path | None = None  # CURVE keys folder (stemlink/bridge/auth.py): encrypt + authorize clients
    preload: bool = False  # load (and sha256-check) every model before accepting clients
    max_client_jobs: int = MAX_CLIENT_JOBS  # active jobs per client connection (0 = no limit)
    memory_budget: int | None = None  # bytes for all active jobs; None = a quarter of the RAM, 0 = no budget
    job_timeout: float | None = None  # seconds a job may run before it is stopped with TIMEOUT (None = no limit)


def model_infos(registry: ModelRegistry) -> list[ModelInfo]:
    """One `ModelInfo` per model name, formats merged (preferred format's metadata)."""
    infos = []
    for name in registry.names():
        spec = registry.spec(name)
        formats = tuple(s.format for s in registry.list() if s.name == name)
        infos.append(
            ModelInfo(
                name=name,
                version=spec.version,
                family=spec.family,
                tasks=spec.tasks,
                formats=formats,
                sample_rate=spec.sample_rate,
                stems=spec.stems,
                window=spec.window,
                delay=spec.delay,
                sha256=spec.sha256,
                conditions=spec_conditions(spec),
            )
        )
    return infos


def spec_conditions(spec) -> tuple[str, ...]:
    """`EngineModel.conditions_for` of the entry's family (imports the family's module, loads no weights)."""
    from stemlink.engine.registry import family_class
    from stemlink.errors import ModelLoadError

    try:
        return tuple(family_class(spec.family).conditions_for(spec))  # type: ignore[attr-defined]
    except ModelLoadError:
        return ()


class Server:
    """A stemlink engine bound to one address. `start()` runs it in a thread; `serve()`
    runs it in the calling thread until `request_stop()`."""

    def __init__(self, config: ServerConfig | None = None, *, context: zmq.Context | None = None, registry: ModelRegistry | None = None):
        self.config = config or ServerConfig()
        if self.config.queue_size != self.config.limits.queue_size:
            self.config.limits = Limits(**{**self.config.limits.to_header(), "queue_size": self.config.queue_size})
        self.context = context or zmq.Context.instance()
        self.registry = registry or ModelRegistry(self.config.exports_dir, device=self.config.device, threads=self.config.threads)
        if self.config.memory_budget is None:
            self.config.memory_budget = default_memory_budget()
        self.queue = JobQueue(self.config.queue_size, max_client_jobs=self.config.max_client_jobs, memory_budget=self.config.memory_budget)
        self.process = ProcessIdentity.of_this_process()
        self.address: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._last_seen: dict[bytes, float] = {}  # client identity -> when it last sent anything (I/O thread only)
        self._previous_turn = 0.0  # when the I/O loop last read the clock (I/O thread only)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> Server:
        """Bind and serve in a background thread; returns once bound (address set)."""
        self._thread = threading.Thread(target=self._serve_in_thread, name="stemlink-io", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise EngineUnavailable(f"engine did not bind {self.config.bind} within {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve()
        except StemlinkError:
            if not self._ready.is_set() or self._error is None:
                raise  # not a bind error: let it surface
            # a bind error: `start()` raises it in the caller's thread

    def request_stop(self) -> None:
        """Ask the I/O loop to shut down (thread- and signal-safe)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started

    def preload(self) -> dict[str, str]:
        """Load every model now (preferred format); returns name -> error for the failures."""
        failures = {}
        for name in self.registry.names():
            try:
                self.registry.get(name)
            except StemlinkError as exc:
                failures[name] = exc.message
                log.warning("model %s cannot be loaded: %s", name, exc.message)
        return failures

    def serve(self) -> None:
        """Run the I/O loop in this thread until `request_stop()`."""
        if self.config.preload:
            self.preload()
        router = self.context.socket(zmq.ROUTER)
        router.linger = 0
        router.router_mandatory = 1  # a send to a gone client fails: its jobs are cancelled (_send)
        router.maxmsgsize = self.config.limits.max_message_bytes + self.config.limits.max_header_bytes
        pull = self.context.socket(zmq.PULL)
        pull.linger = 0
        reply_address = f"inproc://stemlink-replies-{uuid.uuid4().hex}"
        auth = None
        try:
            if self.config.curve_dir is not None:
                auth = secure_server(router, self.context, self.config.curve_dir)
            router.bind(self.config.bind)
            pull.bind(reply_address)
            self.address = router.getsockopt_string(zmq.LAST_ENDPOINT)
        except (zmq.ZMQError, StemlinkError) as exc:
            self._error = (
                exc if isinstance(exc, StemlinkError) else EngineUnavailable(f"cannot bind {self.config.bind!r}: {exc}", field="bind")
            )
            router.close(linger=0)
            pull.close(linger=0)
            if auth is not None:
                auth.stop()
            self._ready.set()
            raise self._error from exc
        workers = [
            Worker(i, self.context, reply_address, self.queue, self.registry, self._stop) for i in range(max(1, self.config.workers))
        ]
        for w in workers:
            w.start()
        self._ready.set()
        security = "CURVE, authorized clients only" if auth is not None else "no authentication"
        log.info("stemlink engine %s serving %d model(s) on %s (%s)", __version__, len(self.registry.names()), self.address, security)
        try:
            self._loop(router, pull)
            self._shutdown(router, pull, workers)
        finally:
            # A short bounded linger lets the final error replies of the shutdown go out;
            # nothing ever waits on it longer than that.
            router.close(linger=SHUTDOWN_LINGER_MS)
            pull.close(linger=0)
            if auth is not None:
                auth.stop()

    # ------------------------------------------------------------------ I/O loop

    def _loop(self, router: zmq.Socket, pull: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        interval = self.config.heartbeat_interval
        next_beat = self._previous_turn = time.monotonic()
        while not self._stop.is_set():
            events = dict(poller.poll(timeout=min(100, int(interval * 1000))))
            self._clock()
            if pull in events:
                self._forward(router, pull)
            if router in events:
                for _ in range(64):
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(router, frames)
            if time.monotonic() >= next_beat:
                # keepalive verdicts only once every pending client message has been read
                pending = int(router.getsockopt(zmq.EVENTS)) & zmq.POLLIN
                self._heartbeats(router, self._clock(), judge=not pending)
                next_beat = time.monotonic() + interval

    def _clock(self) -> float:
        """Now, after forgiving every client the time this process did not run.

        Called at the top of each I/O loop turn and again right before keepalive verdicts, so a
        stall (SIGSTOP, a loaded machine) that lands anywhere inside a turn is forgiven before
        it is judged; the verdicts then use the `now` returned here, never a later reading."""
        now = time.monotonic()
        if now - self._previous_turn > STALL_GAP:  # this process was not running: not its clients' silence
            for identity in self._last_seen:
                self._last_seen[identity] += now - self._previous_turn
        self._previous_turn = now
        return now

    def _forward(self, router: zmq.Socket, pull: zmq.Socket) -> None:
        while True:
            try:
                frames = pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._send_frames(router, frames[0].bytes, frames[1:])

    def _send(self, router: zmq.Socket, identity: bytes, msg: Message) -> None:
        self._send_frames(router, identity, encode(msg))

    def _send_frames(self, router: zmq.Socket, identity: bytes, frames: list[Any]) -> None:
        """Send without ever blocking; a client that is gone gets its jobs cancelled."""
        try:
            router.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:  # its queue is full (a client that does not read): drop, as ZeroMQ would
            log.warning("reply to client %s dropped: its send queue is full", identity.hex())
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._client_gone(identity)

    def _client_gone(self, identity: bytes) -> None:
        """The connection of `identity` is closed (process exited, socket closed, network
        reset): nobody can receive its jobs' replies, so cancel them all."""
        self._last_seen.pop(identity, None)
        for job in self.queue.active():
            if job.identity != identity:
                continue
            try:
                self.queue.cancel(identity, job.id, Cancelled(f"job {job.id!r} cancelled: its client disconnected", field="job"))
            except StemlinkError:
                continue  # finished meanwhile
            log.info("job %s: client disconnected, cancelled", job.id)

    def _heartbeats(self, router: zmq.Socket, now: float, judge: bool = True) -> None:
        active = self.queue.active()
        for job in active:
            keepalive = job.submit.keepalive
            if judge and keepalive > 0 and now - self._last_seen.get(job.identity, now) > KEEPALIVE_MISSES * keepalive:
                self._abandon(router, job)
                continue
            state = "running" if job.state == "running" else "queued"
            self._send(router, job.identity, Heartbeat(id=job.id, state=state, done=job.done, total=job.total))
        busy = {job.identity for job in active}
        for identity in [i for i, t in self._last_seen.items() if i not in busy and now - t > 60.0]:
            del self._last_seen[identity]

    def _abandon(self, router: zmq.Socket, job: EngineJob) -> None:
        """The client of `job` stopped its keepalives (hung or unreachable): cancel the job."""
        if job.cancel.is_set():
            return
        log.info("job %s: client silent for more than %d keepalive intervals, cancelling", job.id, KEEPALIVE_MISSES)
        reason = Cancelled(f"job {job.id!r} cancelled: its client stopped sending keepalives", field="keepalive")
        try:
            queued = self.queue.cancel(job.identity, job.id, reason)
        except StemlinkError:
            return  # finished meanwhile
        if queued is not None:
            self._send(router, job.identity, Error.from_exception(job.id, reason))

    def _handle(self, router: zmq.Socket, frames: list[Any]) -> None:
        identity = frames[0].bytes
        self._last_seen[identity] = time.monotonic()
        try:
            msg = decode(frames[1:], "request", self.config.limits)
        except StemlinkError as exc:
            self._send(router, identity, Error.from_exception(getattr(exc, "request_id", "") or UNKNOWN_ID, exc))
            return
        try:
            reply = self._dispatch(identity, msg)
        except StemlinkError as exc:
            reply = Error.from_exception(msg.id, exc)
        except Exception as exc:  # a bug here must not take the I/O thread down
            log.exception("request %s failed", msg.id)
            reply = Error.from_exception(msg.id, exc)
        if reply is not None:
            self._send(router, identity, reply)

    def _dispatch(self, identity: bytes, msg: Message) -> Message | None:
        if isinstance(msg, Submit):
            return self._submit(identity, msg)
        if isinstance(msg, Ping):
            return Pong(id=msg.id, uptime=self.uptime)
        if isinstance(msg, Hello):
            return self.capabilities(msg.id)
        if isinstance(msg, StatusRequest):
            return self.status(msg.id)
        if isinstance(msg, Cancel):
            job = self.queue.cancel(identity, msg.job)
            if job is not None:
                return Error.from_exception(job.id, Cancelled(f"job {job.id!r} was cancelled before it started", field="job"))
            return None  # the running job's worker replies CANCELLED
        raise ProtocolError(f"unexpected request type {msg.TYPE!r}", field="type")

    def _submit(self, identity: bytes, msg: Submit) -> Message:
        """`decode` ran the contract's `check_request`; here `check_model` against the model's
        manifest entry, before the job is queued (the worker runs it without checking again)."""
        request = msg.request
        name = request.model or self.registry.default_for(request.task)
        spec = self.registry.spec(name)
        check_model(request, name, spec.tasks, spec.stems)
        check_conditions(request, name, spec_conditions(spec))
        job = EngineJob(
            identity=identity, submit=msg, model=name, cost=job_cost(request, spec.stems), timeout=self.config.job_timeout or 0.0
        )
        position = self.queue.put(job)
        return Accepted(id=msg.id, position=position)

    def capabilities(self, msg_id: str) -> Capabilities:
        defaults = {}
        for task in {t for s in self.registry.list() for t in s.tasks}:
            defaults[task] = self.registry.default_for(task)
        return Capabilities(
            id=msg_id,
            engine_version=__version__,
            models=model_infos(self.registry),
            limits=self.config.limits,
            workers=max(1, self.config.workers),
            defaults=defaults,
            pid=self.process.pid,
            boot_id=self.process.boot_id,
            process_start=self.process.start_ticks,
            heartbeat_interval=self.config.heartbeat_interval,
            max_client_jobs=self.config.max_client_jobs,
            memory_budget=self.config.memory_budget or 0,
            job_timeout=self.config.job_timeout or 0.0,
        )

    def status(self, msg_id: str) -> Status:
        snap = self.queue.snapshot()  # one consistent view: a job is queued, running or done
        running = [
            {"job": j.id, "task": j.request.task, "model": j.model, "done": j.done, "total": j.total, "cancelling": j.cancel.is_set()}
            for j in snap.running
        ]
        queued = [{"job": j.id, "task": j.request.task, "model": j.model} for j in snap.queued]
        return Status(
            id=msg_id,
            queue_depth=len(snap.queued),
            queue_size=self.queue.size,
            running=running,
            uptime=self.uptime,
            jobs_done=snap.jobs_done,
            jobs_failed=snap.jobs_failed,
            queued=queued,
            memory_used=snap.memory_used,
            memory_budget=self.queue.memory_budget,
        )

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self, router: zmq.Socket, pull: zmq.Socket, workers: list[Worker]) -> None:
        for job in self.queue.drain():
            self._send(
                router,
                job.identity,
                Error.from_exception(job.id, EngineUnavailable("engine is shutting down; job was not started", field="job")),
            )
        if not self.config.finish_running:
            self.queue.cancel_running()
        deadline = time.monotonic() + self.config.shutdown_grace
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            if pull.poll(50):
                self._forward(router, pull)
        self._forward(router, pull)
        for job in self.queue.running():  # still running after the grace period
            self._send(
                router,
                job.identity,
                Error.from_exception(job.id, EngineUnavailable("engine shut down before the job finished", field="job")),
            )
        log.info("stemlink engine on %s stopped", self.address)
