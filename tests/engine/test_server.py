"""Engine server over raw sockets: seeded fuzzing, queue/heartbeat/cancel, shutdown, SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import msgpack
import numpy as np
import pytest
import zmq

from stemlink.bridge.protocol import Cancel, Ping, StatusRequest, Submit, decode, encode
from stemlink.contract import Limits, TaskRequest
from stemlink.engine.server import Server, ServerConfig
from stemlink.errors import EngineUnavailable
from stemlink.lab.export.echo import build_echo_export

RECV_MS = 3000


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("exports"), sample_rate=8000, window=2048, formats=("torchscript",))


@pytest.fixture
def server(exports):
    srv = Server(
        ServerConfig(
            bind="tcp://127.0.0.1:*", exports_dir=exports, queue_size=2, heartbeat_interval=0.2, limits=Limits(max_message_bytes=1 << 20)
        )
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def dealer(server):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(server.address)
    yield sock
    sock.close(linger=0)


def recv(sock, timeout_ms=RECV_MS):
    """Next reply, decoded; a hang fails the test."""
    assert sock.poll(timeout_ms), "no reply from the engine"
    return decode(sock.recv_multipart(copy=False), "reply")


def recv_until(sock, msg_id, types, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        msg = recv(sock)
        seen.append(msg.TYPE)
        if msg.id == msg_id and msg.TYPE in types:
            return msg, seen
    raise AssertionError(f"no {types} for {msg_id}; saw {seen}")


def submit(msg_id, frames=3000, keepalive=0.0, **fields):
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, frames))).astype(np.float32)
    request = TaskRequest(task="separate", sample_rate=16000, inputs={"mix": mix}, **fields)
    return encode(Submit(id=msg_id, request=request, keepalive=keepalive))


def hostile_messages(rng: np.random.Generator, n: int):
    """Seeded garbage: random bytes, random msgpack, wrong versions/types/ids, frame-count and
    frame-size mismatches, huge dims, NaN audio, oversized headers, hostile msgpack types."""
    good = {"v": 1, "type": "submit", "id": "f", "task": "separate", "sample_rate": 16000}
    for i in range(n):
        kind = i % 12
        if kind == 0:
            yield [rng.bytes(int(rng.integers(0, 300)))]
        elif kind == 1:
            obj = [
                int(rng.integers(-(2**63), 2**63 - 1)),
                float(rng.standard_normal()),
                "x" * int(rng.integers(0, 50)),
                None,
                {"k": [1, 2]},
            ]
            yield [msgpack.packb(obj[int(rng.integers(0, len(obj)))])]
        elif kind == 2:
            yield [msgpack.packb({"v": int(rng.integers(2, 1000)), "type": "ping", "id": "f"})]
        elif kind == 3:
            yield [msgpack.packb({"v": 1, "type": ["submit", "result", "exec", "", 7][i % 5], "id": "f"})]
        elif kind == 4:
            n_frames = int(rng.integers(0, 4))
            if n_frames == 1:
                n_frames = 2
            yield [msgpack.packb({**good, "audio": [{"name": "mix", "channels": 1, "frames": 4}]}), *([b"\x00" * 16] * n_frames)]
        elif kind == 5:
            size = int(rng.integers(0, 64))
            if size == 32:
                size = 31
            yield [msgpack.packb({**good, "audio": [{"name": "mix", "channels": 2, "frames": 4}]}), b"\x00" * size]
        elif kind == 6:
            dims = {"channels": int(rng.integers(1, 2**31)), "frames": int(rng.integers(2**20, 2**62))}
            yield [msgpack.packb({**good, "audio": [{"name": "mix", **dims}]}), b"\x00" * 64]
        elif kind == 7:
            audio = rng.standard_normal((2, 16)).astype(np.float32)
            audio[int(rng.integers(0, 2)), int(rng.integers(0, 16))] = [np.nan, np.inf, -np.inf][i % 3]
            yield [msgpack.packb({**good, "audio": [{"name": "mix", "channels": 2, "frames": 16}]}), audio.tobytes()]
        elif kind == 8:
            yield [msgpack.packb({"v": 1, "type": "hello", "id": "f", "client": "x" * 70000})]
        elif kind == 9:
            yield [msgpack.packb({"v": 1, "type": "ping", "id": "f", "x": msgpack.ExtType(int(rng.integers(0, 127)), rng.bytes(8))})]
        elif kind == 10:
            depth = int(rng.integers(6, 3000))
            yield [b"\x83\xa1v\x01\xa4type\xa4ping\xa2id" + b"\x91" * depth + b"\x01"]
        else:
            bad = {"sample_rate": -1, "seed": 2**64 - 1, "params": {"steps": {"nested": 1}}, "task": "dance", "id": 5}
            key = list(bad)[i % len(bad)]
            yield [msgpack.packb({**good, key: bad[key], "audio": [{"name": "mix", "channels": 1, "frames": 1}]}), b"\x00" * 4]


def test_fuzz_1000_hostile_messages_then_a_valid_job(server, dealer):
    rng = np.random.default_rng(1234)
    codes = {}
    for frames in hostile_messages(rng, 1000):
        dealer.send_multipart(frames)
        reply = recv(dealer)
        assert reply.TYPE == "error", f"{frames[0][:40]!r} was not refused"
        assert reply.message
        codes[reply.code] = codes.get(reply.code, 0) + 1
    assert set(codes) == {"PROTOCOL", "VERSION", "TOO_LARGE", "INVALID_INPUT", "UNKNOWN_TASK"}, codes
    dealer.send_multipart(submit("ok-1"), copy=False)
    result, seen = recv_until(dealer, "ok-1", {"result", "error"})
    assert result.TYPE == "result" and seen[0] == "accepted"
    assert result.result.stems["bass"].shape == (2, 3000)


def test_frame_above_max_message_size_drops_only_that_peer(server, dealer):
    dealer.send_multipart([msgpack.packb({"v": 1, "type": "ping", "id": "big"}), b"\x00" * (2 << 20)])
    assert not dealer.poll(300)  # libzmq refuses the oversized frame (maxmsgsize) and drops the connection
    with zmq.Context.instance().socket(zmq.DEALER) as other:
        other.linger = 0
        other.connect(server.address)
        other.send_multipart(encode(Ping(id="p")))
        assert recv(other).TYPE == "pong"


def test_heartbeats_for_queued_and_running_jobs(server, dealer):
    dealer.send_multipart(submit("slow", params={"steps": 4, "sleep": 0.2}), copy=False)
    dealer.send_multipart(submit("next"), copy=False)
    beats = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ("running" in beats.get("slow", ()) and "queued" in beats.get("next", ())):
        msg = recv(dealer)
        if msg.TYPE == "heartbeat":
            beats.setdefault(msg.id, set()).add(msg.state)
    assert "running" in beats.get("slow", set())
    assert "queued" in beats.get("next", set())
    recv_until(dealer, "next", {"result"})


def test_cancel_queued_job_and_unknown_job(server, dealer):
    dealer.send_multipart(submit("slow", params={"steps": 10, "sleep": 0.1}), copy=False)
    dealer.send_multipart(submit("waiting"), copy=False)
    recv_until(dealer, "waiting", {"accepted"})
    dealer.send_multipart(encode(Cancel(id="c1", job="waiting")))
    err, _ = recv_until(dealer, "waiting", {"error", "result"})
    assert err.TYPE == "error" and err.code == "CANCELLED"
    dealer.send_multipart(encode(Cancel(id="c2", job="never-submitted")))
    err, _ = recv_until(dealer, "c2", {"error"})
    assert err.code == "INVALID_INPUT" and err.field == "job"
    dealer.send_multipart(encode(Cancel(id="c3", job="slow")))
    err, _ = recv_until(dealer, "slow", {"error", "result"})
    assert err.TYPE == "error" and err.code == "CANCELLED"


def test_jobs_of_a_silent_client_are_cancelled(server, dealer):
    """keepalive 0.2 s declared, then nothing from the client: cancelled after 3 missed intervals."""
    dealer.send_multipart(submit("orphan", params={"steps": 50, "sleep": 0.1}, keepalive=0.2), copy=False)
    dealer.send_multipart(submit("orphan-queued", keepalive=0.2), copy=False)
    start = time.monotonic()
    finals = {}
    while len(finals) < 2:
        msg = recv(dealer)
        if msg.TYPE in ("error", "result"):
            finals[msg.id] = msg.code if msg.TYPE == "error" else "result"
    assert finals == {"orphan": "CANCELLED", "orphan-queued": "CANCELLED"}
    assert time.monotonic() - start < 3.0  # 50 x 0.1 s = 5 s if it had run to the end


def test_a_client_that_keeps_pinging_keeps_its_job(server, dealer):
    dealer.send_multipart(submit("alive", params={"steps": 8, "sleep": 0.1}, keepalive=0.2), copy=False)
    assert ping_until_final(dealer, "alive").TYPE == "result"


def ping_until_final(dealer, job_id, timeout_s=30.0):
    """Ping every 0.1 s, as a keepalive client does, until `job_id`'s result or error."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dealer.send_multipart(encode(Ping(id="keepalive")))
        if dealer.poll(100):
            msg = decode(dealer.recv_multipart(copy=False), "reply")
            if msg.id == job_id and msg.TYPE in ("result", "error"):
                return msg
    raise AssertionError(f"job {job_id!r} did not finish")


