"""`stemlink bench` on tiny debug exports and a tiny rendered corpus (no trained checkpoint):
results.json schema, every section's content, BENCHMARKS.md tables, plots."""

from __future__ import annotations

import json
import math

import pytest

from stemlink import cli

STEMS = ("bass", "drums", "guitar", "piano")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from stemlink.lab.debug import build_debug_exports

    root = tmp_path_factory.mktemp("bench")
    assert (
        cli.main(
            [
                "data",
                "render",
                "--out",
                str(root / "corpus"),
                "--tracks",
                "4",
                "--seconds",
                "6",
                "--sr",
                "8000",
                "--seed",
                "5",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    exports = build_debug_exports(root / "exports", formats=("torchscript",))
    return root, exports


def _run(root, exports, name, *extra):
    out = root / name / "bench"
    argv = [
        "bench",
        "--quick",
        "--exports",
        str(exports),
        "--data",
        str(root / "corpus"),
        "--split",
        "train",
        "--ood",
        str(root / "corpus"),
        "--out",
        str(out),
        "--steps",
        "2",
        *extra,
    ]
    assert cli.main(argv) == 0
    return out, json.loads((out / "results.json").read_text()), (root / name / "BENCHMARKS.md").read_text()


@pytest.mark.timeout(300)
def test_quick_bench_models_sections(setup):
    root, exports = setup
    from stemlink.lab.debug import save_debug_checkpoints

    eager = [f"--eager={name}={path}" for name, path in save_debug_checkpoints(root / "checkpoints").items()]
    out, res, md = _run(root, exports, "models", "--only", "separation,coherence,speed", "--speed-seconds", "1.5", *eager)
    assert res["schema"] == "stemlink-bench/1" and res["version"] == 1 and res["quick"] is True
    assert {"cpu", "cores", "threads", "torch", "onnxruntime"} <= set(res["machine"])
    assert "commit" in res["git"] and set(res["timings"]) == {"separation", "coherence", "speed", "total"}
    assert {m["name"] for m in res["models"]} == {"msdm-small", "cocola-small", "bandsplit-small"}

    assert res["separation"]["sample_rate"] == 44100 and len(res["separation"]["sets"]) == 2
    for entry in res["separation"]["sets"]:
        systems = {s["system"].split(" ")[0]: s for s in entry["systems"] if "refine" not in s}
        assert set(systems) == {"mixture", "oracle", "msdm-small", "bandsplit-small"}
        refined = [s for s in entry["systems"] if "refine" in s]
        assert [s["refine"]["steps"] for s in refined] == [1, 2, 4] and all(s["refine"]["prior"] == "msdm-small" for s in refined)
        assert all(s["per_stem"]["bass"]["n"] == systems["oracle"]["per_stem"]["bass"]["n"] for s in refined)
        assert entry["windows"] > 0 and entry["window_samples"] == 4 * 44100
        assert systems["msdm-small"]["model_rate"] == 8000 and systems["msdm-small"]["params"]["steps"] == 2
        for stem in STEMS:
            assert systems["mixture"]["per_stem"][stem]["sisdri"] == pytest.approx(0.0, abs=1e-9)
            assert systems["oracle"]["per_stem"][stem]["sisdri"] > 3.0  # the IRM really separates
            assert systems["msdm-small"]["per_stem"][stem]["n"] == systems["oracle"]["per_stem"][stem]["n"]
            assert systems["bandsplit-small"]["per_stem"][stem]["n"] == systems["oracle"]["per_stem"][stem]["n"]
        assert systems["bandsplit-small"]["model_rate"] == 8000 and systems["bandsplit-small"]["params"] == {}

    (cocola,) = res["coherence"]["cocola"]
    assert 0.0 <= cocola["accuracy"]["K=2"] <= 1.0 and cocola["pairs"] == 64
    kinds = [d["kind"] for d in cocola["scores"]]
    assert kinds[0].startswith("ground truth") and any(k.startswith("random") for k in kinds)
    (acc,) = res["coherence"]["accompaniment"]
    assert acc["parts"] > 0 and acc["generated"]["count"] == acc["true"]["count"] == acc["parts"]
    assert 0.0 <= acc["generated_nonsilent"] <= 1.0

    runs = {(r["model"], r["task"], r["runtime"]) for r in res["speed"]["runs"]}
    tasks = {("msdm-small", t) for t in ("separate", "accompany", "generate")} | {
        ("cocola-small", "score"),
        ("bandsplit-small", "separate"),
    }
    assert runs == {(m, t, rt) for m, t in tasks for rt in ("torch (TorchScript)", "torch eager (checkpoint)")}
    assert all(r["rtf"] > 0 and math.isfinite(r["rtf"]) for r in res["speed"]["runs"])
    eager = [r for r in res["speed"]["runs"] if r["runtime"].startswith("torch eager")]
    assert all(r["max_abs_diff_vs_export"] < 1e-3 for r in eager)  # the checkpoint really is the exported network

    for heading in (
        "## Separation",
        "## Coherence",
        "## Speed",
        "| system | bass | drums | guitar | piano | mean SI-SDRi | RTF |",
        "| model | task | sampler steps | RTF torch (TorchScript) | RTF torch eager (checkpoint) |",
        "| part | n | mean COCOLA |",
    ):
        assert heading in md
    for png in res["plots"]:
        assert (out / png).is_file() and f"bench/{png}" in md
    assert {"separation_0.png", "separation_1.png", "coherence.png", "speed.png"} <= set(res["plots"])


@pytest.mark.timeout(300)
def test_quick_bench_bridge_and_scale(setup):
    root, exports = setup
    out, res, md = _run(root, exports, "engine", "--only", "bridge,scale", "--scale-seconds", "1,3", "--bridge-runs", "3")
    assert [r["seconds"] for r in res["scale"]["runs"]] == [1.0, 3.0]
    assert all(r["frames"] == int(r["seconds"] * 44100) for r in res["scale"]["runs"])
    assert set(res["bridge"]["job_ms"]) >= {"inproc", "ipc", "tcp"} and res["bridge"]["n"] == 3
    assert "| transport | wire only (ms) |" in md and "| region | wall (s) |" in md
    assert {"bridge.png", "scale.png"} <= set(res["plots"])


def test_missing_corpus_says_how_to_render_it(setup, tmp_path, capsys):
    _, exports = setup
    code = cli.main(
        [
            "bench",
            "--quick",
            "--exports",
            str(exports),
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "b"),
            "--only",
            "separation",
        ]
    )
    assert code == 2
    assert "stemlink data render" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
