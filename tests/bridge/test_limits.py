"""One set of request limits (`stemlink/contract.py`), checked at the wire before anything is
allocated, and the same checks in the engine's `validate_request`."""

from __future__ import annotations

import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest
import zmq

from stemlink import cli
from stemlink.bridge.fields import HeaderReader
from stemlink.bridge.protocol import Capabilities, Submit, decode, encode
from stemlink.contract import DEFAULT_LIMITS, MAX_CANDIDATES, MAX_CHANNELS, MAX_FRAMES, MAX_STEPS, MIN_FRAMES, Limits, TaskRequest
from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.echo import EchoModel
from stemlink.engine.tasks import run_task
from stemlink.errors import InvalidInput, StemlinkError, TooLarge
from stemlink.lab.nn.echo import ECHO_STEMS, EchoNet


def noise(channels=2, frames=4000):
    return (0.1 * np.random.default_rng(0).standard_normal((channels, frames))).astype(np.float32)


def echo() -> EchoModel:
    spec = ModelSpec(
        name="echo",
        version="1",
        family="echo",
        tasks=("separate", "accompany", "generate", "score"),
        format="torchscript",
        file="echo.pt",
        sha256="ab" * 32,
        sample_rate=16000,
        stems=ECHO_STEMS,
        window=1024,
    )
    return EchoModel(spec, EchoNet().eval())


# (request, error class, wire field, engine field, limit named in both messages)
REFUSED = [
    (TaskRequest(task="generate", sample_rate=44100, frames=2**27, channels=2), TooLarge, "frames", "frames", "limits.max_frames"),
    (TaskRequest(task="generate", sample_rate=44100, frames=2**33, channels=16), TooLarge, "frames", "frames", "limits.max_frames"),
    (
        TaskRequest(task="generate", sample_rate=44100, frames=MAX_FRAMES, channels=16),
        TooLarge,
        "frames",
        "frames",
        "limits.max_message_bytes",
    ),
    (
        TaskRequest(task="generate", sample_rate=44100, frames=44100, channels=17),
        InvalidInput,
        "channels",
        "channels",
        "limits.max_channels",
    ),
    (
        TaskRequest(task="generate", sample_rate=44100, frames=44100, channels=1024),
        InvalidInput,
        "channels",
        "channels",
        "limits.max_channels",
    ),
    (TaskRequest(task="generate", sample_rate=44100, frames=1, channels=2), InvalidInput, "frames", "frames", "limits.min_frames"),
    (
        TaskRequest(task="accompany", sample_rate=44100, inputs={"context": noise()}, candidates=17),
        InvalidInput,
        "candidates",
        "candidates",
        "limits.max_candidates",
    ),
    (
        TaskRequest(task="accompany", sample_rate=44100, inputs={"context": noise()}, candidates=64),
        InvalidInput,
        "candidates",
        "candidates",
        "limits.max_candidates",
    ),
    (
        TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise()}, params={"steps": 10**6}),
        InvalidInput,
        "params.steps",
        "params.steps",
        "limits.max_steps",
    ),
    (
        TaskRequest(task="separate", sample_rate=999, inputs={"mix": noise()}),
        InvalidInput,
        "sample_rate",
        "sample_rate",
        "limits.min_sample_rate",
    ),
    (
        TaskRequest(task="separate", sample_rate=384001, inputs={"mix": noise()}),
        InvalidInput,
        "sample_rate",
        "sample_rate",
        "max_sample_rate",
    ),
    (
        TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise(2, 1)}),
        InvalidInput,
        "audio[0].frames",
        "inputs.mix",
        "limits.min_frames",
    ),
    (
        TaskRequest(task="score", sample_rate=44100, inputs={"a": noise(), "b": noise(2, 1)}),
        InvalidInput,
        "audio[1].frames",
        "inputs.b",
        "limits.min_frames",
    ),
]


def wire(request: TaskRequest, limits: Limits | None = None):
    return decode(encode(Submit(id="job-1", request=request)), "request", limits)


@pytest.mark.parametrize("request_,exc,wire_field,engine_field,limit", REFUSED)
def test_wire_and_engine_refuse_the_same_requests_naming_the_limit(request_, exc, wire_field, engine_field, limit):
    with pytest.raises(exc) as at_wire:
        wire(request_)
    assert at_wire.value.field == wire_field and limit in at_wire.value.message
    assert at_wire.value.request_id == "job-1"
    with pytest.raises(exc) as in_engine:
        run_task(echo(), request_)
    assert in_engine.value.field == engine_field and limit in in_engine.value.message


def test_messages_name_the_value_and_the_allowed_range():
    with pytest.raises(InvalidInput, match=rf"candidates = 17 .*1\.\.{MAX_CANDIDATES}"):
        wire(TaskRequest(task="accompany", sample_rate=44100, inputs={"context": noise()}, candidates=17))
    with pytest.raises(InvalidInput, match=rf"params\.steps = 1000000 .*1\.\.{MAX_STEPS}"):
        wire(TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise()}, params={"steps": 10**6}))
    with pytest.raises(InvalidInput, match=rf"= 1 \(0\.0227 ms at 44100 Hz\) is too short; at least {MIN_FRAMES} frames"):
        wire(TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise(2, 1)}))
    with pytest.raises(TooLarge, match=r"frames = 134217728 \(3043\.49 s at 44100 Hz\) is too long"):
        wire(TaskRequest(task="generate", sample_rate=44100, frames=2**27))


