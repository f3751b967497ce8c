"""Band-split separator training: a few steps, checkpoint and curve snapshots (with CPU time),
resume, warm start from an export, the learning-curve evaluation, presets and augmentation."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.eval.curve import curve_records, plot_curves
from stemlink.lab.export.bandsplit import export_bandsplit
from stemlink.lab.train.bandsplit import load_bandsplit_preset, preset_from_dict, train
from stemlink.lab.train.loop import scheduled_lr
from stemlink.lab.train.msdm_data import synthetic_stems
from stemlink.lab.train.separator_data import SeparatorAugment, apply_timbre


def _args(out, **kw) -> argparse.Namespace:
    base = dict(
        preset="bandsplit-debug", data=None, out=str(out), resume=False, max_steps=3, max_minutes=None, device="cpu", seed=0, threads=1
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_train_snapshot_resume_export_and_curve(tmp_path):
    run = tmp_path / "run"
    net = train(_args(run))
    state = load_checkpoint(run / "last.pt", family="bandsplit")
    assert state["step"] == 3 and 0 < state["cpu_time"] and {"model", "ema", "optimizer", "preset", "metrics"} <= set(state)
    assert [r["step"] for r in map(json.loads, (run / "loss.jsonl").read_text().splitlines()) if "loss" in r] == [1, 2, 3]
    assert [p.name for p in sorted((run / "curve").glob("*.pt"))] == ["step-000003.pt"]

    resumed = train(_args(run, resume=True, max_steps=5))
    state2 = load_checkpoint(run / "last.pt", family="bandsplit")
    assert state2["step"] == 5 and state2["cpu_time"] >= state["cpu_time"]
    key = "split.0.weight"
    assert not torch.equal(state2["model"][key], state["model"][key])
    assert torch.equal(state2["model"][key], resumed.state_dict()[key])
    assert [p.name for p in sorted((run / "curve").glob("*.pt"))] == ["step-000003.pt", "step-000005.pt"]

    exports = tmp_path / "exports"
    result = export_bandsplit(run / "last.pt", exports, name="bs-debug", formats=("torchscript",))
    assert result.specs[0].config["train_step"] == 5 and result.parity["torchscript"] < 1e-5

    warm = train(_args(tmp_path / "warm", init=str(exports / "bs-debug.pt"), max_steps=1))  # continue a shipped export
    assert load_checkpoint(tmp_path / "warm" / "last.pt")["init"].startswith("TorchScript export")
    assert warm is not net

    g = torch.Generator().manual_seed(0)
    windows = list(synthetic_stems(3, 4, 4096, 8000, g))
    records = curve_records([run], windows, ("bass", "drums", "guitar", "piano"), 8000)
    assert [r["step"] for r in records] == [3, 5] and all(np.isfinite(r["avg_sisdri"]) for r in records)
    assert records[0]["cpu_minutes"] <= records[1]["cpu_minutes"] and records[0]["core"] == "conv"
    assert plot_curves(records, tmp_path / "curve.png", "debug").stat().st_size > 1000
    with pytest.raises(ValueError, match="Hz"):
        curve_records([run], windows, ("bass", "drums", "guitar", "piano"), 16000)


def test_bakeoff_presets_differ_only_in_the_core():
    presets = {core: load_bandsplit_preset(f"bandsplit-{core}-cpu") for core in ("lstm", "transformer", "conv")}
    assert {p.model.core for p in presets.values()} == {"lstm", "transformer", "conv"}
    assert len({(p.train, p.data, p.augment) for p in presets.values()}) == 1
    assert (
        len({(p.model.sample_rate, p.model.n_fft, p.model.hop, p.model.bands, p.model.dim, p.model.window) for p in presets.values()}) == 1
    )
    assert all(p.model.sample_rate == 44100 for p in presets.values())
    gpu = load_bandsplit_preset("bandsplit-gpu")  # the same code at GPU size
    assert gpu.model.core == "conv" and gpu.model.dim > presets["conv"].model.dim and gpu.augment == presets["conv"].augment


def test_anneal_preset_is_the_conv_preset_with_a_decaying_learning_rate():
    conv, anneal = load_bandsplit_preset("bandsplit-conv-cpu"), load_bandsplit_preset("bandsplit-conv-anneal-cpu")
    assert (anneal.model, anneal.data, anneal.augment) == (conv.model, conv.data, conv.augment)
    assert conv.train.decay_steps == 0 and anneal.train.decay_steps > 0 and 0 < anneal.train.min_lr < anneal.train.lr


def test_wide_preset_is_the_conv_preset_with_more_features():
    conv, wide = load_bandsplit_preset("bandsplit-conv-cpu"), load_bandsplit_preset("bandsplit-conv-wide-cpu")
    assert (wide.train, wide.data, wide.augment) == (conv.train, conv.data, conv.augment)
    assert wide.model.dim > conv.model.dim and wide.model.core == conv.model.core == "conv"


def test_learning_rate_schedule_warms_up_then_holds_or_decays_by_a_cosine():
    assert [scheduled_lr(s, 1.0, 4) for s in (0, 1, 3, 4, 10_000)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert scheduled_lr(0, 1.0, 0) == 1.0  # no warm-up
    decayed = [scheduled_lr(s, 1.0, 10, 100, 0.1) for s in range(0, 200)]
    assert decayed[9] == 1.0 and decayed[10] == 1.0  # warm-up ends at lr, the cosine starts there
    assert decayed[60] == pytest.approx(0.55)  # half way: the mean of lr and min_lr
    assert decayed[110] == pytest.approx(0.1) and decayed[199] == pytest.approx(0.1)  # then min_lr
    assert all(a >= b for a, b in zip(decayed[10:], decayed[11:], strict=False))  # never rises again


def test_bad_preset_values_name_the_table():
    with pytest.raises(PresetError, match=r"\[model\].*core"):
        preset_from_dict("x", {"model": {"core": "mamba"}})
    with pytest.raises(PresetError, match=r"x\[augment\]"):
        preset_from_dict("x", {"augment": {"remix": 2.0}})
    with pytest.raises(PresetError, match="unknown key"):
        preset_from_dict("x", {"train": {"batchsize": 2}})


def test_timbre_augmentation_is_seeded_keeps_level_and_silence():
    stems = synthetic_stems(2, 4, 8000, 16000, torch.Generator().manual_seed(1)).numpy()
    stems[1, 2] = 0.0
    cfg = SeparatorAugment(timbre=1.0, pitch=0.0)
    a = apply_timbre(stems, 16000, cfg, np.random.default_rng(3))
    b = apply_timbre(stems, 16000, cfg, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == stems.shape and np.isfinite(a).all() and not np.allclose(a, stems)
    rms = lambda x: np.sqrt(np.mean(x * x, axis=-1))  # noqa: E731
    np.testing.assert_allclose(rms(a)[0], rms(stems)[0], rtol=1e-3)
    assert np.all(a[1, 2] == 0.0)  # a silent stem stays silent


def test_corpus_batches_survive_epochs_whose_grid_has_another_window_count(tmp_path):
    """Each epoch re-jitters the window grid, which can change the number of windows; the batch
    iterator must draw from the current count (it once indexed one past the end and crashed)."""
    from stemlink.lab.train.msdm_data import DataConfig
    from stemlink.lab.train.separator_data import separator_batches
    from tests.lab.data.corpus_builders import make_stemlink, tone

    stems = ("bass", "drums", "guitar", "piano")
    plan = {f"t{i}": {s: tone(1.3 + 0.37 * i, 110.0 * (k + 1) + 13 * i) for k, s in enumerate(stems)} for i in range(3)}
    root = make_stemlink(tmp_path / "corpus", plan, {t: "train" for t in plan})
    data = DataConfig(root=str(root), max_overlap=0.5)
    it = separator_batches(data, SeparatorAugment(remix=1.0, timbre=0.0), stems=stems, length=2048, sample_rate=8000, batch=4, seed=0)
    for _ in range(60):  # many epochs of a few windows each
        x = next(it)
        assert x.shape == (4, 4, 2048) and torch.isfinite(x).all()
