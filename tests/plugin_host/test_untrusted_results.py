"""The host trusts nothing it receives: a fake engine (a bare ROUTER socket speaking protocol v1)
answers hello/ping/submit with malformed results; the real CLI refuses each one with one line,
exit code 2, and writes nothing."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
import zmq

from stemlink.bridge.protocol import Accepted, Capabilities, Hello, ModelInfo, Ping, Pong, Result, Submit, decode, encode
from stemlink.cli import main
from stemlink.contract import TaskResult
from stemlink.errors import BadResult
from stemlink.plugin_host.verify import check_result

STEMS = ("bass", "drums", "guitar", "piano")
SHA = "ab" * 32


class FakeEngine:
    """Answers like an engine serving model "echo"; `result(submit) -> dict` makes the reply's fields."""

    def __init__(self, result):
        self.result = result
        self.submits = 0
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.address = f"tcp://127.0.0.1:{self.socket.bind_to_random_port('tcp://127.0.0.1')}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        info = ModelInfo(
            name="echo",
            version="1",
            family="echo",
            tasks=("separate", "accompany"),
            formats=("onnx",),
            sample_rate=44100,
            stems=STEMS,
            window=4096,
            delay=0,
            sha256=SHA,
        )
        while not self.stopping.is_set():
            if not self.socket.poll(20):
                continue
            who, *frames = self.socket.recv_multipart()
            msg = decode(frames, "request")
            if isinstance(msg, Hello):
                replies = [Capabilities(id=msg.id, engine_version="fake", models=[info], defaults={"separate": "echo"})]
            elif isinstance(msg, Ping):
                replies = [Pong(id=msg.id)]
            elif isinstance(msg, Submit):
                self.submits += 1
                fields = {
                    "task": msg.request.task,
                    "model": "echo",
                    "model_version": "1",
                    "model_sha256": SHA,
                    "seed": msg.request.seed,
                    **self.result(msg),
                }
                replies = [Accepted(id=msg.id), Result(id=msg.id, result=TaskResult(**fields))]
            else:
                continue
            for reply in replies:
                self.socket.send_multipart([who, *encode(reply)])

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.socket.close(0)
        self.context.term()


def full(value, shape=(2, 44100)):
    return np.full(shape, value, dtype=np.float32)


def good(msg):
    return {"stems": {s: full(0.0) for s in STEMS}}


CASES = {
    "nan-1x10": (
        lambda msg: {"stems": {s: full(np.nan, (1, 10)) for s in STEMS}},
        "stem 'bass' is 1 x 10 samples, the region is 2 x 44100",
    ),
    "nan-right-shape": (
        lambda msg: {"stems": {**good(msg)["stems"], "piano": full(np.nan)}},
        "stem 'piano' contains NaN or infinite samples",
    ),
    "inf": (lambda msg: {"stems": {**good(msg)["stems"], "drums": full(np.inf)}}, "stem 'drums' contains NaN or infinite samples"),
    "missing-stem": (lambda msg: {"stems": {s: full(0.0) for s in STEMS[:3]}}, "missing ['piano']"),
    "extra-stem": (lambda msg: {"stems": {**good(msg)["stems"], "kazoo": full(0.0)}}, "unexpected ['kazoo']"),
    "no-sha256": (lambda msg: {**good(msg), "model_sha256": ""}, "model sha256 '' is not 64 lowercase hex digits"),
    "no-version": (lambda msg: {**good(msg), "model_version": ""}, "no model version"),
    "other-model": (lambda msg: {**good(msg), "model": "imposter"}, "names model 'imposter'"),
    "other-seed": (lambda msg: {**good(msg), "seed": msg.request.seed + 1}, "used seed 1"),
    "other-task": (lambda msg: {**good(msg), "task": "generate"}, "for task 'generate'"),
}


@pytest.fixture
def workdir(cli_workdir, monkeypatch):
    monkeypatch.delenv("STEMLINK_EXPORTS", raising=False)
    return cli_workdir


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_result_is_refused_and_nothing_written(workdir, capsys, case):
    make, message = CASES[case]
    engine = FakeEngine(make)
    try:
        code = main(["separate", "mix.wav", "--out", "out", "--engine", engine.address])
    finally:
        engine.close()
    err = capsys.readouterr().err
    assert engine.submits == 1 and code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert f"refusing the result from the engine at {engine.address}" in lines[0] and message in lines[0]
    assert not (workdir / "out").exists() or not any((workdir / "out").iterdir())


def test_a_well_formed_result_from_the_same_fake_is_written(workdir):
    engine = FakeEngine(good)
    try:
        assert main(["separate", "mix.wav", "--out", "out", "--engine", engine.address]) == 0
    finally:
        engine.close()
    assert sorted(p.name for p in (workdir / "out").glob("*.wav")) == [f"mix_{s}_0.wav" for s in STEMS]


def test_discovered_engine_is_not_trusted_either(workdir, capsys, monkeypatch):
    """The issue's case: anything answering a ping where discovery looks is used, and checked."""
    import stemlink.bridge.discovery as discovery_module

    engine = FakeEngine(CASES["nan-1x10"][0])
    monkeypatch.setattr(discovery_module, "discover", functools.partial(discovery_module.discover, address=engine.address))
    try:
        code = main(["separate", "mix.wav", "--out", "out"])  # no --engine, no STEMLINK_ENGINE: discovery
    finally:
        engine.close()
    assert code == 2 and "stem 'bass' is 1 x 10 samples" in capsys.readouterr().err
    assert not (workdir / "out").exists() or not any((workdir / "out").iterdir())


def result(**changes) -> TaskResult:
    fields = dict(task="separate", model="echo", model_version="1", model_sha256=SHA, seed=0, stems={"bass": full(0.0, (2, 8))})
    return TaskResult(**{**fields, **changes})


ASK = dict(source="test", task="separate", model="echo", seed=0, stems=("bass",), channels=2, frames=8)


@pytest.mark.parametrize(
    "stems,message",
    [
        ({"../bass": full(0.0, (2, 8))}, "is not a plain name"),
        ({"a/b": full(0.0, (2, 8))}, "is not a plain name"),
        ({"..": full(0.0, (2, 8))}, "is not a plain name"),
        ({"bass": np.zeros((2, 8), dtype=np.float64)}, "dtype float64, expected float32"),
        ({"bass": [[0.0] * 8] * 2}, "not an array"),
        ({"bass": full(0.0, (8,))}, "is 8 samples, the region is 2 x 8"),
    ],
)
def test_check_result_refuses_what_the_wire_would_not_carry(stems, message):
    """Names with path characters and non-float32 arrays cannot come over protocol v1, but the
    host checks them anyway (an in-process client, a future protocol)."""
    with pytest.raises(BadResult, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        check_result(result(stems=stems), **ASK)


def test_check_result_scores_must_be_finite():
    check_result(result(stems={}, task="score", scores={"score": 0.5}), **{**ASK, "task": "score", "stems": ()}, scores=("score",))
    with pytest.raises(BadResult, match="score 'score' is nan"):
        check_result(
            result(stems={}, task="score", scores={"score": float("nan")}), **{**ASK, "task": "score", "stems": ()}, scores=("score",)
        )