class _StallableClock:
    """`time` for the server module whose monotonic clock can jump, as it does for a process
    that was stopped (SIGSTOP) or starved: the jump lands wherever the I/O thread is."""

    def __init__(self):
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


def test_a_stall_inside_an_io_turn_is_forgiven_before_the_verdict(server, dealer, monkeypatch):
    """The engine stalls for 3 s while forwarding a progress reply (after the turn read the
    clock, before the heartbeat verdict), and the client's pings from that time have not
    surfaced yet: its job must survive (keepalive 0.2 s: 3 missed intervals are 0.6 s)."""
    import stemlink.engine.server.server as server_module

    clock = _StallableClock()
    monkeypatch.setattr(server_module, "time", clock)
    forward = server._forward
    stalls = []

    def stalling_forward(router, pull):
        forward(router, pull)
        if not stalls and server.queue.active():
            stalls.append(clock.offset)
            clock.offset += 3.0

    monkeypatch.setattr(server, "_forward", stalling_forward)
    dealer.send_multipart(submit("stalled", params={"steps": 8, "sleep": 0.1}, keepalive=0.2), copy=False)
    msg = ping_until_final(dealer, "stalled")
    assert stalls, "the stall was never injected"
    assert msg.TYPE == "result", msg


def test_other_clients_cannot_cancel_my_job(server, dealer):
    dealer.send_multipart(submit("mine", params={"steps": 3, "sleep": 0.05}), copy=False)
    recv_until(dealer, "mine", {"accepted"})
    with zmq.Context.instance().socket(zmq.DEALER) as other:
        other.linger = 0
        other.connect(server.address)
        other.send_multipart(encode(Cancel(id="evil", job="mine")))
        assert recv(other).code == "INVALID_INPUT"
    result, _ = recv_until(dealer, "mine", {"result", "error"})
    assert result.TYPE == "result"


