"""Protocol v1: round trips of every message type and refusal of malformed/hostile input."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from stemlink.bridge.protocol import (
    PROTOCOL_VERSION,
    REPLIES,
    REQUESTS,
    Accepted,
    Cancel,
    Capabilities,
    Error,
    Heartbeat,
    Hello,
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
from stemlink.errors import Busy, InvalidInput, ProtocolError, TooLarge, UnknownTask, VersionMismatch


def frames_of(msg):
    """What a receiver sees: bytes per frame (copies, as a test convenience)."""
    return [f if isinstance(f, bytes) else np.asarray(f).tobytes() for f in encode(msg)]


def header(**fields):
    return msgpack.packb({"v": 1, "type": "ping", "id": "x1", **fields})


def test_submit_round_trip_keeps_planar_audio_exact():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((2, 1001)).astype(np.float32)
    req = TaskRequest(
        task="accompany",
        sample_rate=48000,
        inputs={"context": mix},
        model="echo",
        params={"steps": 3, "gamma": 0.5},
        seed=7,
        stems=("piano",),
        context_stems=("bass", "drums"),
        candidates=2,
    )
    msg = decode(frames_of(Submit(id="job-1", request=req, keepalive=1.5)), "request")
    assert msg.keepalive == 1.5
    assert isinstance(msg, Submit) and msg.id == "job-1"
    back = msg.request
    assert back.task == "accompany" and back.sample_rate == 48000 and back.model == "echo" and back.seed == 7
    assert back.stems == ("piano",) and back.context_stems == ("bass", "drums") and back.candidates == 2
    assert back.params == {"steps": 3, "gamma": 0.5}
    np.testing.assert_array_equal(back.inputs["context"], mix)
    assert back.inputs["context"].shape == (2, 1001) and back.inputs["context"].dtype == np.float32


def test_planar_layout_on_the_wire():
    audio = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    frames = frames_of(Submit(id="a", request=TaskRequest(task="separate", sample_rate=8000, inputs={"mix": audio})))
    assert np.frombuffer(frames[1], "<f4").tolist() == [1, 2, 3, 4, 5, 6]
    # A Fortran-ordered or float64 input is made planar float32 by encode.
    frames = frames_of(
        Submit(id="a", request=TaskRequest(task="separate", sample_rate=8000, inputs={"mix": np.asfortranarray(audio.astype(np.float64))}))
    )
    assert np.frombuffer(frames[1], "<f4").tolist() == [1, 2, 3, 4, 5, 6]


def test_encode_sends_contiguous_float32_arrays_without_copy():
    audio = np.zeros((2, 64), dtype=np.float32)
    frames = encode(Submit(id="a", request=TaskRequest(task="separate", sample_rate=8000, inputs={"mix": audio})))
    assert frames[1] is audio


def test_result_round_trip():
    stems = {"bass": np.ones((1, 5), np.float32), "drums": np.zeros((1, 5), np.float32)}
    res = TaskResult(
        task="separate",
        model="echo",
        model_version="1",
        model_sha256="ab" * 32,
        stems=stems,
        scores={"score": np.float32(0.5)},
        params={"steps": np.int64(2)},
        seed=3,
        info={"windows": (1, 2)},
    )
    msg = decode(frames_of(Result(id="j", result=res)), "reply")
    out = msg.result
    assert list(out.stems) == ["bass", "drums"] and out.scores == {"score": 0.5} and out.params == {"steps": 2}
    assert out.info == {"windows": [1, 2]}
    np.testing.assert_array_equal(out.stems["bass"], stems["bass"])


def test_submit_and_result_headers_are_protocol_v1():
    """The messages carry the contract's request/result; the header bytes are v1's, field for field."""
    req = TaskRequest(
        task="extract",
        sample_rate=np.int64(44100),
        inputs={"mix": np.zeros((2, 100), np.float32)},
        model="echo",
        params={"steps": 3},
        seed=9,
        stems=("bass",),
        candidates=1,
    )
    header = msgpack.unpackb(encode(Submit(id="j", request=req, keepalive=2.0))[0])
    assert header == {
        "v": 1,
        "type": "submit",
        "id": "j",
        "task": "extract",
        "sample_rate": 44100,
        "model": "echo",
        "params": {"steps": 3},
        "seed": 9,
        "stems": ["bass"],
        "context_stems": [],
        "candidates": 1,
        "frames": 0,
        "channels": 0,
        "keepalive": 2.0,
        "audio": [{"name": "mix", "channels": 2, "frames": 100}],
    }
    res = TaskResult(
        task="extract",
        model="echo",
        model_version="1",
        model_sha256="ab",
        stems={"bass": np.zeros((2, 100), np.float32)},
        params={"steps": np.int64(3)},
        seed=9,
        info={"warnings": ["w"]},
    )
    header = msgpack.unpackb(encode(Result(id="j", result=res))[0])
    assert header == {
        "v": 1,
        "type": "result",
        "id": "j",
        "task": "extract",
        "model": "echo",
        "model_version": "1",
        "model_sha256": "ab",
        "scores": {},
        "params": {"steps": 3},
        "seed": 9,
        "info": {"warnings": ["w"]},
        "audio": [{"name": "bass", "channels": 2, "frames": 100}],
    }


@pytest.mark.parametrize(
    "msg,direction",
    [
        (Hello(id="h", client="me"), "request"),
        (Ping(id="p"), "request"),
        (StatusRequest(id="s"), "request"),
        (Cancel(id="c", job="j"), "request"),
        (Accepted(id="a", position=2), "reply"),
        (Pong(id="p", uptime=1.5), "reply"),
        (Progress(id="j", done=3, total=10, stage="run"), "reply"),
        (Heartbeat(id="j", state="running", done=1, total=2), "reply"),
        (Error(id="j", code="BUSY", message="full", field="queue"), "reply"),
        (Status(id="s", queue_depth=1, queue_size=8, running=[{"job": "j", "done": 1}], uptime=2.0, jobs_done=4, jobs_failed=1), "reply"),
        (
            Capabilities(
                id="c",
                engine_version="0.1.0",
                models=[ModelInfo("echo", "1", "echo", ("separate",), ("onnx",), 16000, ("bass",), 1024, 0, "0" * 64)],
                limits=Limits(queue_size=3),
                workers=2,
                defaults={"separate": "echo"},
            ),
            "reply",
        ),
    ],
)
def test_message_round_trip(msg, direction):
    assert decode(frames_of(msg), direction) == msg


def test_error_becomes_the_matching_exception():
    exc = Error(id="j", code="BUSY", message="queue full", field="queue").to_exception()
    assert isinstance(exc, Busy) and exc.field == "queue"
    unknown = Error(id="j", code="SOMETHING_NEW", message="?").to_exception()
    assert unknown.code == "SOMETHING_NEW"


def test_request_and_reply_tables_are_separate():
    assert set(REQUESTS) == {"hello", "submit", "cancel", "ping", "status"}
    assert "result" in REPLIES and "submit" not in REPLIES
    with pytest.raises(ProtocolError) as info:
        decode(frames_of(Accepted(id="a")), "request")
    assert info.value.field == "type"


@pytest.mark.parametrize(
    "raw,exc,field",
    [
        (b"", ProtocolError, "header"),
        (b"\xc1", ProtocolError, "header"),  # never-used msgpack byte
        (msgpack.packb([1, 2, 3]), ProtocolError, "header"),
        (msgpack.packb({"v": 2, "type": "ping", "id": "x"}), VersionMismatch, "v"),
        (msgpack.packb({"type": "ping", "id": "x"}), ProtocolError, "v"),
        (msgpack.packb({"v": True, "type": "ping", "id": "x"}), ProtocolError, "v"),
        (msgpack.packb({"v": 1, "type": "launch", "id": "x"}), ProtocolError, "type"),
        (msgpack.packb({"v": 1, "type": "ping", "id": ""}), ProtocolError, "id"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x" * 65}), ProtocolError, "id"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", "extra": 1}), ProtocolError, "extra"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", 5: 1}), ProtocolError, "header"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", "b": b"\x00" * 4}, use_bin_type=True), ProtocolError, "header"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", "e": msgpack.ExtType(7, b"boom")}), ProtocolError, "header"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", "n": [[[[[[[[1]]]]]]]]}), ProtocolError, "header"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x", "big": 2**64 - 1}), ProtocolError, "big"),
        (msgpack.packb({"v": 1, "type": "ping", "id": "x"}) + b"\x00", ProtocolError, "header"),  # trailing data
        (b"\x91" * 100000, TooLarge, "header"),
        (b"\x84\xa1v\x01\xa4type\xa4ping\xa2id\xa1x\xa2id\xa1y", ProtocolError, "header"),  # duplicate key "id"
    ],
)
def test_hostile_headers_are_refused_with_a_field(raw, exc, field):
    with pytest.raises(exc) as info:
        decode([raw], "request")
    assert info.value.field == field
    assert field.split(".")[0] in info.value.message or field == "header"


def test_deep_nesting_inside_the_size_limit_is_refused():
    raw = b"\x81\xa1v\x01" + b"\x91" * 2000 + b"\x01"  # {"v": [[[...1]]]}
    with pytest.raises(ProtocolError):
        decode([raw], "request")


def submit_header(audio, **fields):
    base = {"v": 1, "type": "submit", "id": "s1", "task": "separate", "sample_rate": 44100, "audio": audio}
    base.update(fields)
    return msgpack.packb(base)


@pytest.mark.parametrize(
    "audio,buffers,exc,field",
    [
        ([{"name": "mix", "channels": 2, "frames": 4}], [], ProtocolError, "audio"),  # frame missing
        ([{"name": "mix", "channels": 2, "frames": 4}], [b"\x00" * 32] * 2, ProtocolError, "audio"),  # one too many
        ([{"name": "mix", "channels": 2, "frames": 4}], [b"\x00" * 31], ProtocolError, "audio[0]"),  # size mismatch
        ([{"name": "mix", "channels": 2, "frames": 0}], [b""], InvalidInput, "audio[0].frames"),  # zero length
        ([{"name": "mix", "channels": 0, "frames": 4}], [b""], InvalidInput, "audio[0].channels"),
        ([{"name": "mix", "channels": 17, "frames": 4}], [b"\x00" * 17 * 16], InvalidInput, "audio[0].channels"),
        ([{"name": "mix", "channels": 1, "frames": 2**62}], [b"\x00" * 4], TooLarge, "audio[0].frames"),
        ([{"name": "mix", "channels": 16, "frames": 2**26}], [b"\x00"], TooLarge, "audio"),  # 4 GiB described
        (
            [{"name": "mix", "channels": 1, "frames": 1}, {"name": "mix", "channels": 1, "frames": 1}],
            [b"\x00" * 4] * 2,
            InvalidInput,
            "audio",
        ),
        ([{"name": "../x", "channels": 1, "frames": 1}], [b"\x00" * 4], InvalidInput, "audio[0].name"),
        ([{"name": "mix", "channels": 1, "frames": 1, "dtype": "f8"}], [b"\x00" * 4], ProtocolError, "audio[0].dtype"),
        ({"name": "mix"}, [b"\x00" * 4], ProtocolError, "audio"),
        (["mix"], [b"\x00" * 4], ProtocolError, "audio[0]"),
    ],
)
def test_audio_description_must_match_the_frames(audio, buffers, exc, field):
    with pytest.raises(exc) as info:
        decode([submit_header(audio), *buffers], "request")
    assert info.value.field == field
    assert info.value.request_id == "s1"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_is_refused(bad):
    audio = np.zeros((2, 80), np.float32)
    audio[1, 5] = bad
    with pytest.raises(InvalidInput) as info:
        decode(frames_of(Submit(id="s", request=TaskRequest(task="separate", sample_rate=8000, inputs={"mix": audio}))), "request")
    assert info.value.field == "audio[0]" and "NaN" in info.value.message


@pytest.mark.parametrize(
    "fields,exc,field",
    [
        ({"task": "dance"}, UnknownTask, "task"),
        ({"task": 3}, ProtocolError, "task"),
        ({"sample_rate": 0}, InvalidInput, "sample_rate"),
        ({"sample_rate": 44100.0}, ProtocolError, "sample_rate"),
        ({"seed": -1}, InvalidInput, "seed"),
        ({"params": {"steps": [1, 2]}}, ProtocolError, "params.steps"),
        ({"params": {"sigma": float("nan")}}, InvalidInput, "params.sigma"),
        ({"params": "steps=3"}, ProtocolError, "params"),
        ({"stems": ["bass", "bass"]}, InvalidInput, "stems"),
        ({"candidates": 1000}, InvalidInput, "candidates"),
        ({"model": "a/b"}, InvalidInput, "model"),
    ],
)
def test_submit_fields_are_validated(fields, exc, field):
    audio = [{"name": "mix", "channels": 1, "frames": 2}]
    with pytest.raises(exc) as info:
        decode([submit_header(audio, **fields), b"\x00" * 8], "request")
    assert info.value.field == field


def test_limits_are_configurable():
    limits = Limits(max_frames=10, max_header_bytes=200)
    audio = np.zeros((1, 11), np.float32)
    with pytest.raises(TooLarge):
        decode(frames_of(Submit(id="s", request=TaskRequest(task="separate", sample_rate=8000, inputs={"mix": audio}))), "request", limits)
    with pytest.raises(TooLarge):
        decode([header(client="x" * 300)], "request", limits)


def test_version_constant():
    assert PROTOCOL_VERSION == 1
    assert msgpack.unpackb(encode(Ping(id="p"))[0]) == {"v": 1, "type": "ping", "id": "p"}
