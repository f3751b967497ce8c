"""The stemlink wire protocol, version 1 (documented in `stemlink/bridge/PROTOCOL.md`).

A message is one ZeroMQ multipart message:

    frame 0     msgpack map header {"v": 1, "type": ..., "id": ..., ...}
    frame 1..K  raw little-endian float32 audio, PLANAR (C, N) C-contiguous, one frame per
                entry of header["audio"] = [{"name", "channels", "frames"}, ...], same order

Every message type is a dataclass (`stemlink/bridge/messages.py`, re-exported here) with `to_header()` /
`from_header(reader)`; wire constants are in `stemlink/bridge/wire.py`, `Limits` in `stemlink/contract.py`. `encode(msg)`
gives the frames to send (arrays are passed as buffers for `copy=False`), `decode(frames,
direction)` validates everything at the boundary and returns the dataclass, or raises a
`stemlink.errors` subclass naming the field. Nothing is ever unpickled: msgpack is unpacked
with strict string map keys (each key once per map), length limits, no bin and no ext types;
a `submit` is checked against `Limits` (`stemlink/contract.py` `check_request`) before its arrays are built.
Audio arrays decoded from frames are read-only zero-copy views (`np.frombuffer`) of the frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import numpy as np

from stemlink.bridge.fields import INT64, NAME_PATTERN, HeaderReader, check_plain, depth, short_repr
from stemlink.bridge.messages import (
    REPLIES,
    REQUESTS,
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
    to_plain,
)
from stemlink.bridge.wire import DTYPE, ID_MAX_LEN, PROTOCOL_VERSION, AudioSpec
from stemlink.contract import Limits
from stemlink.errors import InvalidInput, ProtocolError, StemlinkError, TooLarge, VersionMismatch

__all__ = [
    "PROTOCOL_VERSION",
    "DTYPE",
    "AudioSpec",
    "Message",
    "Hello",
    "Capabilities",
    "ModelInfo",
    "Submit",
    "Accepted",
    "Progress",
    "Heartbeat",
    "Result",
    "Error",
    "Cancel",
    "Ping",
    "Pong",
    "StatusRequest",
    "Status",
    "REQUESTS",
    "REPLIES",
    "encode",
    "decode",
    "to_plain",
    "as_planar",
    "unpack_header",
    "header_id",
]


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
        specs = []
        for name, arr in msg.audio().items():
            planar = as_planar(name, arr)
            specs.append({"name": name, "channels": int(planar.shape[0]), "frames": int(planar.shape[1])})
            buffers.append(planar)
        header["audio"] = specs
    return [msgpack.packb(header, use_bin_type=True), *buffers]


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack ext type {code} is not allowed in a header", field="header")


def _unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """msgpack `object_pairs_hook`: a map that repeats a key is malformed (which copy counts
    would otherwise depend on the decoder)."""
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ProtocolError(f"header repeats the map key {short_repr(key)}; every key must appear once", field="header")
        out[key] = value
    return out


def unpack_header(raw: bytes | memoryview, limits: Limits) -> dict[str, Any]:
    """msgpack -> header map, refusing anything but plain bounded data."""
    if len(raw) > limits.max_header_bytes:
        raise TooLarge(f"header is {len(raw)} bytes; at most {limits.max_header_bytes} allowed", field="header")
    try:
        header = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_refuse_ext,
            object_pairs_hook=_unique_keys,
            max_str_len=limits.max_header_bytes,
            max_bin_len=0,
            max_ext_len=0,
            max_array_len=4096,
            max_map_len=1024,
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
        spec = AudioSpec(
            name=ar.str("name", pattern=NAME_PATTERN),
            channels=ar.int("channels", 1, limits.max_channels),
            frames=ar.int("frames", 1, INT64[1]),
        )
        if spec.frames > limits.max_frames:
            raise TooLarge(
                f"{r.where}: field {ar.prefix + 'frames'!r} = {spec.frames} is too long; at most {limits.max_frames} frames (limits.max_frames)",
                field=ar.prefix + "frames",
            )
        return spec

    specs = r.items("audio", parse, max_items=limits.max_inputs, default=[])
    if len({s.name for s in specs}) != len(specs):
        raise InvalidInput(f"{r.where}: audio names must be distinct, got {[s.name for s in specs]}", field="audio")
    if n_frames != 1 + len(specs):
        raise ProtocolError(f"{r.where}: header describes {len(specs)} audio frame(s) but the message has {n_frames - 1}", field="audio")
    limits.check_bytes(sum(s.nbytes for s in specs), field="audio", what="audio", where=f"{r.where}: ")
    return specs


def _frame_bytes(frame: Any) -> memoryview:
    buffer = getattr(frame, "buffer", frame)  # zmq.Frame (copy=False) or bytes
    return memoryview(buffer).cast("B")


def _check_frame_sizes(specs: Sequence[AudioSpec], frames: Sequence[Any]) -> None:
    for i, (spec, frame) in enumerate(zip(specs, frames, strict=True)):
        nbytes = _frame_bytes(frame).nbytes
        if nbytes != spec.nbytes:
            raise ProtocolError(
                f"audio[{i}] ({spec.name!r}): frame has {nbytes} bytes, header says {spec.channels} x {spec.frames} float32 = {spec.nbytes}",
                field=f"audio[{i}]",
            )


def _audio_arrays(specs: Sequence[AudioSpec], frames: Sequence[Any], check_finite: bool) -> dict[str, np.ndarray]:
    out = {}
    for i, (spec, frame) in enumerate(zip(specs, frames, strict=True)):
        arr = np.frombuffer(_frame_bytes(frame), dtype=DTYPE).reshape(spec.channels, spec.frames)
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
            raise ProtocolError(
                f"header field 'id' must be a string of 1..{ID_MAX_LEN} characters, got {short_repr(header.get('id'))}", field="id"
            )
        cls = table[kind]
        reader = HeaderReader(header, kind)
        if cls.AUDIO:
            specs = _audio_specs(reader, len(frames), limits)
            _check_frame_sizes(specs, frames[1:])
        elif len(frames) != 1:
            reader.used.add("audio")
            raise ProtocolError(f"{kind}: carries no audio but the message has {len(frames) - 1} extra frame(s)", field="audio")
        msg = cls.from_header(reader, msg_id)
        reader.finish()
        if isinstance(msg, Submit):
            msg.check_limits(specs, limits)  # before any array is built or the job queued
        if cls.AUDIO:
            msg.with_audio(_audio_arrays(specs, frames[1:], check_finite=direction == "request"))
        return msg
    except StemlinkError as exc:
        exc.request_id = msg_id
        raise
