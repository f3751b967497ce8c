"""`Client`: talk to a stemlink engine from scripts, the CLI or the DAW host.

    with Client() as client:                       # no address: a local engine or an embedded one
        result = client.separate(mix, 44100)        # mix (C, N) float32 -> result.stems[name] (C, N)

    Client("tcp://127.0.0.1:5555", timeout=30)     # a running `stemlink serve`

With no address, `stemlink.bridge.discovery.discover` picks `$STEMLINK_ENGINE`, or a local
`stemlink serve` on the default address that answers, else the client starts an embedded
engine (`embedded="inproc"`: a thread; `"process"`: a child process over ipc://).
Remote engines started with `stemlink serve --curve DIR`: pass `curve=DIR` (or set
`$STEMLINK_CURVE`) to encrypt and authenticate with the keys in DIR (see `bridge/auth.py`).

One DEALER socket; calls are synchronous and a client is used from one thread at a time
(`cancel()` may be called from another thread: it flags the running job). Every job reply
resets a dead-engine timer: when nothing (progress, heartbeat, result) arrives for
`heartbeat_timeout` seconds during a job, the call raises `EngineUnavailable` (an embedded
engine the client started itself is also watched directly: its death is noticed at once). `timeout` bounds
requests that are not jobs (hello, ping, status); a job must be accepted within a heartbeat
timeout plus its upload time (the client said hello to the engine just before).
While a job runs the client pings every `keepalive` seconds (the submit declares it), so an
engine cancels the jobs of a client that crashed. Engine errors are raised as the matching
`stemlink.errors` class. Returned stems are
read-only zero-copy views of the received message (use `np.array(x)` for a writable copy).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import zmq

from stemlink.bridge.auth import ENV_CURVE, secure_client
from stemlink.bridge.discovery import discover
from stemlink.bridge.protocol import (
    Accepted, Cancel, Capabilities, Error, Heartbeat, Hello, Limits, Message, ModelInfo, Ping, Pong, Progress, Result,
    Status, StatusRequest, Submit, decode, encode,
)
from stemlink.engine.tasks import TaskRequest, TaskResult
from stemlink.errors import Cancelled, EngineUnavailable, InvalidInput, ProtocolError, Timeout, TooLarge

ProgressFn = Callable[[int, int, str], None]
REPLY_LIMITS = Limits(max_frames=2**40, max_channels=1024, max_inputs=1024, max_message_bytes=2**40, max_header_bytes=16 * 2**20)
POLL_MS = 50
MIN_TRANSFER_RATE = 10e6  # bytes/s assumed for uploads and result downloads (deadlines only)


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
        exports_dir: str | os.PathLike | None = None,
        heartbeat_timeout: float = 1.5,
        embedded: str = "inproc",
        context: zmq.Context | None = None,
        discover_engine: bool = True,
        curve: str | os.PathLike | None = None,
        client_name: str = "client",
        keepalive: float = 1.0,
    ):
        self.engine = None
        if address is None and discover_engine:
            address = discover(exports_dir, context)
        if address is None:
            from stemlink.engine.server.embedded import Engine

            self.engine = Engine.start_embedded(exports_dir, transport=embedded, context=context)
            address, context = self.engine.address, self.engine.context
        self.address = address
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.keepalive = keepalive
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        curve = curve if curve is not None else os.environ.get(ENV_CURVE) or None
        if curve is not None and self.engine is None:
            secure_client(self.socket, curve, client_name)
        self.socket.connect(address)
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._cancel = threading.Event()
        self.current_job: str | None = None
        self.capabilities: Capabilities | None = None

    # ------------------------------------------------------------------ plumbing

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _send(self, msg: Message) -> None:
        self.socket.send_multipart(encode(msg), copy=False)

    def _recv(self, timeout_ms: int) -> Message | None:
        if not self.socket.poll(timeout_ms):
            return None
        frames = self.socket.recv_multipart(copy=False)
        return decode(frames, "reply", REPLY_LIMITS)

    def _request(self, msg: Message, expect: type[Message], timeout: float | None = None) -> Message:
        timeout = self.timeout if timeout is None else timeout
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineUnavailable(f"no engine answered {msg.TYPE!r} at {self.address} within {timeout:g} s", field="address")
            reply = self._recv(max(1, int(left * 1000)))
            if reply is None or reply.id != msg.id:
                continue  # stale replies of an earlier, abandoned request
            if isinstance(reply, Error):
                raise reply.to_exception()
            if not isinstance(reply, expect):
                raise ProtocolError(f"expected {expect.TYPE!r} in reply to {msg.TYPE!r}, got {reply.TYPE!r}", field="type")
            return reply

    # ------------------------------------------------------------------ requests

    def hello(self) -> Capabilities:
        """Engine version, protocol version, models, limits (cached in `.capabilities`)."""
        self.capabilities = self._request(Hello(id=self._new_id(), client="stemlink-client"), Capabilities)
        return self.capabilities

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
            self._send(Cancel(id=self._new_id(), job=job_id))

    def submit(self, request: TaskRequest, *, progress: ProgressFn | None = None, timeout: float | None = None) -> TaskResult:
        """Run one task and wait for its result.

        `progress(done, total, stage)` is called for every progress message; raising
        `Cancelled` from it cancels the job (then `Cancelled` is raised here). `timeout`
        bounds the whole job (None: no bound; a dead engine is still detected by heartbeats).
        """
        self._check_limits(request)
        job_id = self._new_id()
        self._cancel.clear()
        self.current_job = job_id
        try:
            self._send(Submit.from_request(job_id, request, keepalive=self.keepalive))
            return self._wait_job(job_id, progress, timeout, self._accept_deadline(request))
        except KeyboardInterrupt:
            self._send(Cancel(id=self._new_id(), job=job_id))  # Ctrl-C: do not leave the job running
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

    def _accept_deadline(self, request: TaskRequest) -> float:
        """Seconds to wait for `accepted`: the I/O thread accepts at once, so the upload (at
        >= 10 MB/s) plus a heartbeat timeout, capped at `timeout`."""
        nbytes = sum(int(np.prod(np.shape(a))) * 4 for a in request.inputs.values())
        return min(self.timeout, self.heartbeat_timeout + nbytes / MIN_TRANSFER_RATE)

    def _wait_job(self, job_id: str, progress: ProgressFn | None, timeout: float | None, accept_within: float) -> TaskResult:
        start = last = last_ping = time.monotonic()
        accepted = cancel_sent = False
        silence_allowed = self.heartbeat_timeout
        while True:
            if self._cancel.is_set() and not cancel_sent:
                self._send(Cancel(id=self._new_id(), job=job_id))
                cancel_sent = True
            if self.keepalive > 0 and time.monotonic() - last_ping >= self.keepalive:
                self._send(Ping(id=self._new_id()))  # keepalive: the engine cancels jobs of silent clients
                last_ping = time.monotonic()
            reply = self._recv(POLL_MS)
            now = time.monotonic()
            if reply is None or reply.id != job_id:
                if self.engine is not None and not self.engine.alive:
                    raise EngineUnavailable(f"the embedded engine ({self.address}) died during job {job_id!r}{self.engine.exit_info()}")
                if not accepted and now - start > accept_within:
                    raise EngineUnavailable(f"the engine at {self.address} did not accept the job within {accept_within:.1f} s", field="address")
                if accepted and now - last > silence_allowed:
                    raise EngineUnavailable(f"engine at {self.address} stopped responding during job {job_id!r} (nothing for {now - last:.1f} s)")
                if timeout is not None and now - start > timeout:
                    self._send(Cancel(id=self._new_id(), job=job_id))
                    raise Timeout(f"job {job_id!r} did not finish within {timeout:g} s (cancelled)", field="timeout")
                continue
            last = now
            if isinstance(reply, Result):
                if cancel_sent:  # finished before the cancel landed: honour the request anyway
                    raise Cancelled(f"job {job_id!r} was cancelled (it finished first; result discarded)", field="job")
                return reply.to_result()
            if isinstance(reply, Error):
                raise reply.to_exception()
            accepted = accepted or isinstance(reply, (Accepted, Heartbeat, Progress))
            if isinstance(reply, Progress) and reply.stage == "send":
                silence_allowed = self.heartbeat_timeout + reply.total / MIN_TRANSFER_RATE  # the result is on its way
                continue
            if isinstance(reply, Progress) and progress is not None and not cancel_sent:
                try:
                    progress(reply.done, reply.total, reply.stage)
                except Cancelled:
                    self._cancel.set()

    # ------------------------------------------------------------------ tasks

    def _task(self, task: str, sample_rate: int, inputs: Mapping[str, Any], *, progress: ProgressFn | None = None,
              timeout: float | None = None, **fields: Any) -> TaskResult:
        params = fields.pop("params", None) or {}
        request = TaskRequest(task=task, sample_rate=int(sample_rate), inputs={k: _planar(v) for k, v in inputs.items()},
                              params=dict(params), **fields)
        return self.submit(request, progress=progress, timeout=timeout)

    def separate(self, mix: Any, sample_rate: int, *, model: str | None = None, params: Mapping[str, Any] | None = None,
                 seed: int = 0, progress: ProgressFn | None = None, timeout: float | None = None) -> TaskResult:
        """mix (C, N) -> result.stems {stem: (C, N)}."""
        return self._task("separate", sample_rate, {"mix": mix}, model=model, params=params, seed=seed, progress=progress, timeout=timeout)

    def extract(self, mix: Any, sample_rate: int, *, stems: Sequence[str], model: str | None = None,
                params: Mapping[str, Any] | None = None, seed: int = 0, progress: ProgressFn | None = None) -> TaskResult:
        return self._task("extract", sample_rate, {"mix": mix}, stems=tuple(stems), model=model, params=params, seed=seed, progress=progress)

    def remove(self, mix: Any, sample_rate: int, *, stems: Sequence[str], model: str | None = None,
               params: Mapping[str, Any] | None = None, seed: int = 0, progress: ProgressFn | None = None) -> TaskResult:
        return self._task("remove", sample_rate, {"mix": mix}, stems=tuple(stems), model=model, params=params, seed=seed, progress=progress)

    def accompany(self, context: Any, sample_rate: int, *, context_stems: Sequence[str], stems: Sequence[str] = (),
                  model: str | None = None, candidates: int = 1, params: Mapping[str, Any] | None = None, seed: int = 0,
                  progress: ProgressFn | None = None, timeout: float | None = None) -> TaskResult:
        """context (C, N) sub-mix of `context_stems` -> result.stems {stem: (C, N)} for `stems`."""
        return self._task("accompany", sample_rate, {"context": context}, context_stems=tuple(context_stems), stems=tuple(stems),
                          model=model, candidates=candidates, params=params, seed=seed, progress=progress, timeout=timeout)

    def generate(self, frames: int, sample_rate: int, *, channels: int = 2, stems: Sequence[str] = (), model: str | None = None,
                 params: Mapping[str, Any] | None = None, seed: int = 0, progress: ProgressFn | None = None,
                 timeout: float | None = None) -> TaskResult:
        """-> result.stems {stem: (channels, frames)}."""
        return self._task("generate", sample_rate, {}, frames=int(frames), channels=int(channels), stems=tuple(stems),
                          model=model, params=params, seed=seed, progress=progress, timeout=timeout)

    def score(self, a: Any, b: Any, sample_rate: int, *, model: str | None = None, timeout: float | None = None) -> TaskResult:
        """Coherence of two sub-mixes: result.scores["score"]."""
        return self._task("score", sample_rate, {"a": a, "b": b}, model=model, timeout=timeout)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if not self.socket.closed:
            self.socket.close(linger=0)
        if self.engine is not None:
            self.engine.stop()
            self.engine = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort for scripts that forget close()
        try:
            self.close()
        except Exception:
            pass
