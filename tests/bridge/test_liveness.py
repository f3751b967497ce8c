"""A stalled engine is not a dead engine; a dead one is still reported quickly; a client that
gives up cancels its job (stemlink/bridge/liveness.py, the rule in the `Client` docstring)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from stemlink.bridge import Client
from stemlink.bridge.discovery import port_open
from stemlink.bridge.liveness import ALIVE, GONE, STOPPED, UNKNOWN, ProcessIdentity, process_state
from stemlink.errors import EngineUnavailable, Timeout
from stemlink.launcher import connect

SLOW = {"steps": 40, "sleep": 0.05}  # echo debug params: 40 steps x 50 ms per window (>= 2 windows here)
ENDLESS = {"steps": 1000, "sleep": 0.05}  # 50 s per window: if it is gone early, it was cancelled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve_process(echo_exports):
    """A `stemlink serve` child process on a loopback tcp port, as a user would run it."""
    procs = []

    def start() -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "stemlink", "serve", "--bind", f"tcp://127.0.0.1:{port}", "--exports", str(echo_exports)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + 120  # torch import on a loaded machine
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline, "stemlink serve did not start"
            time.sleep(0.05)
        return proc, f"tcp://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_process_state_of_this_and_other_processes():
    me = ProcessIdentity.of_this_process()
    assert me.pid == os.getpid() and me.boot_id and me.start_ticks > 0
    assert process_state(me) == ALIVE
    assert process_state(ProcessIdentity()) == UNKNOWN  # the engine did not say
    assert process_state(ProcessIdentity(me.pid, "another-kernel", me.start_ticks)) == UNKNOWN
    assert process_state(ProcessIdentity(me.pid, me.boot_id, me.start_ticks + 1)) == GONE  # pid reused
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ident = ProcessIdentity(child.pid, me.boot_id, _start_ticks(child.pid))
        os.kill(child.pid, signal.SIGSTOP)
        assert _eventually(lambda: process_state(ident) == STOPPED)
        os.kill(child.pid, signal.SIGCONT)
        assert _eventually(lambda: process_state(ident) == ALIVE)
        child.kill()
        assert _eventually(lambda: process_state(ident) == GONE)  # a zombie until reaped
    finally:
        child.kill()
        child.wait()
    assert process_state(ident) == GONE


def _start_ticks(pid: int) -> int:
    text = open(f"/proc/{pid}/stat").read()
    return int(text[text.rindex(")") + 2 :].split()[19])


def _eventually(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def _stop_for(pid: int, seconds: float, seen: dict) -> threading.Timer:
    """SIGSTOP `pid` now and SIGCONT it after `seconds` (recording the state seen meanwhile)."""
    os.kill(pid, signal.SIGSTOP)
    seen["stopped_at"] = time.monotonic()

    def resume():
        seen["state"] = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        os.kill(pid, signal.SIGCONT)

    timer = threading.Timer(seconds, resume)
    timer.start()
    return timer


@pytest.mark.parametrize("how", ["embedded-process", "serve-tcp"])
def test_engine_stopped_for_3_s_mid_job_completes_the_job(echo_exports, serve_process, stereo_mix, how):
    """SIGSTOP the engine process for 3 s mid-job (no heartbeats, nothing read): the client
    keeps waiting and gets the right result; the engine forgives the client's keepalives it
    could not read while stopped (keepalive 0.5 s: 3 missed intervals < 3 s)."""
    if how == "embedded-process":
        client = connect(exports_dir=echo_exports, embedded="process", keepalive=0.5)
        pid = client.engine.process.pid
    else:
        proc, address = serve_process()
        client = Client(address, keepalive=0.5)
        pid = proc.pid
    seen: dict = {}
    timers = []

    def progress(done, total, stage):
        if stage == "run" and not timers:
            timers.append(_stop_for(pid, 3.0, seen))

    try:
        assert client.hello().pid == pid
        result = client.separate(stereo_mix, 44100, params=SLOW, progress=progress)
        for timer in timers:
            timer.join()
        np.testing.assert_allclose(sum(result.stems.values()), stereo_mix, atol=1e-5)
        assert timers and seen["state"] == "T"  # it really was stopped, mid-job
        status = client.status()
        assert status.jobs_done == 1 and status.jobs_failed == 0 and status.running == []
    finally:
        for timer in timers:
            timer.join()
        os.kill(pid, signal.SIGCONT)
        client.close()


def test_killed_serve_process_is_reported_quickly(serve_process, stereo_mix):
    """`stemlink serve` on loopback tcp, SIGKILLed mid-job: reported from /proc or the dropped
    connection, long before the 60 s silence limit."""
    proc, address = serve_process()
    killed = []

    def progress(done, total, stage):
        if stage == "run" and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(time.monotonic())

    with Client(address) as client:
        with pytest.raises(
            EngineUnavailable, match=rf"engine process {proc.pid} .* died during job|connection to the engine .* was lost during job"
        ):
            client.separate(stereo_mix, 44100, params=SLOW, progress=progress)
        detected = time.monotonic() - killed[0]
    assert detected < 30, f"killed engine noticed after {detected:.2f} s"


def test_remote_engine_dropping_the_connection_is_reported(stereo_mix):
    """No pid to check (a remote engine): a connection closed mid-job is still noticed at once."""
    from stemlink.bridge.protocol import Accepted, Capabilities, Progress, decode, encode

    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.linger = 0
    port = router.bind_to_random_port("tcp://127.0.0.1")
    closed = []

    def engine():
        while True:
            assert router.poll(30000)
            identity, *frames = router.recv_multipart()
            msg = decode(frames, "request")
            if msg.TYPE == "hello":
                router.send_multipart([identity, *encode(Capabilities(id=msg.id))])
            elif msg.TYPE == "submit":
                assert msg.keepalive > 0  # keepalive is on by default
                router.send_multipart([identity, *encode(Accepted(id=msg.id))])
                router.send_multipart([identity, *encode(Progress(id=msg.id, done=1, total=10))])
                time.sleep(0.3)
                router.close(linger=0)  # the engine's host resets the connection
                closed.append(time.monotonic())
                return

    thread = threading.Thread(target=engine)
    thread.start()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
            with pytest.raises(EngineUnavailable, match="was lost during job"):
                client.separate(stereo_mix, 44100)
            assert time.monotonic() - closed[0] < 30  # not the 60 s silence limit
    finally:
        thread.join(30)
        if not router.closed:
            router.close(linger=0)


def _wait_gone(client: Client, timeout: float = 30.0):
    """The engine's status once no job is running or queued (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.status()
        if not status.running and not status.queued:
            return status
        assert time.monotonic() < deadline, f"jobs still active: {status.running} {status.queued}"
        time.sleep(0.05)


