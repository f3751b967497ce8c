"""The typed messages of protocol v1, one dataclass per message type (see `stemlink/bridge/PROTOCOL.md`).

Each has `to_header()` (the msgpack map minus the audio description) and
`from_header(reader, id)` (fields validated through a `HeaderReader`). Messages that carry
audio (`AUDIO` names the part: `Submit` its request's inputs, `Result` its result's stems)
give `{name: (C, N) float32 array}` from `audio()` and take the decoded arrays in
`with_audio()`; `encode`/`decode` in `stemlink/bridge/protocol.py` move those arrays as frames.
`Submit` carries the contract's `TaskRequest` and `Result` its `TaskResult` as they are
(`stemlink/contract.py`): the header fields are theirs, nothing is converted per job.
`REQUESTS` and `REPLIES` map the `type` field to the class for each direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from stemlink.bridge.fields import INT64, NAME_PATTERN, HeaderReader, short_repr
from stemlink.bridge.wire import ID_MAX_LEN, PROTOCOL_VERSION, AudioSpec
from stemlink.contract import MAX_SAMPLE_RATE, MAX_TEXT, MIN_SAMPLE_RATE, TASKS, Limits, TaskRequest, TaskResult, check_request, check_task
from stemlink.errors import ERRORS_BY_CODE, ProtocolError, StemlinkError


def to_plain(value: Any, _depth: int = 0) -> Any:
    """Make engine-side values (numpy scalars, tuples, paths) msgpack-safe JSON-like data."""
    if _depth > 3:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        n = int(value)
        return n if INT64[0] <= n <= INT64[1] else str(n)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else str(x)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, _depth + 1) for v in value]
    return str(value)


@dataclass
class Message:
    """Base: `id` correlates a request and all its replies (a job's id is its submit's id)."""

    TYPE: ClassVar[str] = ""
    AUDIO: ClassVar[str | None] = None  # what the audio frames are ("inputs", "stems"); None: no audio
    id: str

    def to_header(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": self.TYPE, "id": self.id, **self.body()}

    def body(self) -> dict[str, Any]:
        return {}

    def audio(self) -> Mapping[str, np.ndarray]:
        """{name: (C, N) array} sent as frames (messages with `AUDIO`)."""
        return {}

    def with_audio(self, arrays: dict[str, np.ndarray]) -> None:
        """Attach the arrays decoded from the frames."""

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Message:
        return cls(id=msg_id)


@dataclass
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    client: str = ""

    def body(self) -> dict[str, Any]:
        return {"client": self.client}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Hello:
        return cls(id=msg_id, client=r.str("client", "", max_len=128))


@dataclass(frozen=True)
class ModelInfo:
    """One servable model as the engine advertises it (all its formats merged)."""

    name: str
    version: str
    family: str
    tasks: tuple[str, ...]
    formats: tuple[str, ...]
    sample_rate: int
    stems: tuple[str, ...]
    window: int
    delay: int
    sha256: str
    conditions: tuple[str, ...] = ()  # what steers its accompany/generate: "context_stems", "text", "reference"

    def to_header(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(tasks=list(self.tasks), formats=list(self.formats), stems=list(self.stems), conditions=list(self.conditions))
        if not self.conditions:
            del d["conditions"]  # optional: absent = none
        return d

    @classmethod
    def from_header(cls, r: HeaderReader) -> ModelInfo:
        return cls(
            name=r.str("name", pattern=NAME_PATTERN),
            version=r.str("version", max_len=64),
            family=r.str("family", max_len=64),
            tasks=r.names("tasks"),
            formats=r.names("formats"),
            sample_rate=r.int("sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            stems=r.names("stems"),
            window=r.int("window", 1, INT64[1]),
            delay=r.int("delay", 0, INT64[1]),
            sha256=r.str("sha256", max_len=64),
            conditions=r.names("conditions", ()),
        )


@dataclass
class Capabilities(Message):
    TYPE: ClassVar[str] = "capabilities"
    engine_version: str = ""
    protocol_version: int = PROTOCOL_VERSION
    models: list[ModelInfo] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    defaults: dict[str, str] = field(default_factory=dict)  # task -> default model name
    # Liveness (stemlink/bridge/liveness.py): the engine process, so a client on the same host can tell
    # a busy engine from a dead one; 0 / "" when unknown. Optional on read (older engines).
    pid: int = 0
    boot_id: str = ""  # /proc/sys/kernel/random/boot_id of the engine's kernel
    process_start: int = 0  # start time of `pid`, clock ticks after boot (/proc/PID/stat field 22)
    heartbeat_interval: float = 0.0  # seconds between the engine's heartbeats for unfinished jobs
    # Fair share (stemlink/engine/server/jobs.py); 0 = no limit.
    max_client_jobs: int = 0  # active (queued + running) jobs per client connection
    memory_budget: int = 0  # bytes all active jobs may hold together (inputs + estimated outputs)
    job_timeout: float = 0.0  # seconds a job may run before the engine cancels it with TIMEOUT

    def body(self) -> dict[str, Any]:
        return {
            "engine_version": self.engine_version,
            "protocol_version": self.protocol_version,
            "models": [m.to_header() for m in self.models],
            "limits": self.limits.to_header(),
            "workers": self.workers,
            "defaults": dict(self.defaults),
            "pid": self.pid,
            "boot_id": self.boot_id,
            "process_start": self.process_start,
            "heartbeat_interval": self.heartbeat_interval,
            "max_client_jobs": self.max_client_jobs,
            "memory_budget": self.memory_budget,
            "job_timeout": self.job_timeout,
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Capabilities:
        raw_limits = r.plain("limits")
        if not isinstance(raw_limits, Mapping):
            raise ProtocolError("capabilities: field 'limits' must be a map", field="limits")
        lr = HeaderReader(raw_limits, "capabilities", prefix="limits.", top=False)
        limits_obj = Limits.from_header(lr)
        lr.finish()
        defaults = r.params("defaults", {})
        return cls(
            id=msg_id,
            engine_version=r.str("engine_version", max_len=64),
            protocol_version=r.int("protocol_version", 0, 2**31),
            models=r.items("models", ModelInfo.from_header, max_items=1024),
            limits=limits_obj,
            workers=r.int("workers", 0, 1024),
            defaults={k: str(v) for k, v in defaults.items()},
            pid=r.int("pid", 0, 2**31, 0),
            boot_id=r.str("boot_id", "", max_len=64),
            process_start=r.int("process_start", 0, INT64[1], 0),
            heartbeat_interval=r.float("heartbeat_interval", 0.0, 3600.0, 0.0),
            max_client_jobs=r.int("max_client_jobs", 0, 2**31, 0),
            memory_budget=r.int("memory_budget", 0, INT64[1], 0),
            job_timeout=r.float("job_timeout", 0.0, 10**9, 0.0),
        )


def _task(r: HeaderReader) -> str:
    task = r.str("task", max_len=64)
    check_task(task, where=f"{r.where}: ")
    return task


@dataclass
class Submit(Message):
    """Run one task: the contract's `TaskRequest` (its inputs are the audio frames; per task
    separate/extract/remove "mix", accompany "context", score "a" and "b", generate none:
    `frames`, `channels` give the output shape)."""

    TYPE: ClassVar[str] = "submit"
    AUDIO: ClassVar[str] = "inputs"
    request: TaskRequest
    keepalive: float = 0.0  # > 0: the client sends something at least this often while the job is unfinished

    def body(self) -> dict[str, Any]:
        q = self.request
        return {
            "task": q.task,
            "sample_rate": int(q.sample_rate),
            "model": q.model,
            "params": dict(q.params),
            "seed": int(q.seed),
            "stems": list(q.stems),
            "context_stems": list(q.context_stems),
            "candidates": int(q.candidates),
            "frames": int(q.frames),
            "channels": int(q.channels),
            "keepalive": float(self.keepalive),
            **({"text": q.text} if q.text else {}),  # optional: absent = no prompt (v1 headers stay byte for byte)
        }

    def audio(self) -> Mapping[str, np.ndarray]:
        return self.request.inputs

    def with_audio(self, arrays: dict[str, np.ndarray]) -> None:
        self.request = replace(self.request, inputs=arrays)

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Submit:
        """Types only; the bounds are `check_limits` (they depend on the engine's `Limits`)."""
        request = TaskRequest(
            task=_task(r),
            sample_rate=r.int("sample_rate", 0, INT64[1]),
            model=r.str("model", None, pattern=NAME_PATTERN),
            params=r.params("params", {}),
            seed=r.int("seed", 0, INT64[1], 0),
            stems=r.names("stems", ()),
            context_stems=r.names("context_stems", ()),
            candidates=r.int("candidates", 0, INT64[1], 1),
            frames=r.int("frames", 0, INT64[1], 0),
            channels=r.int("channels", 0, INT64[1], 0),
            text=r.str("text", "", max_len=MAX_TEXT),
        )
        return cls(id=msg_id, request=request, keepalive=r.float("keepalive", 0.0, 3600.0, 0.0))

    def check_limits(self, audio: Sequence[AudioSpec], limits: Limits) -> None:
        """The contract's `check_request` from the header alone (before any array is built or
        the job queued). `audio`: the described inputs (count, channels, `max_frames` and
        total bytes are already checked by `decode`)."""
        check_request(self.request, [a.shape for a in audio], limits, where="submit: ", names_field="audio", frames_field="audio[{i}]")


@dataclass
class Accepted(Message):
    TYPE: ClassVar[str] = "accepted"
    position: int = 0  # jobs ahead of this one (0 = next to run)

    def body(self) -> dict[str, Any]:
        return {"position": self.position}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Accepted:
        return cls(id=msg_id, position=r.int("position", 0, 2**31))


@dataclass
class Progress(Message):
    TYPE: ClassVar[str] = "progress"
    done: int = 0
    total: int = 0
    stage: str = "run"

    def body(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "stage": self.stage}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Progress:
        return cls(id=msg_id, done=r.int("done", 0, INT64[1]), total=r.int("total", 0, INT64[1]), stage=r.str("stage", max_len=64))


@dataclass
class Heartbeat(Message):
    """Sent by the engine for every unfinished job at least every heartbeat interval."""

    TYPE: ClassVar[str] = "heartbeat"
    state: str = "queued"  # "queued" | "running"
    done: int = 0
    total: int = 0

    def body(self) -> dict[str, Any]:
        return {"state": self.state, "done": self.done, "total": self.total}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Heartbeat:
        return cls(
            id=msg_id,
            state=r.str("state", choices=("queued", "running")),
            done=r.int("done", 0, INT64[1]),
            total=r.int("total", 0, INT64[1]),
        )


@dataclass
class Result(Message):
    """A finished job: the contract's `TaskResult` (its stems are the audio frames)."""

    TYPE: ClassVar[str] = "result"
    AUDIO: ClassVar[str] = "stems"
    result: TaskResult

    def body(self) -> dict[str, Any]:
        r = self.result
        return {
            "task": r.task,
            "model": r.model,
            "model_version": str(r.model_version),
            "model_sha256": str(r.model_sha256),
            "scores": {str(k): float(v) for k, v in r.scores.items()},
            "params": to_plain(r.params),
            "seed": int(r.seed),
            "info": to_plain(r.info),
        }

    def audio(self) -> Mapping[str, np.ndarray]:
        return self.result.stems

    def with_audio(self, arrays: dict[str, np.ndarray]) -> None:
        self.result.stems = arrays

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Result:
        scores = r.plain("scores", {})
        if not isinstance(scores, Mapping) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in scores.values()):
            raise ProtocolError(f"result: field 'scores' must be a map name -> number, got {short_repr(scores)}", field="scores")
        info = r.plain("info", {})
        params = r.plain("params", {})
        return cls(
            id=msg_id,
            result=TaskResult(
                task=r.str("task", choices=TASKS),
                model=r.str("model", max_len=64),
                model_version=r.str("model_version", max_len=64),
                model_sha256=r.str("model_sha256", max_len=64),
                scores={k: float(v) for k, v in scores.items()},
                params=dict(params) if isinstance(params, Mapping) else {},
                seed=r.int("seed", 0, INT64[1]),
                info=dict(info) if isinstance(info, Mapping) else {},
            ),
        )


