"""GMSDI (issue 15) on the debug config: mixture-only training data, tag vocabulary errors, the
samplers' couplings, and one export serving separate / extract / accompany / generate with tags."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from stemlink.contract import resolve_tag
from stemlink.engine.tags import tag_vector
from stemlink.errors import InvalidInput
from stemlink.lab.train.gmsdi_data import MixtureAugment, mixture_item

VOCAB = ("bass", "drums", "guitar", "piano", "brass", "synth_lead")


def test_training_items_are_mixtures_with_the_tags_they_hold():
    rng = np.random.default_rng(0)
    stems = np.stack([np.sin(np.arange(4000) * (k + 1) / 10) * 0.1 for k in range(4)] + [np.zeros(4000)])
    for _ in range(200):
        mix, tags = mixture_item(stems, rng, MixtureAugment(full_mix=0.3))
        held = np.flatnonzero(tags)
        assert len(held) >= 2 and 4 not in held  # sub-mixes of at least two sounding stems, never a silent one's tag
        ref = stems[held].sum(axis=0)
        assert abs(np.corrcoef(mix, ref)[0, 1] - 1) < 1e-6  # exactly the tagged stems, levelled
    solo = np.zeros_like(stems)
    solo[2] = stems[2]
    mix, tags = mixture_item(solo, rng, MixtureAugment())
    assert tags.tolist() == [0, 0, 1, 0, 0]  # a window whose mix is one instrument stays that mix
    assert mixture_item(np.zeros_like(stems), rng, MixtureAugment()) is None


def test_tags_resolve_free_text_and_errors_name_the_vocabulary():
    assert tag_vector(["bass", "Synth Lead"], VOCAB).tolist() == [1, 0, 0, 0, 0, 1]
    assert resolve_tag("brass section", VOCAB) == "brass" and resolve_tag("synth-lead", VOCAB) == "synth_lead"
    with pytest.raises(InvalidInput, match="names no tag; the vocabulary: bass, drums, guitar, piano, brass, synth lead"):
        resolve_tag("zither", VOCAB)
    with pytest.raises(InvalidInput, match="names several tags"):
        resolve_tag("bass and piano", VOCAB)
    with pytest.raises(InvalidInput, match="not in the vocabulary"):
        tag_vector(["kazoo"], VOCAB)
    with pytest.raises(InvalidInput, match="no tags given"):
        tag_vector([], VOCAB)


def test_total_generation_couples_sources_and_mixture_by_gamma():
    from stemlink.engine.sampling import karras_sigmas
    from stemlink.engine.sampling.gmsdi import sample_gmsdi_generate

    def den(x, sigma):  # a toy denoiser pulling every channel to its own constant
        return torch.tensor([0.3, -0.1, 0.5])[None, :, None].expand_as(x)

    sigmas = karras_sigmas(30, 1e-3, 1.0)
    x = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    free = sample_gmsdi_generate(den, x, sigmas)
    coupled = sample_gmsdi_generate(den, x, sigmas, gamma_x=0.8, gamma_y=0.8)
    gap = lambda out: float((out[:, -1] - out[:, :-1].sum(dim=1)).abs().mean())  # noqa: E731
    assert gap(free) > 0.25 and gap(coupled) < 0.5 * gap(free)  # y = 0.5 alone vs sum x = 0.2: the likelihood pulls them together


@pytest.fixture(scope="module")
def gmsdi_registry(tmp_path_factory):
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.checkpoints import load_checkpoint
    from stemlink.lab.export.gmsdi import export_gmsdi
    from stemlink.lab.train.gmsdi import train

    tmp = tmp_path_factory.mktemp("gmsdi")
    args = dict(preset="gmsdi-debug", data=None, init=None, max_minutes=None, device="cpu", seed=0, threads=1)
    train(argparse.Namespace(out=str(tmp / "run"), resume=False, max_steps=3, **args))
    train(argparse.Namespace(out=str(tmp / "run"), resume=True, max_steps=4, **args))
    assert load_checkpoint(tmp / "run" / "last.pt", family="gmsdi")["step"] == 4
    result = export_gmsdi(tmp / "run" / "last.pt", tmp / "exports", name="gmsdi-test")
    assert set(result.parity) == {"onnx", "torchscript"} and max(result.parity.values()) <= 1e-3
    with pytest.raises(InvalidInput, match="params.method"):  # refused before anything is written
        export_gmsdi(tmp / "run" / "last.pt", tmp / "exports", name="gmsdi-bad", defaults={"separate": {"method": "median"}})
    tuned = {"steps": 7, "separate": {"method": "extractor", "scale": 5.0}, "extract": {"scale": 5.0}}
    export_gmsdi(tmp / "run" / "last.pt", tmp / "exports", name="gmsdi-tuned", formats=("torchscript",), defaults=tuned)
    train(argparse.Namespace(out=str(tmp / "cont"), resume=False, max_steps=1, **{**args, "init": str(tmp / "exports" / "gmsdi-test.pt")}))
    from stemlink.lab.export.clap import export_clap
    from stemlink.lab.train.clap import train as train_clap

    train_clap(argparse.Namespace(out=str(tmp / "clap"), resume=False, max_steps=1, **{**args, "preset": "clap-debug"}))
    export_clap(tmp / "clap" / "last.pt", tmp / "exports", name="clap-debug")  # the generation figures' classifier
    return ModelRegistry(tmp / "exports", device="cpu", threads=1)


def test_gmsdi_export_serves_every_task_with_tags(gmsdi_registry):
    from stemlink.contract import TaskRequest
    from stemlink.engine.tasks import run_task

    model = gmsdi_registry.get("gmsdi-test", "onnx")
    rng = np.random.default_rng(1)
    mix = (0.1 * rng.standard_normal((2, 12_000))).astype(np.float32)  # stereo, 44.1 kHz host rate
    fast = {"steps": 3}
    for method in ("separator", "extractor", "ensemble"):
        out = run_task(
            model, TaskRequest("separate", 44100, {"mix": mix}, stems=("bass", "drums", "piano"), params={**fast, "method": method})
        )
        assert list(out.stems) == ["bass", "drums", "piano"] and all(s.shape == (2, 12_000) for s in out.stems.values())
        np.testing.assert_allclose(sum(out.stems.values()), mix, atol=1e-4)  # stems sum to the mix
    default = run_task(model, TaskRequest("separate", 44100, {"mix": mix}, params=fast))
    assert list(default.stems) == ["bass", "drums", "guitar", "piano"]
    ext = run_task(model, TaskRequest("extract", 44100, {"mix": mix}, stems=("piano",), params={**fast, "negative": True}))
    assert list(ext.stems) == ["piano", "residual"]
    np.testing.assert_allclose(ext.stems["piano"] + ext.stems["residual"], mix, atol=1e-5)
    acc = run_task(model, TaskRequest("accompany", 44100, {"context": mix}, context_stems=("bass", "drums"), stems=("piano",), params=fast))
    assert list(acc.stems) == ["piano"] and acc.stems["piano"].shape == (2, 12_000)
    gen = run_task(
        model, TaskRequest("generate", 44100, {}, stems=("bass", "guitar"), frames=5000, channels=1, params={**fast, "gamma_x": 2.0})
    )
    assert list(gen.stems) == ["bass", "guitar"] and gen.stems["bass"].shape == (1, 5000)
    with pytest.raises(InvalidInput, match="not a stem of model"):
        run_task(model, TaskRequest("extract", 44100, {"mix": mix}, stems=("kazoo",)))
    with pytest.raises(InvalidInput, match="params.constrained"):
        run_task(model, TaskRequest("separate", 44100, {"mix": mix}, stems=("bass", "drums"), params={**fast, "constrained": "piano"}))
    assert math.isclose(model.parse_params("separate", {}).scale, 3.0)
    assert model.parse_params("separate", {}).likelihood == "dirac_sym"
    with pytest.raises(InvalidInput, match="params.likelihood"):
        model.parse_params("separate", {"likelihood": "gaussian"})
    for likelihood in ("dirac", "dirac_sym"):  # both constraints: stems sum to the mix
        out = run_task(model, TaskRequest("separate", 44100, {"mix": mix}, params={**fast, "likelihood": likelihood}))
        np.testing.assert_allclose(sum(out.stems.values()), mix, atol=1e-4)


def test_manifest_defaults_per_task(gmsdi_registry):
    assert "gmsdi-bad" not in {s.name for s in gmsdi_registry.list()}
    model = gmsdi_registry.get("gmsdi-tuned")
    sep, ext, acc = (model.parse_params(t, {}) for t in ("separate", "extract", "accompany"))
    assert (sep.method, sep.scale, sep.steps) == ("extractor", 5.0, 7)
    assert (ext.method, ext.scale, ext.steps) == ("separator", 5.0, 7)  # extract's own table; method is separate's choice
    assert (acc.method, acc.scale, acc.steps) == ("separator", 3.0, 7)  # shared keys only
    assert model.parse_params("separate", {"method": "separator"}).method == "separator"  # a request still overrides


def test_gmsdi_grid_and_extraction_scores(gmsdi_registry, tmp_path):
    from stemlink.lab.eval.gmsdi import gmsdi_extraction, gmsdi_grid
    from stemlink.lab.eval.separation import protocol_windows
    from tests.lab.data.corpus_builders import make_stemlink, tone

    plan = {f"t{n}": {"bass": tone(8.0, 60.0 + n * 5), "drums": tone(8.0, 1500.0), "piano": tone(8.0, 440.0 + 20 * n)} for n in range(2)}
    root = make_stemlink(tmp_path / "corpus", plan, {t: "valid" for t in plan})
    model = gmsdi_registry.get("gmsdi-test", "torchscript")
    stems = ("bass", "drums", "guitar", "piano")
    windows = [w[..., :4096] for w in protocol_windows(str(root), "valid", stems, 8000, limit=1, multiple_of=16)]  # 0.5 s: fast
    rows = list(gmsdi_grid(model, windows, stems, methods=("separator", "extractor"), scales=(1.0, 3.0), steps=1))
    assert [(r["method"], r["scale"]) for r in rows] == [("separator", 1.0), ("separator", 3.0), ("extractor", 1.0), ("extractor", 3.0)]
    both = list(gmsdi_grid(model, windows, stems, methods=("separator",), scales=(1.0,), steps=1, likelihoods=("dirac_sym", "dirac")))
    assert [r["likelihood"] for r in both] == ["dirac_sym", "dirac"] and both[0]["avg_sisdri"] == rows[0]["avg_sisdri"]
    assert all(np.isfinite(r["avg_sisdri"]) and r["guitar_n"] == 0 and r["bass_n"] == 1 for r in rows)  # silent guitar: not scored
    (row,) = gmsdi_extraction(model, str(root), "valid", classes=("piano",), scale=3.0, steps=1, limit=1)
    assert row["class"] == "piano" and row["windows"] == 1 and np.isfinite(row["sisdri"])


def test_cli_extract_and_accompany_with_free_text_tags(gmsdi_registry, tmp_path, monkeypatch):
    from pedalboard.io import AudioFile

    from stemlink.cli import main

    monkeypatch.setenv("STEMLINK_EXPORTS", str(gmsdi_registry.exports_dir))
    monkeypatch.setenv("STEMLINK_ENGINE", "embedded")
    region = tmp_path / "mix.wav"
    with AudioFile(str(region), "w", 22050, 2) as f:
        f.write((0.1 * np.random.default_rng(3).standard_normal((2, 11025))).astype(np.float32))
    out = tmp_path / "out"
    fast = ["--param", "steps=2", "--model", "gmsdi-test"]
    assert main(["extract", str(region), "--stems", "Piano keys", "--context-stems", "bass,drums", *fast, "--out", str(out / "e")]) == 0
    names = sorted(p.name for p in (out / "e").glob("*.wav"))
    assert len(names) == 2 and any("piano" in n for n in names) and any("residual" in n for n in names)
    assert main(["accompany", str(region), "--context-stems", "bass", "--stems", "acoustic guitar", *fast, "--out", str(out / "a")]) == 0
    (wav,) = sorted((out / "a").glob("*.wav"))
    with AudioFile(str(wav)) as f:
        assert (f.frames, f.num_channels) == (11025, 2) and "guitar" in wav.name
    assert main(["extract", str(region), "--stems", "zither", *fast, "--out", str(out / "z")]) != 0  # names the vocabulary, writes nothing
    assert not list((out / "z").glob("*.wav")) if (out / "z").exists() else True


def test_generation_figures_audible_classified_and_frechet(gmsdi_registry, tmp_path):
    from stemlink.lab.eval.gmsdi import gmsdi_generation
    from stemlink.lab.eval.separation import is_silent, protocol_windows
    from tests.lab.data.corpus_builders import make_stemlink, tone

    plan = {f"t{n}": {"bass": tone(8.0, 60.0 + n * 5), "drums": tone(8.0, 1500.0), "piano": tone(8.0, 440.0 + 20 * n)} for n in range(2)}
    root = make_stemlink(tmp_path / "corpus", plan, {t: "test" for t in plan})
    stems = ("bass", "drums", "guitar", "piano")
    windows = [w[..., :4096] for w in protocol_windows(str(root), "test", stems, 8000, limit=2, multiple_of=16)]
    sounding = sum(int((~is_silent(w[None])[0]).sum()) for w in windows)
    model, audio, text = (gmsdi_registry.get(n) for n in ("gmsdi-test", "clap-debug.audio", "clap-debug.text"))
    rows = [gmsdi_generation(model, audio, text, windows, stems, count=2, steps=1, scale=3.0, negative=neg) for neg in (False, True)]
    for row, neg in zip(rows, (False, True), strict=True):
        assert row["negative"] is neg and row["generated"] == 2 * 4 and row["real_stems"] == sounding == 6
        assert 0 <= row["audible"] <= 1 and 0 <= row["real_classified"] <= 1 and row["chance"] == 0.25
        if row["audible"] > 0:
            assert 0 <= row["classified_of_all"] <= row["audible"] and 0 <= row["classified"] <= 1