@pytest.mark.parametrize("rate", [1000, 4000, 7999, 384000])
def test_every_advertised_rate_is_served(rate):
    """The wire's floor is the engine's floor: rates below the model's are resampled."""
    request = TaskRequest(task="separate", sample_rate=rate, inputs={"mix": noise(2, max(rate // 4, MIN_FRAMES))})
    back = wire(request).request
    result = run_task(echo(), back)
    assert all(s.shape == request.inputs["mix"].shape for s in result.stems.values())
    assert np.abs(sum(result.stems.values()) - request.inputs["mix"]).max() < 1e-5


def test_limits_at_the_edges_are_accepted():
    wire(TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise(MAX_CHANNELS, MIN_FRAMES)}, params={"steps": MAX_STEPS}))
    wire(TaskRequest(task="accompany", sample_rate=44100, inputs={"context": noise()}, candidates=MAX_CANDIDATES))
    msg = wire(TaskRequest(task="generate", sample_rate=44100, frames=MAX_FRAMES, channels=2))
    assert msg.request.frames == MAX_FRAMES


def test_a_configured_engine_limit_is_the_one_checked():
    small = Limits(max_candidates=4, max_steps=10, min_frames=1000)
    with pytest.raises(InvalidInput, match="1..4"):
        wire(TaskRequest(task="accompany", sample_rate=44100, inputs={"context": noise()}, candidates=5), small)
    with pytest.raises(InvalidInput, match="1..10"):
        wire(TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise()}, params={"steps": 11}), small)
    with pytest.raises(InvalidInput, match="at least 1000"):
        wire(TaskRequest(task="separate", sample_rate=44100, inputs={"mix": noise(2, 999)}), small)


def test_wrong_inputs_for_the_task_are_refused_at_the_wire():
    with pytest.raises(InvalidInput) as info:
        wire(TaskRequest(task="separate", sample_rate=44100, inputs={"context": noise()}))
    assert info.value.field == "audio" and "mix" in info.value.message
    with pytest.raises(InvalidInput):
        wire(TaskRequest(task="generate", sample_rate=44100, frames=1000, inputs={"mix": noise()}))


def test_limits_travel_in_capabilities_and_an_older_engine_keeps_the_defaults():
    caps = Capabilities(id="c", limits=Limits(max_candidates=3))
    assert decode(encode(caps), "reply").limits.max_candidates == 3
    old = {"max_frames": 10, "max_channels": 2, "max_inputs": 1, "max_message_bytes": 100, "max_header_bytes": 1000, "queue_size": 1}
    reader = HeaderReader(old, "capabilities", top=False)
    limits = Limits.from_header(reader)
    reader.finish()
    assert limits.max_frames == 10 and limits.max_candidates == DEFAULT_LIMITS.max_candidates


def test_the_contract_needs_neither_torch_nor_numpy():
    code = "import sys, stemlink.contract; assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def recv_reply(sock, timeout_ms=10000):
    assert sock.poll(timeout_ms), "no reply"
    return decode(sock.recv_multipart(), "reply")


@pytest.mark.parametrize("request_,exc,wire_field,engine_field,limit", REFUSED[:2] + REFUSED[6:9])
def test_the_engine_refuses_before_accepting(start_server, request_, exc, wire_field, engine_field, limit):
    server = start_server()
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(server.address)
        sock.send_multipart(encode(Submit(id="big", request=request_)), copy=False)
        reply = recv_reply(sock)
        assert reply.TYPE == "error" and reply.id == "big", reply  # no `accepted` first
        assert reply.code == exc.code and reply.field == wire_field and limit in reply.message
        assert not sock.poll(200)
        sock.send_multipart(
            encode(Submit(id="ok", request=TaskRequest(task="separate", sample_rate=16000, model="echo", inputs={"mix": noise()}))),
            copy=False,
        )
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1] not in ("result", "error")):
            seen.append(recv_reply(sock).TYPE)
        assert seen[0] == "accepted" and seen[-1] == "result"


def test_duplicate_keys_are_a_protocol_error():
    raw = b"\x84\xa1v\x01\xa4type\xa4ping\xa2id\xa2d1\xa4type\xa6submit"  # "type" twice
    with pytest.raises(StemlinkError) as info:
        decode([raw], "request")
    assert info.value.code == "PROTOCOL" and "'type'" in info.value.message
    nested = msgpack.packb({"v": 1, "type": "ping", "id": "x", "p": {"a": 1}}).replace(b"\x81\xa1a\x01", b"\x82\xa1a\x01\xa1a\x02")
    with pytest.raises(StemlinkError, match="repeats the map key 'a'"):
        decode([nested], "request")


@pytest.mark.parametrize(
    "argv,limit",
    [
        (["--seconds", "100000"], "limits.max_frames"),
        (["--seconds", "1000", "--channels-out", "16"], "limits.max_message_bytes"),
        (["--seconds", "1", "--channels-out", "17"], "limits.max_channels"),
        (["--seconds", "1", "--sr", "500"], "limits.min_sample_rate"),
        (["--seconds", "0.0001"], "limits.min_frames"),
    ],
)
def test_cli_generate_refuses_in_one_line_before_starting_an_engine(argv, limit, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STEMLINK_ENGINE", "tcp://127.0.0.1:9")  # nothing may be contacted
    assert cli.main(["generate", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and limit in err[0]
    assert not (tmp_path / "out").exists()