@pytest.mark.parametrize("give_up", ["timeout", "exception"])
def test_a_client_that_gives_up_cancels_its_job(start_server, stereo_mix, give_up):
    server = start_server()

    def progress(done, total, stage):
        if stage == "run":
            raise RuntimeError("the host crashed in its progress handler")

    with Client(server.address) as client:
        if give_up == "timeout":
            with pytest.raises(Timeout):
                client.separate(stereo_mix, 44100, params=ENDLESS, timeout=0.5)
        else:
            with pytest.raises(RuntimeError):
                client.separate(stereo_mix, 44100, params=ENDLESS, progress=progress)
        status = _wait_gone(client)  # long before the 50 s the job would take
    assert status.jobs_failed == 1 and status.jobs_done == 0


def test_a_new_job_does_not_wait_behind_the_clients_abandoned_one(start_server, stereo_mix):
    server = start_server(workers=1)
    with Client(server.address) as client:
        with pytest.raises(Timeout):
            client.separate(stereo_mix, 44100, params=ENDLESS, timeout=0.5)
        start = time.monotonic()
        result = client.separate(stereo_mix[:, :1000], 44100)  # one worker: it would queue behind 50 s
        assert time.monotonic() - start < 40
        assert result.stems["bass"].shape == (2, 1000)
        status = client.status()
    assert status.jobs_failed == 1 and status.jobs_done == 1


def test_status_never_shows_a_finished_job_as_running(start_server, stereo_mix):
    """The first failure of issue 10 item 7: the result was sent before the job left `running`."""
    server = start_server()
    with Client(server.address) as client:
        for i in range(30):
            assert client.separate(stereo_mix[:, :800], 16000).stems["bass"].shape == (2, 800)
            status = client.status()
            assert status.running == [] and status.queued == [] and status.jobs_done == i + 1


def test_engine_job_timeout_is_a_typed_timeout(start_server, stereo_mix):
    server = start_server(job_timeout=0.5)
    with Client(server.address) as client:
        assert client.hello().job_timeout == 0.5
        with pytest.raises(Timeout, match="job timeout") as info:
            client.separate(stereo_mix, 44100, params=ENDLESS)
        assert info.value.field == "job_timeout"
        assert client.separate(stereo_mix[:, :100], 44100).stems["bass"].shape == (2, 100)  # still serving


def test_capabilities_describe_the_engine_process(start_server):
    server = start_server(heartbeat_interval=0.25)
    with Client(server.address) as client:
        caps = client.hello()
    me = ProcessIdentity.of_this_process()
    assert (caps.pid, caps.boot_id, caps.process_start) == (me.pid, me.boot_id, me.start_ticks)
    assert caps.heartbeat_interval == 0.25 and caps.max_client_jobs == 2 and caps.memory_budget > 0