@dataclass
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str = "INTERNAL"
    message: str = ""
    field: str | None = None

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Error:
        return cls(
            id=msg_id, code=r.str("code", max_len=64), message=r.str("message", max_len=4096), field=r.str("field", None, max_len=256)
        )

    @classmethod
    def from_exception(cls, msg_id: str, exc: BaseException) -> Error:
        if isinstance(exc, StemlinkError):
            return cls(id=msg_id, code=exc.code, message=exc.message[:4096], field=exc.field)
        return cls(id=msg_id, code="INTERNAL", message=f"{type(exc).__name__}: {exc}"[:4096])

    def to_exception(self) -> StemlinkError:
        cls = ERRORS_BY_CODE.get(self.code, StemlinkError)
        exc = cls(self.message, field=self.field)
        if cls is StemlinkError:
            exc.code = self.code
        return exc


@dataclass
class Cancel(Message):
    """Cancel job `job` (the id of an earlier submit from the same client)."""

    TYPE: ClassVar[str] = "cancel"
    job: str = ""

    def body(self) -> dict[str, Any]:
        return {"job": self.job}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Cancel:
        return cls(id=msg_id, job=r.str("job", max_len=ID_MAX_LEN))


@dataclass
class Ping(Message):
    TYPE: ClassVar[str] = "ping"


