"""Fair share over raw sockets: per-client job limit, memory budget, disconnected clients."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from stemlink.bridge.protocol import Cancel, StatusRequest, Submit, decode, encode
from stemlink.contract import Limits, TaskRequest
from stemlink.engine.server import Server
from stemlink.engine.server.jobs import default_memory_budget, job_cost, parse_size
from stemlink.errors import InvalidInput
from stemlink.lab.export.echo import build_echo_export

ENDLESS = {"steps": 1000, "sleep": 0.05}  # 50 s per window: only a cancel ends it early


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("exports"), sample_rate=8000, window=2048, formats=("torchscript",))


@pytest.fixture
def start(start_server, exports):
    """start(**config) -> an engine on a random tcp port serving `exports` (tests/conftest.py start_server)."""

    def run(**config) -> Server:
        config.setdefault("heartbeat_interval", 0.2)
        return start_server("tcp", exports_dir=exports, limits=Limits(max_message_bytes=1 << 22), **config)

    return run


@pytest.fixture
def connect():
    socks = []

    def make(server: Server) -> zmq.Socket:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(server.address)
        socks.append(sock)
        return sock

    yield make
    for sock in socks:
        sock.close(linger=0)


def submit(msg_id, frames=3000, keepalive=0.0, **fields):
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, frames))).astype(np.float32)
    request = TaskRequest(task="separate", sample_rate=16000, inputs={"mix": mix}, **fields)
    return encode(Submit(id=msg_id, request=request, keepalive=keepalive))


def reply_to(sock, msg_id, types=("accepted", "error", "result", "status"), timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert sock.poll(3000), "no reply from the engine"
        msg = decode(sock.recv_multipart(copy=False), "reply")
        if msg.id == msg_id and msg.TYPE in types:
            return msg
    raise AssertionError(f"no {types} for {msg_id}")


def status_of(sock, tag="st"):
    sock.send_multipart(encode(StatusRequest(id=tag)))
    return reply_to(sock, tag, ("status",))


def test_per_client_job_limit_names_the_limit(start, connect):
    server = start(max_client_jobs=2, queue_size=8)
    mine, other = connect(server), connect(server)
    for job in ("a1", "a2", "a3"):
        mine.send_multipart(submit(job, params=ENDLESS), copy=False)
    assert reply_to(mine, "a1").TYPE == "accepted" and reply_to(mine, "a2").TYPE == "accepted"
    busy = reply_to(mine, "a3")
    assert (busy.TYPE, busy.code, busy.field) == ("error", "BUSY", "max_client_jobs")
    assert "limit is 2 per client" in busy.message
    other.send_multipart(submit("b1"), copy=False)
    assert reply_to(other, "b1").TYPE == "accepted"  # the others still get their share
    # A job being cancelled no longer counts: the client may submit its next one at once.
    mine.send_multipart(encode(Cancel(id="c", job="a1")))
    mine.send_multipart(submit("a4", params=ENDLESS), copy=False)
    assert reply_to(mine, "a4").TYPE == "accepted"


def test_memory_budget_busy_and_too_large(start, connect):
    one_job = job_cost(
        TaskRequest(task="separate", sample_rate=16000, inputs={"mix": np.zeros((2, 3000), np.float32)}),
        ("bass", "drums", "guitar", "piano"),
    )
    assert one_job == 24000 + 4 * 24000  # inputs + every model stem at the input's shape
    server = start(memory_budget=int(1.5 * one_job))
    sock = connect(server)
    sock.send_multipart(submit("fits", params=ENDLESS), copy=False)
    assert reply_to(sock, "fits").TYPE == "accepted"
    later = connect(server)
    later.send_multipart(submit("later"), copy=False)
    busy = reply_to(later, "later")
    assert (busy.code, busy.field) == ("BUSY", "memory_budget") and "retry later" in busy.message
    huge = connect(server)
    huge.send_multipart(submit("never", frames=6000), copy=False)
    too_large = reply_to(huge, "never")
    assert (too_large.code, too_large.field) == ("TOO_LARGE", "memory_budget") and "memory budget is" in too_large.message
    assert status_of(sock).memory_used == one_job and status_of(sock, "st2").memory_budget == int(1.5 * one_job)


def test_a_disconnected_clients_jobs_are_cancelled(start, connect):
    """No keepalive declared (a raw client): the engine notices the closed connection itself."""
    server = start(workers=1, queue_size=4, max_client_jobs=4)
    gone = connect(server)
    gone.send_multipart(submit("running", params=ENDLESS), copy=False)
    gone.send_multipart(submit("queued", params=ENDLESS), copy=False)
    while reply_to(gone, "running", ("progress",)).stage != "run":
        pass
    observer = connect(server)
    assert [r["job"] for r in status_of(observer).running] == ["running"]
    gone.close(linger=0)
    deadline = time.monotonic() + 30  # 2 x 50 s if they had run on
    while True:
        status = status_of(observer, f"st-{time.monotonic()}")
        if not status.running and not status.queued:
            break
        assert time.monotonic() < deadline, f"still active: {status.running} {status.queued}"
        time.sleep(0.05)
    assert status.jobs_failed == 2 and status.jobs_done == 0


def test_status_lists_queued_jobs(start, connect):
    server = start(workers=1)
    a, b = connect(server), connect(server)
    a.send_multipart(submit("first", params=ENDLESS), copy=False)
    while reply_to(a, "first", ("progress",)).stage != "run":
        pass
    b.send_multipart(submit("second"), copy=False)
    assert reply_to(b, "second").TYPE == "accepted"
    status = status_of(b)
    assert [r["job"] for r in status.running] == ["first"] and [q["job"] for q in status.queued] == ["second"]
    assert status.running[0]["cancelling"] is False


def test_parse_size_and_default_budget():
    assert parse_size("4G") == 4 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size("0") == 0 and parse_size("1000") == 1000
    assert parse_size("100%") == pytest.approx(4 * default_memory_budget(), rel=1e-6)
    with pytest.raises(InvalidInput, match="memory size"):
        parse_size("lots")


def test_generate_cost_counts_its_output():
    cost = job_cost(TaskRequest(task="generate", sample_rate=16000, frames=1000, channels=0), ("a", "b"))
    assert cost == 2 * 2 * 1000 * 4  # 2 stems x 2 channels (0 = 2) x 1000 frames x float32
