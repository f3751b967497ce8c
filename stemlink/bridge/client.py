"""`Client`: talk to a running stemlink engine from scripts, the CLI or the DAW host.

    with Client("tcp://127.0.0.1:5555", timeout=30) as client:   # a running `stemlink serve`
        result = client.separate(mix, 44100)        # mix (C, N) float32 -> result.stems[name] (C, N)

    with stemlink.launcher.connect() as client:    # a local engine, or an embedded one it starts
        ...

A client only connects. With no address, `stemlink.bridge.discovery.discover` picks
`$STEMLINK_ENGINE` or a local `stemlink serve` on the default address that answers; if there
is none, `EngineUnavailable`. Starting an engine is the launcher's job
(`stemlink/launcher.py`, like jupyter_client's KernelManager beside its KernelClient): it
hands the client the engine it started (`engine=`), which the client watches for liveness and
stops on `close()`.
Remote engines started with `stemlink serve --curve DIR`: pass `curve=DIR` (or set
`$STEMLINK_CURVE`) to encrypt and authenticate with the keys in DIR (see `stemlink/bridge/auth.py`).

One DEALER socket; calls are synchronous and a client is used from one thread at a time
(`cancel()` may be called from another thread: it flags the running job). `timeout` bounds
requests that are not jobs (hello, ping, status) and the wait for a job's `accepted`; a
job's own length is bounded only by `submit(timeout=...)` (and the engine's job timeout).

When is the engine dead? A busy engine (model loading, torch holding the GIL, a loaded
machine, SIGSTOP) may be silent for many seconds while alive, so silence is the last resort
(`stemlink/bridge/liveness.py`):
- Same host: the engine's `capabilities` name its pid, boot id and start time; a client on the
  same kernel checks `/proc/PID/stat` while it waits. Gone or zombie: `EngineUnavailable`
  "... died ..." at once (an embedded child also reports its exit code / signal). Stopped or
  busy: alive, keep waiting.
- The connection (ZeroMQ monitor events, from libzmq's own threads): no connection to the
  address for `connect_timeout` seconds (default 2): `EngineUnavailable` "nothing is
  listening", for requests and jobs alike; the connection dropped during a job (a remote
  engine killed, a network reset): raised at once.
- Silence: during a job, nothing (accepted, progress, heartbeat, result) for
  `heartbeat_timeout` seconds: `EngineUnavailable` "stopped responding". Default (None): 60 s,
  or 20 of the heartbeat intervals the engine reported if that is longer. Time in which this
  client itself did not run (a gap of more than 1 s between its own 50 ms polls) is not
  counted against the engine.

A client that gives up on a job (timeout, Ctrl-C, an exception from the progress callback,
a dead-engine verdict, anything) sends `cancel` for it before raising. The engine handles a
connection's messages in order, so that cancel lands before the client's next submit: a
client's new job never queues behind its own abandoned one (at most the model step it was in).
While a job runs the client pings every `keepalive` seconds (the submit declares it), so an
engine cancels the jobs of a client that hangs; one that disconnects is noticed by the engine
at its next heartbeat. Engine errors are raised as the matching `stemlink.errors` class.
Returned stems are read-only zero-copy views of the received message (use `np.array(x)` for a
writable copy).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import zmq

from stemlink.bridge.auth import ENV_CURVE, HandshakeWatch, secure_client
from stemlink.bridge.discovery import ENV_ENGINE, discover
from stemlink.bridge.liveness import CONNECTION_EVENTS, GONE, STOPPED, ConnectionWatch, ProcessIdentity, process_state
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
    Progress,
    Result,
    Status,
    StatusRequest,
    Submit,
    decode,
    encode,
)
from stemlink.contract import Limits, TaskRequest, TaskResult
from stemlink.errors import Cancelled, EngineUnavailable, InvalidInput, ProtocolError, Timeout, TooLarge

ProgressFn = Callable[[int, int, str], None]
M = TypeVar("M", bound=Message)
REPLY_LIMITS = Limits(max_frames=2**40, max_channels=1024, max_inputs=1024, max_message_bytes=2**40, max_header_bytes=16 * 2**20)
POLL_MS = 50
MIN_TRANSFER_RATE = 10e6  # bytes/s assumed for uploads and result downloads (deadlines only)
DEFAULT_SILENCE = 60.0  # s of silence during a job before a live-looking engine is declared dead
SILENCE_BEATS = 20  # ... or this many of the engine's reported heartbeat intervals, if longer
CONNECT_TIMEOUT = 2.0  # s without any connection to the address: nothing is listening
STALL_GAP = 1.0  # s between two of the client's own polls: the client itself was not running


class OwnedEngine(Protocol):
    """An engine a launcher started for one client (`stemlink.engine.server.embedded.Engine`)."""

    @property
    def alive(self) -> bool: ...

    def exit_info(self) -> str: ...

    def wait_exit(self, timeout: float) -> bool: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def _planar(audio: Any) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    return arr[None, :] if arr.ndim == 1 else arr


class Client:
    """A synchronous engine client (see module docstring)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = 30.0,
        heartbeat_timeout: float | None = None,
        context: zmq.Context | None = None,
        curve: str | os.PathLike | None = None,
        client_name: str | None = None,
        keepalive: float = 2.0,
        connect_timeout: float = CONNECT_TIMEOUT,
        engine: OwnedEngine | None = None,
    ):
        """`address`: the engine's (None: discovered). `engine`: the engine a launcher started
        at `address` for this client (trusted, no CURVE; stopped by `close()`)."""
        self.engine = engine
        if address is None:
            address = discover(None, context)
        if address is None:
            raise EngineUnavailable(
                f"no engine is running (nothing set in ${ENV_ENGINE} answers, no local `stemlink serve`): "
                "start one with `stemlink serve`, or use `stemlink.launcher.connect()` to start an embedded engine",
                field="address",
            )
        self.address = address
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.keepalive = keepalive
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self._handshake: HandshakeWatch | None = None
        curve = curve if curve is not None else os.environ.get(ENV_CURVE) or None
        key_file = secure_client(self.socket, curve, client_name) if curve is not None and self.engine is None else None
        self._watch = ConnectionWatch(address, connect_timeout, watched=self.engine is None and not address.startswith("inproc://"))
        if self.engine is None:  # a refused handshake raises at once, naming the cause (stemlink/bridge/auth.py)
            self._handshake = HandshakeWatch(self.socket, address, key_file, also=CONNECTION_EVENTS, on_event=self._watch.on_event)
        self._process = ProcessIdentity()  # the engine's, from `capabilities`
        self.socket.connect(address)
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._cancel = threading.Event()
        self.current_job: str | None = None
        self._final = False  # the running job's result or error arrived
        self.capabilities: Capabilities | None = None

    # ------------------------------------------------------------------ plumbing

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _send(self, msg: Message) -> None:
        try:
            self.socket.send_multipart(encode(msg), zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if self._handshake is not None:
                # a refused handshake also leaves no pipe to send on: name that cause if it is the one (raises)
                self._handshake.poll(int(CONNECT_TIMEOUT * 1000))
            raise EngineUnavailable(
                f"cannot send {msg.TYPE!r} to {self.address}: its send queue is full (engine unreachable)", field="address"
            ) from None

    def _send_quiet(self, msg: Message) -> None:
        """Best effort (pings, cancels): never blocks, never raises."""
        try:
            self.socket.send_multipart(encode(msg), zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            pass

    def _recv(self, timeout_ms: int) -> Message | None:
        if not (self._handshake.poll(timeout_ms) if self._handshake is not None else self.socket.poll(timeout_ms)):
            return None
        frames = self.socket.recv_multipart(copy=False)
        return decode(frames, "reply", REPLY_LIMITS)

    def _request(self, msg: Message, expect: type[M], timeout: float | None = None) -> M:
        timeout = self.timeout if timeout is None else timeout
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineUnavailable(f"no engine answered {msg.TYPE!r} at {self.address} within {timeout:g} s", field="address")
            reply = self._recv(max(1, int(min(left, 0.1) * 1000)))
            if reply is None:
                dead = self._dead_engine(f"before answering {msg.TYPE!r}")
                if dead is not None:
                    raise dead
                continue
            if reply.id != msg.id:
                continue  # stale replies of an earlier, abandoned request
            if isinstance(reply, Error):
                raise reply.to_exception()
            if not isinstance(reply, expect):
                raise ProtocolError(f"expected {expect.TYPE!r} in reply to {msg.TYPE!r}, got {reply.TYPE!r}", field="type")
            return reply

    # ------------------------------------------------------------------ requests

    def hello(self) -> Capabilities:
        """Engine version, protocol version, models, limits (cached in `.capabilities`)."""
        caps = self._request(Hello(id=self._new_id(), client="stemlink-client"), Capabilities)
        self.capabilities = caps
        self._process = ProcessIdentity(pid=caps.pid, boot_id=caps.boot_id, start_ticks=caps.process_start)
        return caps

    def models(self) -> list[ModelInfo]:
        return list(self.hello().models)

    def status(self) -> Status:
        return self._request(StatusRequest(id=self._new_id()), Status)

    def ping(self, timeout: float | None = None) -> float:
        """Round-trip time in seconds; raises `EngineUnavailable` when nobody answers."""
        start = time.perf_counter()
        self._request(Ping(id=self._new_id()), Pong, timeout)
        return time.perf_counter() - start

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel the running job (default) or another job of this client by id."""
        if job_id is None or job_id == self.current_job:
            self._cancel.set()
        else:
            self._send_quiet(Cancel(id=self._new_id(), job=job_id))

    def submit(self, request: TaskRequest, *, progress: ProgressFn | None = None, timeout: float | None = None) -> TaskResult:
        """Run one task and wait for its result.

        `progress(done, total, stage)` is called for every progress message; raising
        `Cancelled` from it cancels the job (then `Cancelled` is raised here). `timeout`
        bounds the whole job (None: no bound; a dead engine is still detected, see the module
        docstring). Whatever ends the wait without the job's final reply (timeout, Ctrl-C, an
        exception) first sends `cancel` for the job, so it never runs on as an orphan.
        """
        self._check_limits(request)
        job_id = self._new_id()
        self._cancel.clear()
        self.current_job = job_id
        self._final = False
        try:
            if self._handshake is not None:
                self._handshake.poll(0)  # read pending connection events: a drop before the submit is not this job's
            drops = self._watch.drops
            self._send(Submit(id=job_id, request=request, keepalive=self.keepalive))
            return self._wait_job(job_id, progress, timeout, self._accept_deadline(request), drops)
        except BaseException:
            if not self._final:  # gave up (timeout, Ctrl-C, dead engine, a bug): do not leave the job running
                self._send_quiet(Cancel(id=self._new_id(), job=job_id))
            raise
        finally:
            self.current_job = None

    def _check_limits(self, request: TaskRequest) -> None:
        """Refuse locally what the engine would refuse (an oversized frame is dropped by
        ZeroMQ without any reply, which would otherwise look like a dead engine)."""
        limits = (self.capabilities or self.hello()).limits
        if len(request.inputs) > limits.max_inputs:
            raise InvalidInput(f"{len(request.inputs)} audio inputs; the engine accepts at most {limits.max_inputs}", field="inputs")
        total = 0
        for name, audio in request.inputs.items():
            shape = np.shape(audio)
            if len(shape) == 2 and shape[0] > limits.max_channels:
                raise InvalidInput(f"input {name!r} has {shape[0]} channels; the engine accepts at most {limits.max_channels}", field=name)
            if len(shape) == 2 and shape[1] > limits.max_frames:
                raise TooLarge(f"input {name!r} has {shape[1]} frames; the engine accepts at most {limits.max_frames}", field=name)
            total += int(np.prod(shape)) * 4
        if total > limits.max_message_bytes:
            raise TooLarge(f"inputs are {total} bytes; the engine accepts at most {limits.max_message_bytes} per job", field="inputs")

    @property
    def silence_limit(self) -> float:
        """Seconds of silence during a job before the engine is declared dead (module docstring)."""
        if self.heartbeat_timeout is not None:
            return self.heartbeat_timeout
        interval = self.capabilities.heartbeat_interval if self.capabilities is not None else 0.0
        return max(DEFAULT_SILENCE, SILENCE_BEATS * interval)

    def _accept_deadline(self, request: TaskRequest) -> float:
        """Seconds to wait for `accepted`: the I/O thread accepts at once, so the upload (at
        >= 10 MB/s) plus the silence limit, capped at `timeout`."""
        nbytes = sum(int(np.prod(np.shape(a))) * 4 for a in request.inputs.values())
        return min(self.timeout, self.silence_limit + nbytes / MIN_TRANSFER_RATE)

    def _dead_engine(self, during: str, drops: int | None = None) -> EngineUnavailable | None:
        """The error to raise if the engine is known to be gone now, else None (see the
        module docstring; `drops`: connection drops seen when the job was submitted)."""
        if self.engine is not None and not self.engine.alive:
            return EngineUnavailable(f"the embedded engine ({self.address}) died {during}{self.engine.exit_info()}")
        if process_state(self._process) == GONE:
            return self._died(during)
        problem = self._watch.problem()
        if problem is not None:
            return EngineUnavailable(f"{problem} ({during})", field="address")
        if drops is not None and self._watch.drops > drops:
            if process_state(self._process) == GONE:
                return self._died(during)
            return EngineUnavailable(
                f"the connection to the engine at {self.address} was lost {during} (the engine closed it, or the network reset it)"
            )
        return None

    def _died(self, during: str) -> EngineUnavailable:
        if self.engine is not None:  # our own child: wait for its exit status
            self.engine.wait_exit(5.0)
            return EngineUnavailable(f"the embedded engine ({self.address}) died {during}{self.engine.exit_info()}")
        return EngineUnavailable(f"the engine process {self._process.pid} at {self.address} died {during}")

    def _wait_job(self, job_id: str, progress: ProgressFn | None, timeout: float | None, accept_within: float, drops: int) -> TaskResult:
        start = last = last_ping = previous = time.monotonic()
        accepted = cancel_sent = False
        silence_allowed = self.silence_limit
        during = f"during job {job_id!r}"
        while True:
            if self._cancel.is_set() and not cancel_sent:
                self._send_quiet(Cancel(id=self._new_id(), job=job_id))
                cancel_sent = True
            if self.keepalive > 0 and time.monotonic() - last_ping >= self.keepalive:
                self._send_quiet(Ping(id=self._new_id()))  # keepalive: the engine cancels jobs of silent clients
                last_ping = time.monotonic()
            reply = self._recv(POLL_MS)
            now = time.monotonic()
            if now - previous > STALL_GAP:  # this client was not running: that silence is not the engine's
                start, last = start + (now - previous), last + (now - previous)
            previous = now
            if reply is None or reply.id != job_id:
                dead = self._dead_engine(during if accepted else f"before it accepted job {job_id!r}", drops)
                if dead is not None:
                    raise dead
                if not accepted and now - start > accept_within:
                    raise EngineUnavailable(
                        f"the engine at {self.address} did not accept the job within {accept_within:.1f} s", field="address"
                    )
                if accepted and now - last > silence_allowed:
                    stopped = " (its process is stopped: SIGSTOP or a debugger)" if process_state(self._process) == STOPPED else ""
                    raise EngineUnavailable(
                        f"engine at {self.address} stopped responding {during}{stopped}: nothing for {now - last:.1f} s "
                        f"(heartbeat_timeout {silence_allowed:g} s)"
                    )
                if timeout is not None and now - start > timeout:
                    raise Timeout(f"job {job_id!r} did not finish within {timeout:g} s (cancelled)", field="timeout")
                continue
            last = now
            if isinstance(reply, Result):
                self._final = True
                if cancel_sent:  # finished before the cancel landed: honour the request anyway
                    raise Cancelled(f"job {job_id!r} was cancelled (it finished first; result discarded)", field="job")
                return reply.result
            if isinstance(reply, Error):
                self._final = True
                raise reply.to_exception()
            accepted = accepted or isinstance(reply, (Accepted, Heartbeat, Progress))
            if isinstance(reply, Progress) and reply.stage == "send":
                silence_allowed = self.silence_limit + reply.total / MIN_TRANSFER_RATE  # the result is on its way
                continue
            if isinstance(reply, Progress) and progress is not None and not cancel_sent:
                try:
                    progress(reply.done, reply.total, reply.stage)
                except Cancelled:
                    self._cancel.set()

    # ------------------------------------------------------------------ tasks

    def _task(
        self,
        task: str,
        sample_rate: int,
        inputs: Mapping[str, Any],
        *,
        progress: ProgressFn | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> TaskResult:
        params = fields.pop("params", None) or {}
        request = TaskRequest(
            task=task, sample_rate=int(sample_rate), inputs={k: _planar(v) for k, v in inputs.items()}, params=dict(params), **fields
        )
        return self.submit(request, progress=progress, timeout=timeout)

    def separate(
        self,
        mix: Any,
        sample_rate: int,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
        timeout: float | None = None,
    ) -> TaskResult:
        """mix (C, N) -> result.stems {stem: (C, N)}."""
        return self._task("separate", sample_rate, {"mix": mix}, model=model, params=params, seed=seed, progress=progress, timeout=timeout)

    def extract(
        self,
        mix: Any,
        sample_rate: int,
        *,
        stems: Sequence[str],
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
    ) -> TaskResult:
        return self._task(
            "extract", sample_rate, {"mix": mix}, stems=tuple(stems), model=model, params=params, seed=seed, progress=progress
        )

    def remove(
        self,
        mix: Any,
        sample_rate: int,
        *,
        stems: Sequence[str],
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
    ) -> TaskResult:
        return self._task("remove", sample_rate, {"mix": mix}, stems=tuple(stems), model=model, params=params, seed=seed, progress=progress)

    def accompany(
        self,
        context: Any,
        sample_rate: int,
        *,
        context_stems: Sequence[str] = (),
        stems: Sequence[str] = (),
        model: str | None = None,
        candidates: int = 1,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
        timeout: float | None = None,
        text: str = "",
        reference: Any = None,
    ) -> TaskResult:
        """context (C, N) sub-mix of `context_stems` -> result.stems {stem: (C, N)} for `stems`.
        `text` (a description of the part) or `reference` ((C, M) style clip at `sample_rate`,
        0.5-30 s) steer models whose `conditions` include them; `context_stems` may be () for
        models that read the whole region."""
        return self._task(
            "accompany",
            sample_rate,
            {"context": context, **({} if reference is None else {"reference": reference})},
            text=text,
            context_stems=tuple(context_stems),
            stems=tuple(stems),
            model=model,
            candidates=candidates,
            params=params,
            seed=seed,
            progress=progress,
            timeout=timeout,
        )

    def generate(
        self,
        frames: int,
        sample_rate: int,
        *,
        channels: int = 2,
        stems: Sequence[str] = (),
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        progress: ProgressFn | None = None,
        timeout: float | None = None,
        text: str = "",
        reference: Any = None,
    ) -> TaskResult:
        """-> result.stems {stem: (channels, frames)}; `text` / `reference` as for `accompany`."""
        return self._task(
            "generate",
            sample_rate,
            {} if reference is None else {"reference": reference},
            text=text,
            frames=int(frames),
            channels=int(channels),
            stems=tuple(stems),
            model=model,
            params=params,
            seed=seed,
            progress=progress,
            timeout=timeout,
        )

    def score(self, a: Any, b: Any, sample_rate: int, *, model: str | None = None, timeout: float | None = None) -> TaskResult:
        """Coherence of two sub-mixes: result.scores["score"]."""
        return self._task("score", sample_rate, {"a": a, "b": b}, model=model, timeout=timeout)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        handshake, socket, engine = (getattr(self, name, None) for name in ("_handshake", "socket", "engine"))  # __init__ may have failed
        if handshake is not None:
            handshake.close()
        if socket is not None and not socket.closed:
            socket.close(linger=0)
        if engine is not None:
            engine.stop()
            self.engine = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort for scripts that forget close()
        try:
            self.close()
        except Exception:
            pass
