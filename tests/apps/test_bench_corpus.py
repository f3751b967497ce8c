"""The corpus `stemlink bench` renders for itself when given no --data and the checkout has no
data/corpus: rendered once (with progress) into a folder keyed by its settings, atomically, reused
afterwards; an interrupted render is never used; an explicit missing --data stays an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stemlink import cli
from stemlink.apps.bench import suite
from stemlink.apps.bench.suite import BenchConfig, BenchCorpus, resolve_data

TINY = BenchCorpus(tracks=2, seconds=5.0, sample_rate=8000)
TINY_OOD = BenchCorpus(tracks=2, seconds=5.0, sample_rate=8000, seed=7, source="mma")
NO_OOD = ("coherence",)  # sections that read --data only (separation also reads the unseen-arrangement set)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bench cache in tmp_path and a checkout without data/corpus."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(suite.CACHE_ENV, str(folder))
    monkeypatch.setattr(suite, "checkout_root", lambda: tmp_path / "checkout")
    return folder


def _no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered although a complete bench corpus was there")

    monkeypatch.setattr("stemlink.lab.data.render.render_corpus", fail)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_missing_default_corpus_is_rendered_once_then_reused(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stemlink.lab.data import open_corpus

    log: list[str] = []
    config = resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), log.append)
    assert config.data == cache / f"bench-corpus-{TINY.key()}"
    ready = json.loads((config.data / "READY").read_text())
    assert ready["tracks"] == 2 and ready["config_digest"] == TINY.render_config("").digest()
    assert open_corpus(config.data).splits() == ["test"] and len(open_corpus(config.data).tracks("test")) == 2
    assert [line for line in log if line.startswith("[render] ")][-1].startswith("[render] 2/2 ")  # the renderer's progress
    (done,) = [line for line in log if line.startswith("bench corpus: rendered")]
    assert TINY.describe() in done and str(config.data) in done and " s -> " in done
    assert [p.name for p in cache.iterdir()] == [config.data.name]  # no temp folder left

    _no_render(monkeypatch)
    again: list[str] = []
    assert resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), again.append).data == config.data
    assert again == [f"bench corpus: {config.data} ({TINY.describe()}, rendered earlier)"]


def test_the_key_follows_the_render_settings() -> None:
    keys = {
        c.key() for c in (TINY, BenchCorpus(tracks=3, seconds=5.0, sample_rate=8000), BenchCorpus(tracks=2, seconds=5.0, sample_rate=16000))
    }
    assert len(keys) == 3 and TINY.key() == BenchCorpus(tracks=2, seconds=5.0, sample_rate=8000).key()
    assert BenchConfig(quick=True).bench_corpus == suite.QUICK_CORPUS and BenchConfig().bench_corpus == suite.FULL_CORPUS
    assert suite.QUICK_CORPUS.seed != 0  # the shipped models trained on seed 0's tracks


def test_a_leftover_temp_render_is_never_used(cache: Path) -> None:
    final = cache / f"bench-corpus-{TINY.key()}"
    left = cache / f".{final.name}.{_dead_pid()}.tmp"  # a render killed before its rename
    left.mkdir(parents=True)
    (left / "READY").write_text(json.dumps({"tracks": 2, "config_digest": TINY.render_config("").digest()}))
    (left / "corpus.json").write_text("{}")
    log: list[str] = []
    assert resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), log.append).data == final
    assert any(line.startswith("[render] 2/2 ") for line in log)  # rendered anew, not taken from the leftover
    assert not left.exists() and json.loads((final / "corpus.json").read_text())["tracks"]


def test_an_interrupted_render_leaves_nothing_that_is_reused(cache: Path) -> None:
    def interrupt(line: str) -> None:
        if line.startswith("[render] 1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), interrupt)
    assert list(cache.iterdir()) == []
    log: list[str] = []
    data = resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), log.append).data
    assert data is not None and (data / "READY").is_file() and any(line.startswith("[render] 2/2 ") for line in log)


def test_a_folder_without_ready_under_the_final_name_is_replaced(cache: Path) -> None:
    final = cache / f"bench-corpus-{TINY.key()}"
    (final / "track_00000").mkdir(parents=True)
    log: list[str] = []
    assert resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), log.append).data == final
    assert (final / "READY").is_file() and any(line.startswith("bench corpus: rendered") for line in log)


def test_the_checkouts_corpora_come_first(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_render(monkeypatch)
    corpus, ood = suite.checkout_root() / "data" / "corpus44", suite.checkout_root() / "data" / "mma-ood44"
    corpus.mkdir(parents=True)
    ood.mkdir(parents=True)
    config = resolve_data(BenchConfig(quick=True, corpus=TINY, ood_corpus=TINY_OOD), print)
    assert (config.data, config.ood) == (corpus, ood)


def test_the_unseen_arrangement_set_is_rendered_from_mma_grooves(cache: Path) -> None:
    from stemlink.lab.data import open_corpus

    log: list[str] = []
    config = resolve_data(BenchConfig(quick=True, corpus=TINY, ood_corpus=TINY_OOD), log.append)
    assert config.ood == cache / f"bench-corpus-{TINY_OOD.key()}" and config.ood != config.data
    assert TINY_OOD.key() != TINY.key() and "(mma, seed 7, all test)" in TINY_OOD.describe()
    tracks = open_corpus(config.ood).tracks("test")
    assert len(tracks) == 2 and all(t.meta["source"] == "mma" for t in tracks)
    assert resolve_data(BenchConfig(quick=True, corpus=TINY, sections=NO_OOD), print).ood is None


def test_cache_folder_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(suite.CACHE_ENV, raising=False)
    monkeypatch.setattr(suite, "checkout_root", lambda: tmp_path / "checkout")
    assert suite.bench_cache() == tmp_path / "checkout" / "data"
    monkeypatch.setattr(suite, "checkout_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert suite.bench_cache() == tmp_path / "xdg" / "stemlink"
    monkeypatch.setenv(suite.CACHE_ENV, str(tmp_path / "mine"))
    assert suite.bench_cache() == tmp_path / "mine"


def test_explicit_missing_data_is_an_error_not_replaced(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _no_render(monkeypatch)
    argv = ["bench", "--quick", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "b"), "--only", "separation"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: no corpus at {tmp_path / 'nope'}") and "stemlink data render" in err and "\n" not in err
    assert not cache.exists() and not (tmp_path / "b").exists()


@pytest.mark.timeout(300)
def test_bench_without_data_renders_and_measures(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echo_exports, capsys
) -> None:
    monkeypatch.setattr(suite, "QUICK_CORPUS", TINY)
    monkeypatch.setattr(suite, "QUICK_OOD", TINY_OOD)
    out = tmp_path / "b" / "bench"
    argv = ["bench", "--quick", "--exports", str(echo_exports), "--out", str(out), "--only", "separation", "--separation-windows", "2"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    final = cache / f"bench-corpus-{TINY.key()}"
    assert "[render] 2/2 " in printed and f"bench corpus: rendered {TINY.describe()}" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["root"] == str(final) and res["data"]["split"] == "test"
    assert res["data"]["bench_corpus"] == {"tracks": 2, "seconds": 5.0, "sample_rate": 8000, "seed": 12, "source": "procedural"}
    assert res["data"]["ood"]["bench_corpus"]["source"] == "mma"
    assert [s["set"] for s in res["separation"]["sets"]] == ["corpus test split", "unseen arrangements (mma)"]
    for entry in res["separation"]["sets"]:
        assert 1 <= entry["windows"] <= 2 and entry["sample_rate"] == 44100
        assert any(s["system"].startswith("echo-sep") for s in entry["systems"])
    assert f"- data: {final} split `test`" in (tmp_path / "b" / "BENCHMARKS.md").read_text()
