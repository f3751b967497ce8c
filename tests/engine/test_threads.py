"""Thread policy (stemlink/engine/threads.py) and the runtime's thread/session settings: pure functions,
no timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stemlink.engine import threads
from stemlink.engine.runtime import load_network, session_bucket, session_options
from stemlink.engine.threads import CpuSample, busy_from_samples, configure_process, parse_threads, requested_threads, thread_count
from stemlink.errors import InvalidInput


@pytest.mark.parametrize(
    "cpus, busy, expected",
    [
        (2, 0.0, 2),  # idle machine: every core
        (2, 0.4, 2),  # a little background work rounds away
        (2, 1.0, 1),
        (2, 2.0, 1),  # both cores taken: still one thread, never zero
        (2, 7.5, 1),  # overloaded
        (8, 2.6, 5),
        (8, -3.0, 8),  # nonsense negative load is no load
        (0, 0.0, 1),  # an empty affinity mask still runs
        (16, 0.0, 16),
    ],
)
def test_thread_count_follows_free_cores(cpus, busy, expected):
    assert thread_count(cpus, busy) == expected


def test_thread_count_never_exceeds_the_cores_or_drops_below_one():
    for cpus in range(1, 33):
        counts = [thread_count(cpus, busy / 4) for busy in range(0, 200)]
        assert all(1 <= c <= cpus for c in counts)
        assert counts == sorted(counts, reverse=True)  # more load, never more threads


def test_busy_from_samples_subtracts_own_cpu_time():
    before = CpuSample(wall=100.0, machine_busy=1000.0, own=50.0)
    # 2 s: the machine was busy 3.0 CPU-seconds, 1.0 of them ours -> others kept 1 core busy
    assert busy_from_samples(before, CpuSample(102.0, 1003.0, 51.0)) == pytest.approx(1.0)
    # all of it ours -> nobody else
    assert busy_from_samples(before, CpuSample(102.0, 1002.0, 52.0)) == pytest.approx(0.0)
    # too short an interval gives no estimate (the caller keeps its previous one)
    assert busy_from_samples(before, CpuSample(100.1, 1000.2, 50.0)) is None


def test_sampler_gives_a_nonnegative_estimate():
    sampler = threads.CpuSampler()
    assert sampler.busy_elsewhere() >= 0.0
    assert 1 <= threads.free_threads(sampler) <= threads.usable_cpus()


@pytest.mark.parametrize(
    "value, expected", [(None, None), ("", None), ("auto", None), ("0", None), (0, None), ("3", 3), (" 2 ", 2), (1, 1), (np.int64(4), 4)]
)
def test_parse_threads(value, expected):
    assert parse_threads(value) == expected


@pytest.mark.parametrize("value", ["two", "-1", "1.5", 2.5, "99999", True])
def test_parse_threads_refuses_with_the_source_named(value):
    with pytest.raises(InvalidInput, match="STEMLINK_THREADS"):
        parse_threads(value)


def test_requested_threads_argument_beats_environment():
    assert requested_threads(3, {"STEMLINK_THREADS": "1"}) == 3
    assert requested_threads(None, {"STEMLINK_THREADS": "2"}) == 2
    assert requested_threads(None, {}) is None


def test_configure_process_sets_passive_waiting_unless_the_user_chose():
    env: dict[str, str] = {}
    assert configure_process(env) == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    user = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_process(user) == {"KMP_BLOCKTIME": "0"}
    assert user["OMP_WAIT_POLICY"] == "ACTIVE"


def test_threads_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, stemlink.engine.threads as t; t.configure_process(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("count, cpus, expected", [(1, 2, 1), (2, 2, 2), (3, 8, 2), (5, 8, 4), (8, 8, 8), (7, 6, 6), (6, 6, 6), (0, 4, 1)])
def test_session_bucket(count, cpus, expected):
    assert session_bucket(count, cpus) == expected


def test_onnx_session_options_never_spin():
    ort = pytest.importorskip("onnxruntime")
    options = session_options(ort, 3)
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_explicit_threads_are_used(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    from stemlink.lab.export.echo import build_echo_export

    build_echo_export(tmp_path, sample_rate=8000, window=256, delay=0, formats=(fmt,))
    path = next(p for p in tmp_path.iterdir() if p.suffix in (".onnx", ".pt"))
    before = torch.get_num_threads()
    try:
        net = load_network(path, fmt, "cpu", threads=1)
        out = net(torch.zeros(2, 256))
        assert torch.get_num_threads() == 1
        assert tuple(out.shape)[0] == 2
        if fmt == "onnx":
            assert set(net._sessions) == {1}
    finally:
        torch.set_num_threads(before)


def test_bad_environment_thread_count_is_a_typed_error(tmp_path, monkeypatch):
    from stemlink.lab.export.echo import build_echo_export

    build_echo_export(tmp_path, sample_rate=8000, window=256, delay=0, formats=("torchscript",))
    path = next(p for p in tmp_path.iterdir() if p.suffix == ".pt")
    monkeypatch.setenv("STEMLINK_THREADS", "many")
    with pytest.raises(InvalidInput, match="STEMLINK_THREADS"):
        load_network(path, "torchscript", "cpu")