def test_duplicate_active_job_id_is_refused(server, dealer):
    dealer.send_multipart(submit("dup", params={"steps": 3, "sleep": 0.1}), copy=False)
    dealer.send_multipart(submit("dup"), copy=False)
    err, seen = recv_until(dealer, "dup", {"error", "result"})
    assert err.TYPE == "error" and err.field == "id" and seen[0] == "accepted"
    recv_until(dealer, "dup", {"result"})  # the first job is unaffected


def test_status_shows_running_job(server, dealer):
    dealer.send_multipart(submit("s1", params={"steps": 5, "sleep": 0.1}), copy=False)
    recv_until(dealer, "s1", {"progress"})
    dealer.send_multipart(encode(StatusRequest(id="st")))
    status, _ = recv_until(dealer, "st", {"status"})
    assert [r["job"] for r in status.running] == ["s1"] and status.running[0]["task"] == "separate"
    recv_until(dealer, "s1", {"result"})


def test_graceful_shutdown_replies_to_every_job(exports):
    srv = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=exports, queue_size=4)).start()
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(srv.address)
        sock.send_multipart(submit("run", params={"steps": 50, "sleep": 0.1}), copy=False)
        while True:  # wait until the model runs (not just loads): cancel lands between steps
            msg, _ = recv_until(sock, "run", {"progress"}, timeout_s=30)  # model load can be slow on a busy machine
            if msg.stage == "run":
                break
        sock.send_multipart(submit("wait"), copy=False)
        recv_until(sock, "wait", {"accepted"})
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 2.0
        finals = {}
        while len(finals) < 2:
            msg = recv(sock)
            if msg.TYPE == "error":
                finals[msg.id] = msg.code
        assert finals == {"run": "CANCELLED", "wait": "ENGINE_UNAVAILABLE"}
    # The port is free again: sockets were closed (libzmq closes the listener asynchronously).
    deadline = time.monotonic() + 3
    while True:
        try:
            Server(ServerConfig(bind=srv.address, exports_dir=exports)).start().stop()
            break
        except EngineUnavailable:
            assert time.monotonic() < deadline, f"{srv.address} still in use 3 s after stop()"
            time.sleep(0.1)


