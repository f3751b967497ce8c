"""The stemlink wire protocol, version 1 (documented in `bridge/PROTOCOL.md`).

A message is one ZeroMQ multipart message:

    frame 0     msgpack map header {"v": 1, "type": ..., "id": ..., ...}
    frame 1..K  raw little-endian float32 audio, PLANAR (C, N) C-contiguous, one frame per
                entry of header["audio"] = [{"name", "channels", "frames"}, ...], same order

Every message type is a dataclass with `to_header()` / `from_header(reader)`; `encode(msg)`
gives the frames to send (arrays are passed as buffers for `copy=False`), `decode(frames,
direction)` validates everything at the boundary and returns the dataclass, or raises a
`stemlink.errors` subclass naming the field. Nothing is ever unpickled: msgpack is unpacked
with strict string map keys, length limits, no bin and no ext types. Audio arrays decoded from
frames are read-only zero-copy views (`np.frombuffer`) of the received frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping, Sequence

import msgpack
import numpy as np

from stemlink.bridge.fields import INT64, NAME_PATTERN, HeaderReader, check_plain, depth, short_repr
from stemlink.engine.models.base import TASKS
from stemlink.engine.tasks import TaskRequest, TaskResult
from stemlink.errors import ERRORS_BY_CODE, InvalidInput, ProtocolError, StemlinkError, TooLarge, VersionMismatch

PROTOCOL_VERSION = 1
DTYPE = np.dtype("<f4")
ID_MAX_LEN = 64
SAMPLE_RATES = (1000, 384000)


@dataclass(frozen=True)
class Limits:
    """What an engine accepts; advertised in `capabilities`."""

    max_frames: int = 2**26  # per audio input (~25 min at 44.1 kHz)
    max_channels: int = 16
    max_inputs: int = 8
    max_message_bytes: int = 2**30  # all audio frames of one message together
    max_header_bytes: int = 64 * 1024
    queue_size: int = 8

    def to_header(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_header(cls, r: HeaderReader) -> "Limits":
        return cls(**{f.name: r.int(f.name, 0, INT64[1]) for f in fields(cls)})


@dataclass(frozen=True)
class AudioSpec:
    """Describes one audio frame: `channels` x `frames` float32 samples, planar."""

    name: str
    channels: int
    frames: int

    @property
    def nbytes(self) -> int:
        return self.channels * self.frames * DTYPE.itemsize


# --------------------------------------------------------------------------- messages


@dataclass
class Message:
    """Base: `id` correlates a request and all its replies (a job's id is its submit's id)."""

    TYPE: ClassVar[str] = ""
    AUDIO: ClassVar[str | None] = None  # name of the attribute holding {name: (C, N) array}
    id: str

    def to_header(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "type": self.TYPE, "id": self.id, **self.body()}

    def body(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Message":
        return cls(id=msg_id)


@dataclass
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    client: str = ""

    def body(self) -> dict[str, Any]:
        return {"client": self.client}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Hello":
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

    def to_header(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(tasks=list(self.tasks), formats=list(self.formats), stems=list(self.stems))
        return d

    @classmethod
    def from_header(cls, r: HeaderReader) -> "ModelInfo":
        return cls(
            name=r.str("name", pattern=NAME_PATTERN), version=r.str("version", max_len=64),
            family=r.str("family", max_len=64), tasks=r.names("tasks"), formats=r.names("formats"),
            sample_rate=r.int("sample_rate", *SAMPLE_RATES), stems=r.names("stems"),
            window=r.int("window", 1, INT64[1]), delay=r.int("delay", 0, INT64[1]), sha256=r.str("sha256", max_len=64),
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

    def body(self) -> dict[str, Any]:
        return {
            "engine_version": self.engine_version, "protocol_version": self.protocol_version,
            "models": [m.to_header() for m in self.models], "limits": self.limits.to_header(),
            "workers": self.workers, "defaults": dict(self.defaults),
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Capabilities":
        raw_limits = r.plain("limits")
        if not isinstance(raw_limits, Mapping):
            raise ProtocolError("capabilities: field 'limits' must be a map", field="limits")
        lr = HeaderReader(raw_limits, "capabilities", prefix="limits.", top=False)
        limits_obj = Limits.from_header(lr)
        lr.finish()
        defaults = r.params("defaults", {})
        return cls(
            id=msg_id, engine_version=r.str("engine_version", max_len=64),
            protocol_version=r.int("protocol_version", 0, 2**31), models=r.items("models", ModelInfo.from_header, max_items=1024),
            limits=limits_obj, workers=r.int("workers", 0, 1024), defaults={k: str(v) for k, v in defaults.items()},
        )


@dataclass
class Submit(Message):
    """Run one task. `inputs` per task: separate/extract/remove "mix", accompany "context",
    score "a" and "b", generate none (`frames`, `channels` give the output shape)."""

    TYPE: ClassVar[str] = "submit"
    AUDIO: ClassVar[str] = "inputs"
    task: str = "separate"
    sample_rate: int = 44100
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    stems: tuple[str, ...] = ()
    context_stems: tuple[str, ...] = ()
    candidates: int = 1
    frames: int = 0
    channels: int = 0
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "task": self.task, "sample_rate": self.sample_rate, "model": self.model, "params": dict(self.params),
            "seed": self.seed, "stems": list(self.stems), "context_stems": list(self.context_stems),
            "candidates": self.candidates, "frames": self.frames, "channels": self.channels,
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Submit":
        return cls(
            id=msg_id, task=r.str("task", choices=TASKS), sample_rate=r.int("sample_rate", *SAMPLE_RATES),
            model=r.str("model", None, pattern=NAME_PATTERN), params=r.params("params", {}),
            seed=r.int("seed", 0, INT64[1], 0), stems=r.names("stems", ()), context_stems=r.names("context_stems", ()),
            candidates=r.int("candidates", 1, 64, 1), frames=r.int("frames", 0, INT64[1], 0), channels=r.int("channels", 0, 1024, 0),
        )

    def to_request(self) -> TaskRequest:
        return TaskRequest(
            task=self.task, sample_rate=self.sample_rate, inputs=dict(self.inputs), model=self.model,
            params=dict(self.params), seed=self.seed, stems=tuple(self.stems), context_stems=tuple(self.context_stems),
            candidates=self.candidates, frames=self.frames, channels=self.channels,
        )

    @classmethod
    def from_request(cls, msg_id: str, request: TaskRequest) -> "Submit":
        return cls(
            id=msg_id, task=request.task, sample_rate=int(request.sample_rate), model=request.model,
            params=dict(request.params), seed=int(request.seed), stems=tuple(request.stems),
            context_stems=tuple(request.context_stems), candidates=int(request.candidates),
            frames=int(request.frames), channels=int(request.channels), inputs=dict(request.inputs),
        )


@dataclass
class Accepted(Message):
    TYPE: ClassVar[str] = "accepted"
    position: int = 0  # jobs ahead of this one (0 = next to run)

    def body(self) -> dict[str, Any]:
        return {"position": self.position}

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Accepted":
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
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Progress":
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
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Heartbeat":
        return cls(id=msg_id, state=r.str("state", choices=("queued", "running")), done=r.int("done", 0, INT64[1]), total=r.int("total", 0, INT64[1]))


@dataclass
class Result(Message):
    TYPE: ClassVar[str] = "result"
    AUDIO: ClassVar[str] = "stems"
    task: str = ""
    model: str = ""
    model_version: str = ""
    model_sha256: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    stems: dict[str, np.ndarray] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "task": self.task, "model": self.model, "model_version": self.model_version, "model_sha256": self.model_sha256,
            "scores": self.scores, "params": self.params, "seed": self.seed, "info": self.info,
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Result":
        scores = r.plain("scores", {})
        if not isinstance(scores, Mapping) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in scores.values()):
            raise ProtocolError(f"result: field 'scores' must be a map name -> number, got {short_repr(scores)}", field="scores")
        info = r.plain("info", {})
        params = r.plain("params", {})
        return cls(
            id=msg_id, task=r.str("task", choices=TASKS), model=r.str("model", max_len=64), model_version=r.str("model_version", max_len=64),
            model_sha256=r.str("model_sha256", max_len=64), scores={k: float(v) for k, v in scores.items()},
            params=dict(params) if isinstance(params, Mapping) else {}, seed=r.int("seed", 0, INT64[1]),
            info=dict(info) if isinstance(info, Mapping) else {},
        )

    def to_result(self) -> TaskResult:
        return TaskResult(
            task=self.task, model=self.model, model_version=self.model_version, model_sha256=self.model_sha256,
            stems=dict(self.stems), scores=dict(self.scores), params=dict(self.params), seed=self.seed, info=dict(self.info),
        )

    @classmethod
    def from_result(cls, msg_id: str, result: TaskResult) -> "Result":
        return cls(
            id=msg_id, task=result.task, model=result.model, model_version=str(result.model_version),
            model_sha256=str(result.model_sha256), scores={str(k): float(v) for k, v in result.scores.items()},
            params=to_plain(result.params), seed=int(result.seed), info=to_plain(result.info), stems=dict(result.stems),
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
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Error":
        return cls(id=msg_id, code=r.str("code", max_len=64), message=r.str("message", max_len=4096), field=r.str("field", None, max_len=256))

    @classmethod
    def from_exception(cls, msg_id: str, exc: BaseException) -> "Error":
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
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Cancel":
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
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Pong":
        return cls(id=msg_id, uptime=r.float("uptime", 0.0, math.inf))


@dataclass
class StatusRequest(Message):
    TYPE: ClassVar[str] = "status"


@dataclass
class Status(Message):
    TYPE: ClassVar[str] = "status"
    queue_depth: int = 0
    queue_size: int = 0
    running: list[dict[str, Any]] = field(default_factory=list)  # [{job, task, model, done, total}]
    uptime: float = 0.0
    jobs_done: int = 0
    jobs_failed: int = 0

    def body(self) -> dict[str, Any]:
        return {
            "queue_depth": self.queue_depth, "queue_size": self.queue_size, "running": self.running,
            "uptime": self.uptime, "jobs_done": self.jobs_done, "jobs_failed": self.jobs_failed,
        }

    @classmethod
    def from_header(cls, r: HeaderReader, msg_id: str) -> "Status":
        running = r.plain("running")
        if not isinstance(running, list):
            raise ProtocolError("status: field 'running' must be a list", field="running")
        return cls(
            id=msg_id, queue_depth=r.int("queue_depth", 0, 2**31), queue_size=r.int("queue_size", 0, 2**31), running=running,
            uptime=r.float("uptime", 0.0, math.inf), jobs_done=r.int("jobs_done", 0, INT64[1]), jobs_failed=r.int("jobs_failed", 0, INT64[1]),
        )


REQUESTS: dict[str, type[Message]] = {m.TYPE: m for m in (Hello, Submit, Cancel, Ping, StatusRequest)}
REPLIES: dict[str, type[Message]] = {m.TYPE: m for m in (Capabilities, Accepted, Progress, Heartbeat, Result, Error, Pong, Status)}


# --------------------------------------------------------------------------- encode / decode


def to_plain(value: Any, _depth: int = 0) -> Any:
    """Make engine-side values (numpy scalars, tuples, paths) msgpack-safe JSON-like data."""
    if _depth > 3:
        return str(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return v if INT64[0] <= v <= INT64[1] else str(v)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, _depth + 1) for v in value]
    return str(value)


def as_planar(name: str, audio: Any) -> np.ndarray:
    """(C, N) little-endian float32 C-contiguous (no copy when it already is)."""
    arr = np.asarray(audio)
    if arr.ndim != 2:
        raise InvalidInput(f"audio {name!r} must be a (channels, frames) array, got shape {arr.shape}", field=name)
    return np.ascontiguousarray(arr, dtype=DTYPE)


def encode(msg: Message) -> list[Any]:
    """Frames for `socket.send_multipart(frames, copy=False)`: header bytes, then arrays."""
    header = msg.to_header()
    buffers = []
    if msg.AUDIO:
        audio = getattr(msg, msg.AUDIO)
        specs = []
        for name, arr in audio.items():
            planar = as_planar(name, arr)
            specs.append({"name": name, "channels": int(planar.shape[0]), "frames": int(planar.shape[1])})
            buffers.append(planar)
        header["audio"] = specs
    return [msgpack.packb(header, use_bin_type=True), *buffers]


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack ext type {code} is not allowed in a header", field="header")


def unpack_header(raw: bytes | memoryview, limits: Limits) -> dict[str, Any]:
    """msgpack -> header map, refusing anything but plain bounded data."""
    if len(raw) > limits.max_header_bytes:
        raise TooLarge(f"header is {len(raw)} bytes; at most {limits.max_header_bytes} allowed", field="header")
    try:
        header = msgpack.unpackb(
            raw, raw=False, strict_map_key=True, use_list=True, ext_hook=_refuse_ext,
            max_str_len=limits.max_header_bytes, max_bin_len=0, max_ext_len=0, max_array_len=4096, max_map_len=1024,
        )
    except StemlinkError:
        raise
    except Exception as exc:  # msgpack raises many types (ValueError, ExtraData, StackError, FormatError, ...)
        raise ProtocolError(f"header is not valid msgpack: {type(exc).__name__}: {short_repr(str(exc), 120)}", field="header") from exc
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a msgpack map, got {type(header).__name__}", field="header")
    if depth(header) > 5:
        raise ProtocolError("header is nested deeper than 5 levels", field="header")
    for key, value in header.items():
        check_plain(value, key)
    return header


def header_id(header: Mapping[str, Any]) -> str:
    """The message id if it is a valid one, else "" (errors are still replied to)."""
    value = header.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= ID_MAX_LEN else ""


def _audio_specs(r: HeaderReader, n_frames: int, limits: Limits) -> list[AudioSpec]:
    def parse(ar: HeaderReader) -> AudioSpec:
        return AudioSpec(
            name=ar.str("name", pattern=NAME_PATTERN), channels=ar.int("channels", 1, limits.max_channels),
            frames=ar.int("frames", 1, limits.max_frames),
        )

    specs = r.items("audio", parse, max_items=limits.max_inputs, default=[])
    if len({s.name for s in specs}) != len(specs):
        raise InvalidInput(f"{r.where}: audio names must be distinct, got {[s.name for s in specs]}", field="audio")
    if n_frames != 1 + len(specs):
        raise ProtocolError(f"{r.where}: header describes {len(specs)} audio frame(s) but the message has {n_frames - 1}", field="audio")
    total = sum(s.nbytes for s in specs)
    if total > limits.max_message_bytes:
        raise TooLarge(f"{r.where}: audio is {total} bytes; at most {limits.max_message_bytes} allowed", field="audio")
    return specs


def _frame_bytes(frame: Any) -> memoryview:
    buffer = getattr(frame, "buffer", frame)  # zmq.Frame (copy=False) or bytes
    return memoryview(buffer).cast("B")


def _audio_arrays(specs: Sequence[AudioSpec], frames: Sequence[Any], check_finite: bool) -> dict[str, np.ndarray]:
    out = {}
    for i, (spec, frame) in enumerate(zip(specs, frames)):
        view = _frame_bytes(frame)
        if view.nbytes != spec.nbytes:
            raise ProtocolError(
                f"audio[{i}] ({spec.name!r}): frame has {view.nbytes} bytes, header says {spec.channels} x {spec.frames} float32 = {spec.nbytes}",
                field=f"audio[{i}]",
            )
        arr = np.frombuffer(view, dtype=DTYPE).reshape(spec.channels, spec.frames)
        if check_finite and not np.isfinite(arr).all():
            raise InvalidInput(f"audio[{i}] ({spec.name!r}) contains NaN or infinite samples", field=f"audio[{i}]")
        out[spec.name] = arr
    return out


def decode(frames: Sequence[Any], direction: str, limits: Limits | None = None) -> Message:
    """Validate and decode one multipart message.

    `direction`: "request" (engine side: hello, submit, cancel, ping, status) or "reply"
    (client side). Raises `ProtocolError` (incl. `VersionMismatch`, `TooLarge`) or
    `InvalidInput`, with `exc.request_id` set to the header's id when it had a valid one.
    """
    limits = limits or Limits()
    table = REQUESTS if direction == "request" else REPLIES
    msg_id = ""
    try:
        if not frames:
            raise ProtocolError("empty message", field="header")
        header = unpack_header(_frame_bytes(frames[0]), limits)
        msg_id = header_id(header)
        version = header.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ProtocolError(f"header field 'v' (protocol version) must be an integer, got {short_repr(version)}", field="v")
        if version != PROTOCOL_VERSION:
            raise VersionMismatch(f"protocol version {version} is not supported; this side speaks {PROTOCOL_VERSION}", field="v")
        kind = header.get("type")
        if kind not in table:
            raise ProtocolError(f"header field 'type' = {short_repr(kind)} is not a {direction}; allowed: {', '.join(table)}", field="type")
        if not msg_id:
            raise ProtocolError(f"header field 'id' must be a string of 1..{ID_MAX_LEN} characters, got {short_repr(header.get('id'))}", field="id")
        cls = table[kind]
        reader = HeaderReader(header, kind)
        if cls.AUDIO:
            specs = _audio_specs(reader, len(frames), limits)
        elif len(frames) != 1:
            reader.used.add("audio")
            raise ProtocolError(f"{kind}: carries no audio but the message has {len(frames) - 1} extra frame(s)", field="audio")
        msg = cls.from_header(reader, msg_id)
        reader.finish()
        if cls.AUDIO:
            setattr(msg, cls.AUDIO, _audio_arrays(specs, frames[1:], check_finite=direction == "request"))
        return msg
    except StemlinkError as exc:
        exc.request_id = msg_id
        raise