@dataclass
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    uptime: float = 0.0

    def body(self) -> dict[str, Any]:
        return {"uptime": self.uptime}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Pong:
        return cls(id=msg_id, uptime=r.float("uptime", 0.0, math.inf))


@dataclass
class StatusRequest(Message):
    TYPE: ClassVar[str] = "status"


@dataclass
class Status(Message):
    TYPE: ClassVar[str] = "status"
    queue_depth: int = 0
    queue_size: int = 0
    running: list[dict[str, Any]] = field(default_factory=list)  # [{job, task, model, done, total, cancelling}]
    uptime: float = 0.0
    jobs_done: int = 0
    jobs_failed: int = 0
    queued: list[dict[str, Any]] = field(default_factory=list)  # [{job, task, model}] in queue order
    memory_used: int = 0  # bytes held by active jobs (inputs + estimated outputs)
    memory_budget: int = 0  # 0 = no budget

    def body(self) -> dict[str, Any]:
        return {
            "queue_depth": self.queue_depth,
            "queue_size": self.queue_size,
            "running": self.running,
            "uptime": self.uptime,
            "jobs_done": self.jobs_done,
            "jobs_failed": self.jobs_failed,
            "queued": self.queued,
            "memory_used": self.memory_used,
            "memory_budget": self.memory_budget,
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> Status:
        running, queued = r.plain("running"), r.plain("queued", [])
        for name, value in (("running", running), ("queued", queued)):
            if not isinstance(value, list):
                raise ProtocolError(f"status: field {name!r} must be a list", field=name)
        return cls(
            id=msg_id,
            queue_depth=r.int("queue_depth", 0, 2**31),
            queue_size=r.int("queue_size", 0, 2**31),
            running=running,
            uptime=r.float("uptime", 0.0, math.inf),
            jobs_done=r.int("jobs_done", 0, INT64[1]),
            jobs_failed=r.int("jobs_failed", 0, INT64[1]),
            queued=queued,
            memory_used=r.int("memory_used", 0, INT64[1], 0),
            memory_budget=r.int("memory_budget", 0, INT64[1], 0),
        )


REQUESTS: dict[str, type[Message]] = {m.TYPE: m for m in (Hello, Submit, Cancel, Ping, StatusRequest)}
REPLIES: dict[str, type[Message]] = {m.TYPE: m for m in (Capabilities, Accepted, Progress, Heartbeat, Result, Error, Pong, Status)}