def test_two_workers_run_two_jobs_at_once(exports):
    srv = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=exports, workers=2, preload=True)).start(timeout=60)
    try:
        assert srv.registry._cache  # preloaded
        with zmq.Context.instance().socket(zmq.DEALER) as sock:
            sock.linger = 0
            sock.connect(srv.address)
            for job in ("a", "b"):
                sock.send_multipart(submit(job, params={"steps": 10, "sleep": 0.1}), copy=False)
            for job in ("a", "b"):
                while recv_until(sock, job, {"progress"}, timeout_s=30)[0].stage != "run":
                    pass
            sock.send_multipart(encode(StatusRequest(id="st")))
            status, _ = recv_until(sock, "st", {"status"})
            assert sorted(r["job"] for r in status.running) == ["a", "b"] and status.queue_depth == 0
            finals = {}
            while len(finals) < 2:
                msg = recv(sock)
                if msg.TYPE in ("result", "error"):
                    finals[msg.id] = msg.TYPE
            assert finals == {"a": "result", "b": "result"}
    finally:
        srv.stop()


def test_shutdown_can_let_the_running_job_finish(exports):
    srv = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=exports, finish_running=True, shutdown_grace=10)).start()
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(srv.address)
        sock.send_multipart(submit("run", params={"steps": 5, "sleep": 0.1}), copy=False)
        while recv_until(sock, "run", {"progress"}, timeout_s=30)[0].stage != "run":
            pass
        srv.stop()
        final, _ = recv_until(sock, "run", {"result", "error"})
        assert final.TYPE == "result" and final.result.stems["bass"].shape == (2, 3000)


def test_stemlink_serve_stops_on_sigterm(exports, tmp_path, caplog):
    """`stemlink serve` in this process's main thread; a client thread runs a job, then SIGTERMs us."""
    import logging
    import threading

    from stemlink.cli import main

    sock_path = tmp_path / "serve.sock"
    outcome = {}

    def client_then_sigterm():
        try:
            deadline = time.monotonic() + 30
            while not sock_path.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            with zmq.Context.instance().socket(zmq.DEALER) as sock:
                sock.linger = 0
                sock.connect(f"ipc://{sock_path}")
                sock.send_multipart(submit("j"), copy=False)
                outcome["reply"] = recv_until(sock, "j", {"result", "error"}, timeout_s=30)[0].TYPE
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=client_then_sigterm)
    try:
        with caplog.at_level(logging.INFO, logger="stemlink.engine.server"):
            thread.start()
            start = time.monotonic()
            assert main(["serve", "--bind", f"ipc://{sock_path}", "--exports", str(exports)]) == 0
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        thread.join(30)
    assert outcome["reply"] == "result"
    assert "job j task=separate model=echo frames=3000 -> ok" in caplog.text and "stopped" in caplog.text
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    "address,ok",
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://localhost:1", True),
        ("ipc:///tmp/x", True),
        ("inproc://x", True),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://*:5555", False),
        ("tcp://10.1.2.3:5555", False),
        ("tcp://[::1]:5555", True),
    ],
)
def test_loopback_detection(address, ok):
    from stemlink.commands.serve import is_loopback

    assert is_loopback(address) is ok


def test_serve_refuses_implicit_non_loopback_bind(monkeypatch, capsys):
    from stemlink.cli import main

    monkeypatch.setenv("STEMLINK_BIND", "tcp://0.0.0.0:5999")
    assert main(["serve"]) == 2
    assert "pass it explicitly with --bind" in capsys.readouterr().err


def test_status_command(server, capsys, monkeypatch):
    from stemlink.cli import main

    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    assert main(["status", "--engine", server.address]) == 0
    out = capsys.readouterr().out
    assert f"engine at {server.address}" in out and "queue 0/2" in out
    monkeypatch.setenv("STEMLINK_ENGINE", "embedded")
    assert main(["status"]) == 2
    assert "no engine is running" in capsys.readouterr().err


def test_candidates_that_cannot_be_ranked_say_so_in_the_result(start_server, tmp_path):
    """No score model to rank accompany candidates: one candidate, `ranked` False and a warning
    in the result (it used to turn candidates=4 into 1 silently)."""
    from stemlink.bridge import Client
    from stemlink.lab.export.echo import build_echo_export

    exports = build_echo_export(
        tmp_path / "exports", sample_rate=16000, window=4096, tasks=("separate", "accompany"), formats=("torchscript",)
    )
    server = start_server(exports_dir=exports)
    context = (0.1 * np.random.default_rng(0).standard_normal((2, 6000))).astype(np.float32)
    with Client(server.address, timeout=30) as client:
        result = client.accompany(context, 16000, context_stems=("bass",), candidates=4)
        plain = client.accompany(context, 16000, context_stems=("bass",))
    assert result.info["ranked"] is False and "candidate_1" not in result.scores
    (warning,) = result.warnings
    assert "candidates=4" in warning and "score model" in warning and "not ranked" in warning
    assert plain.warnings == []  # one candidate asked: nothing to warn about
