"""Client <-> engine over real sockets (tcp, ipc, inproc, embedded child process)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from stemlink.bridge import Client
from stemlink.contract import TaskResult
from stemlink.errors import Busy, Cancelled, EngineUnavailable, InvalidInput, UnknownModel, UnknownTask
from stemlink.launcher import connect

SLOW = {"steps": 40, "sleep": 0.05}  # echo debug params: 40 steps x 50 ms per window


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_separate_over_each_transport(start_server, transport, stereo_mix):
    server = start_server(transport)
    seen = []
    with Client(server.address, timeout=10) as client:
        result = client.separate(stereo_mix, 44100, progress=lambda d, t, s: seen.append((d, t)))
    assert sorted(result.stems) == ["bass", "drums", "guitar", "piano"]
    for stem in result.stems.values():
        assert stem.shape == stereo_mix.shape and stem.dtype == np.float32
    np.testing.assert_allclose(sum(result.stems.values()), stereo_mix, atol=1e-5)
    assert result.model == "echo" and len(result.model_sha256) == 64
    assert seen and seen[-1][0] == seen[-1][1]


def test_embedded_inproc_is_the_default(echo_exports, stereo_mix):
    with connect(exports_dir=echo_exports) as client:
        assert client.address.startswith("inproc://")
        assert [m.name for m in client.models()] == ["echo", "echo-sep"]
        result = client.separate(stereo_mix[:1], 22050)
    assert result.stems["piano"].shape == (1, stereo_mix.shape[1])


def test_inputs_are_not_modified(start_server, stereo_mix):
    server = start_server()
    before = stereo_mix.copy()
    with Client(server.address) as client:
        client.separate(stereo_mix, 44100)
    np.testing.assert_array_equal(stereo_mix, before)


def test_hello_status_ping(start_server):
    server = start_server(queue_size=3)
    with Client(server.address) as client:
        caps = client.hello()
        assert caps.protocol_version == 1 and caps.limits.queue_size == 3
        info, sep = caps.models
        assert sep.name == "echo-sep" and sep.tasks == ("separate",) and sep.formats == ("torchscript",)
        assert info.formats == ("onnx", "torchscript") and info.delay == 5 and info.window == 4096
        assert caps.defaults["separate"] == "echo"
        assert client.ping() < 1.0
        status = client.status()
        assert status.queue_depth == 0 and status.running == [] and status.queue_size == 3


def test_other_tasks(start_server, stereo_mix):
    server = start_server()
    with Client(server.address) as client:
        acc = client.accompany(stereo_mix, 44100, context_stems=("bass", "drums"), stems=("piano",))
        assert list(acc.stems) == ["piano"] and acc.stems["piano"].shape == stereo_mix.shape
        best = client.accompany(stereo_mix, 44100, context_stems=("bass",), candidates=3, seed=1)
        assert {"candidate_0", "candidate_1", "candidate_2"} <= set(best.scores)
        gen = client.generate(30000, 48000, channels=2, seed=3)
        assert all(s.shape == (2, 30000) for s in gen.stems.values())
        again = client.generate(30000, 48000, channels=2, seed=3)
        np.testing.assert_array_equal(gen.stems["bass"], again.stems["bass"])
        score = client.score(stereo_mix, stereo_mix[:, :15000], 44100)
        assert -1.0 <= score.scores["score"] <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "call,exc,field",
    [
        (lambda c, x: c.separate(x, 44100, model="nope"), UnknownModel, "model"),
        (lambda c, x: c.extract(x, 44100, stems=("bass",), model="echo-sep"), UnknownTask, "task"),
        (lambda c, x: c._task("dance", 44100, {"mix": x}), UnknownTask, "task"),
        (lambda c, x: c.separate(x[:, :0], 44100), InvalidInput, "audio[0].frames"),
        (lambda c, x: c.separate(np.where(x > 0.2, np.nan, x), 44100), InvalidInput, "audio[0]"),
        (lambda c, x: c.separate(x, 44100, params={"steps": 0}), InvalidInput, "params.steps"),
        (lambda c, x: c.separate(x, 44100, params={"temperature": 1.0}), InvalidInput, "params.temperature"),
    ],
)
def test_typed_errors(start_server, stereo_mix, call, exc, field):
    server = start_server()
    with Client(server.address, timeout=10) as client:
        with pytest.raises(exc) as info:
            call(client, stereo_mix)
        assert info.value.field == field
        assert client.separate(stereo_mix[:, :100], 44100).stems["bass"].shape == (2, 100)  # still serving


def test_oversized_inputs_are_refused_before_sending(start_server, stereo_mix):
    from stemlink.bridge.protocol import Limits
    from stemlink.errors import TooLarge

    server = start_server(limits=Limits(max_frames=10000, max_message_bytes=1 << 20))
    with Client(server.address, timeout=5) as client:
        with pytest.raises(TooLarge) as info:
            client.separate(stereo_mix, 44100)  # 20000 frames
        assert info.value.field == "mix"
        with pytest.raises(InvalidInput, match="at most 16"):
            client.separate(np.zeros((17, 100), np.float32), 44100)
        assert client.separate(stereo_mix[:, :5000], 44100).stems["bass"].shape == (2, 5000)


def test_cancel_from_progress_callback_within_one_step(start_server, stereo_mix):
    server = start_server()
    steps = []

    def progress(done, total, stage):
        if stage == "load":
            return
        steps.append(done)
        if done >= 3:
            raise Cancelled("user pressed stop")

    with Client(server.address) as client:
        client.separate(stereo_mix[:, :100], 44100)  # warm: the model is loaded, only steps are timed
        start = time.monotonic()
        with pytest.raises(Cancelled):
            client.separate(stereo_mix, 44100, params=SLOW, progress=progress)
        assert time.monotonic() - start < 1.0  # 40 x 50 ms would be 2 s per window
        assert max(steps) <= 4  # honoured within one step of the request
        time.sleep(0.1)
        status = client.status()
        assert status.running == [] and status.jobs_failed == 1


def test_cancel_from_another_thread(start_server, stereo_mix):
    server = start_server()
    with Client(server.address) as client:
        client.separate(stereo_mix[:, :100], 44100)  # warm: the model is loaded, only steps are timed
        timer = threading.Timer(0.3, client.cancel)
        timer.start()
        start = time.monotonic()
        with pytest.raises(Cancelled):
            client.separate(stereo_mix, 44100, params=SLOW)
        assert time.monotonic() - start < 1.0


def test_job_timeout_cancels(start_server, stereo_mix):
    from stemlink.errors import Timeout

    server = start_server()
    with Client(server.address) as client:
        with pytest.raises(Timeout):
            client.separate(stereo_mix, 44100, params=SLOW, timeout=0.3)


def test_busy_when_queue_full(start_server, stereo_mix):
    server = start_server(workers=1, queue_size=1)
    results = {}

    def run(name):
        with Client(server.address) as c:
            try:
                results[name] = c.separate(stereo_mix[:, :4000], 16000, params={"steps": 10, "sleep": 0.1})
            except Busy as exc:
                results[name] = exc

    first = threading.Thread(target=run, args=("running",))
    first.start()
    time.sleep(0.3)  # running now
    second = threading.Thread(target=run, args=("queued",))
    second.start()
    time.sleep(0.2)  # waiting in the queue
    with Client(server.address) as client:
        start = time.monotonic()
        with pytest.raises(Busy) as info:
            client.separate(stereo_mix[:, :100], 16000)
        assert time.monotonic() - start < 0.5 and info.value.field == "queue"
    first.join(10)
    second.join(10)
    assert not isinstance(results["running"], Exception) and not isinstance(results["queued"], Exception)


def test_many_clients_get_a_result_or_busy_never_a_hang(start_server, stereo_mix):
    server = start_server(workers=1, queue_size=4)
    outcomes = []
    lock = threading.Lock()

    def run():
        with Client(server.address, timeout=10) as c:
            for _ in range(3):
                try:
                    r = c.separate(stereo_mix[:, :800], 16000, params={"steps": 2, "sleep": 0.01})
                    outcome = "ok" if r.stems["bass"].shape == (2, 800) else "bad"
                except Busy:
                    outcome = "busy"
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == 36 and set(outcomes) <= {"ok", "busy"} and "ok" in outcomes
    with Client(server.address) as c:
        status = c.status()
    assert status.queue_depth == 0 and status.running == []
    assert status.jobs_done == outcomes.count("ok")


def test_heartbeats_keep_a_slow_job_alive(start_server, stereo_mix):
    server = start_server(heartbeat_interval=0.2)
    with Client(server.address, heartbeat_timeout=1.0) as client:
        # One step of 2 s: no progress for longer than the heartbeat timeout, only heartbeats.
        result = client.separate(stereo_mix[:, :2000], 16000, params={"steps": 1, "sleep": 2.0})
    assert result.stems["bass"].shape == (2, 2000)


@pytest.fixture
def fake_engine():
    """fake_engine(script) -> address: a ROUTER thread that answers hello, accepts one submit and
    then runs `script(send, submit)`; `send(msg)` sends a reply to that client."""
    import zmq

    from stemlink.bridge.protocol import Accepted, Capabilities, decode, encode

    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.linger = 0
    port = router.bind_to_random_port("tcp://127.0.0.1")
    threads = []

    def start(script):
        def run():
            msg = None
            while msg is None or msg.TYPE != "submit":
                assert router.poll(5000)
                identity, *frames = router.recv_multipart()
                msg = decode(frames, "request")
                if msg.TYPE == "hello":
                    router.send_multipart([identity, *encode(Capabilities(id=msg.id))])
            send = lambda reply: router.send_multipart([identity, *encode(reply)])  # noqa: E731
            send(Accepted(id=msg.id))
            script(send, msg)

        threads.append(threading.Thread(target=run))
        threads[-1].start()
        return f"tcp://127.0.0.1:{port}"

    yield start
    for thread in threads:
        thread.join(5)
    router.close(linger=0)


def test_engine_that_goes_silent_mid_job_is_reported_by_heartbeat_timeout(fake_engine, stereo_mix):
    """A remote engine whose host vanished just goes silent (connection up, no pid this client
    can check): a fake engine accepts the job, sends progress, then nothing; only the
    silence limit tells (here 1 s; the default is long, see the next test)."""
    from stemlink.bridge.protocol import Progress

    silent = []

    def script(send, submit):
        for step in range(5):
            send(Progress(id=submit.id, done=step + 1, total=100))
            time.sleep(0.1)
        silent.append(time.monotonic())

    with Client(fake_engine(script), timeout=5, heartbeat_timeout=1.0) as client:
        with pytest.raises(EngineUnavailable, match="stopped responding.*nothing for"):
            client.separate(stereo_mix, 44100)
        detected = time.monotonic() - silent[0]
    assert 0.9 < detected < 30, f"silent engine noticed after {detected:.2f} s"


def test_default_silence_limit_is_long_and_follows_the_engine():
    """A live engine must never be declared dead for a few seconds of silence: the default
    limit is 60 s, or 20 heartbeat intervals of the engine if that is longer."""
    from stemlink.bridge.protocol import Capabilities

    address = "tcp://127.0.0.1:1"  # never contacted
    with Client(address, timeout=5) as client:
        assert client.silence_limit == 60.0
        client.capabilities = Capabilities(id="c", heartbeat_interval=5.0)
        assert client.silence_limit == 100.0
    with Client(address, timeout=5, heartbeat_timeout=3.0) as client:
        assert client.silence_limit == 3.0


def test_announced_big_result_may_take_longer_than_the_heartbeat_timeout(fake_engine, stereo_mix):
    """`send` progress (result bytes) extends the allowed silence: slow links carry big results."""
    from stemlink.bridge.protocol import Progress, Result

    def script(send, submit):
        send(Progress(id=submit.id, done=0, total=20_000_000, stage="send"))  # 2 s at 10 MB/s
        time.sleep(1.5)  # longer than the 1 s heartbeat timeout: the "transfer"
        send(Result(id=submit.id, result=TaskResult(task="separate", model="fake", stems={"bass": submit.request.inputs["mix"]})))

    address = fake_engine(script)
    with Client(address, timeout=5, heartbeat_timeout=1.0, keepalive=0) as client:
        result = client.separate(stereo_mix, 44100, progress=lambda d, t, s: pytest.fail("send stage is internal"))
    np.testing.assert_array_equal(result.stems["bass"], stereo_mix)


def test_engine_gone_between_jobs_is_reported_quickly(start_server, stereo_mix):
    server = start_server()
    with Client(server.address, timeout=30) as client:
        client.hello()
        server.stop()
        start = time.monotonic()
        with pytest.raises(EngineUnavailable, match="nothing is listening|connection to the engine .* was lost"):
            client.separate(stereo_mix, 44100)
        assert time.monotonic() - start < 20.0  # the ~2 s connect timeout, not the 30 s request timeout


def test_no_engine_is_reported(tmp_path):
    with Client(f"ipc://{tmp_path}/nobody.sock", timeout=0.5) as client:
        start = time.monotonic()
        with pytest.raises(EngineUnavailable, match="no engine answered"):
            client.ping()
        assert time.monotonic() - start < 10


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "ipc://{tmp}/nobody.sock"])
def test_nothing_listening_fails_fast_not_after_the_request_timeout(tmp_path, stereo_mix, address):
    """Nobody accepts connections at the address: "no" after the 2 s connect timeout, for
    requests (the CLI's `models` waited its 10 s) and jobs (30 s) alike."""
    address = address.format(tmp=tmp_path)
    with Client(address, timeout=60) as client:
        start = time.monotonic()
        with pytest.raises(EngineUnavailable, match="nothing is listening at"):
            client.models()
        with pytest.raises(EngineUnavailable, match="nothing is listening at"):
            client.separate(stereo_mix, 44100)
        assert time.monotonic() - start < 40  # far below the 2 x 60 s the timeouts allow


def test_embedded_child_process_killed_mid_job(echo_exports, stereo_mix):
    """The embedded engine as a child process (ipc://); SIGKILL it mid-job."""
    client = connect(exports_dir=echo_exports, embedded="process", timeout=30)
    engine = client.engine
    try:
        assert client.address.startswith("ipc://") and engine.alive
        killed = []

        def progress(done, total, stage):
            if stage == "run" and not killed:
                os.kill(engine.process.pid, signal.SIGKILL)
                killed.append(time.monotonic())

        assert client.models()[0].name == "echo"
        with pytest.raises(EngineUnavailable, match="died during job.*signal 9"):
            client.separate(stereo_mix, 44100, params=SLOW, progress=progress)
        detected = time.monotonic() - killed[0]
        assert detected < 30, f"dead child engine noticed after {detected:.2f} s (the silence limit is 60 s)"
    finally:
        client.close()
    assert not engine.alive and engine.folder is None  # temp folder with the ipc socket removed


def test_ctrl_c_cancels_the_job_on_the_engine(start_server, stereo_mix):
    server = start_server()

    def progress(done, total, stage):
        if stage == "run":
            raise KeyboardInterrupt

    with Client(server.address) as client:
        with pytest.raises(KeyboardInterrupt):
            client.separate(stereo_mix, 44100, params=SLOW, progress=progress)
        deadline = time.monotonic() + 5
        while client.status().running and time.monotonic() < deadline:
            time.sleep(0.05)
        status = client.status()
    assert status.running == [] and status.jobs_failed == 1
