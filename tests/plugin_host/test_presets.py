"""Presets and FX chains: shipped presets load; every invalid preset names the field."""

from __future__ import annotations

import numpy as np
import pytest

from stemlink.errors import PresetError
from stemlink.paths import PROJECT_ROOT
from stemlink.plugin_host.fx import apply_chain, build_chain, parse_fx
from stemlink.plugin_host.presets import list_presets, load_preset, parse_preset


def test_shipped_presets_are_valid(monkeypatch):
    monkeypatch.setenv("STEMLINK_PRESETS", str(PROJECT_ROOT / "presets"))
    presets = dict(list_presets())
    for name in ("separate-msdm", "accompany-msdm", "generate-msdm", "score-cocola"):
        assert not isinstance(presets[name], PresetError), presets[name]
    acc = presets["accompany-msdm"]
    assert (acc.task, acc.model, acc.candidates, acc.stems) == ("accompany", "msdm-small", 4, ("piano",))
    assert [f.type for f in acc.fx] == ["HighpassFilter", "Limiter"]


@pytest.mark.parametrize(
    "data,field,allowed",
    [
        ({"task": "dance"}, "task", "separate"),
        ({}, "task", "separate"),
        ({"task": "separate", "colour": "red"}, "colour", "task"),
        ({"task": "separate", "seed": "1"}, "seed", "integer"),
        ({"task": "separate", "seed": -1}, "seed", "integer"),
        ({"task": "separate", "candidates": 4}, "candidates", "accompany"),
        ({"task": "accompany", "candidates": 99}, "candidates", "1..16"),
        ({"task": "separate", "stems": "piano"}, "stems", "list"),
        ({"task": "separate", "format": "mp3"}, "format", "float32"),
        ({"task": "separate", "on_exists": "clobber"}, "on_exists", "number"),
        ({"task": "separate", "output": "{track}_{colour}.wav"}, "output", "{stem}"),
        ({"task": "separate", "output": "{track}.wav"}, "output", "{stem}"),
        ({"task": "separate", "output": "../{stem}.wav"}, "output", ".wav"),
        ({"task": "separate", "params": {"steps": [1, 2]}}, "params.steps", "scalar"),
        ({"task": "separate", "fx": [{"type": "Flanger9000"}]}, "fx[0].type", "Compressor"),
        ({"task": "separate", "fx": [{"type": "Compressor", "treshold_db": -3}]}, "fx[0].treshold_db", "threshold_db"),
        ({"task": "separate", "fx": [{"type": "vst3", "path": "x.dll"}]}, "fx[0].path", ".vst3"),
        ({"task": "separate", "fx": {"type": "Gain"}}, "fx", "list"),
        ({"task": "separate", "text": "piano"}, "text", "accompany"),
        ({"task": "accompany", "text": 3}, "text", "string"),
        ({"task": "accompany", "text": "x" * 201}, "text", "at most 200"),
        ({"task": "score", "reference": "r.wav"}, "reference", "accompany"),
    ],
)
def test_invalid_preset_names_field_and_allowed_values(data, field, allowed):
    with pytest.raises(PresetError) as info:
        parse_preset(data, name="bad")
    assert info.value.field == field
    assert allowed in info.value.message


def test_load_by_name_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMLINK_PRESETS", str(tmp_path))
    (tmp_path / "mine.toml").write_text('task = "separate"\nseed = 3\n[params]\nsteps = 5\n')
    (tmp_path / "broken.toml").write_text('task = "separate"\nseed = = 3\n')
    assert load_preset("mine").seed == 3 and load_preset("mine").params == {"steps": 5}
    with pytest.raises(PresetError, match="available: broken, mine"):
        load_preset("nope")
    with pytest.raises(PresetError, match="TOML"):
        load_preset("broken")
    assert isinstance(dict(list_presets())["broken"], PresetError)


def test_overrides_are_revalidated():
    preset = parse_preset({"task": "accompany", "candidates": 2})
    assert preset.with_overrides(seed=9, candidates=None).seed == 9
    with pytest.raises(PresetError, match="candidates"):
        preset.with_overrides(candidates=0)


def test_fx_chain_runs_and_keeps_length():
    specs = parse_fx([{"type": "Gain", "gain_db": -6.0}, {"type": "Reverb", "room_size": 0.5}])
    board = build_chain(specs)
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 10000))).astype(np.float32)
    y = apply_chain(board, x, 44100)
    assert y.shape == x.shape and y.dtype == np.float32
    gain_only = apply_chain(build_chain(parse_fx([{"type": "Gain", "gain_db": -6.0}])), x, 44100)
    np.testing.assert_allclose(gain_only, x * 10 ** (-6 / 20), rtol=1e-4, atol=1e-7)


def test_missing_vst3_is_a_preset_error(tmp_path):
    with pytest.raises(PresetError, match="not found"):
        build_chain(parse_fx([{"type": "vst3", "path": str(tmp_path / "none.vst3")}]))


@pytest.mark.parametrize("name", ["separate-msdm", "accompany-msdm", "generate-msdm"])
def test_shipped_msdm_presets_pass_the_model_validation(name, monkeypatch):
    msdm = pytest.importorskip("stemlink.engine.models.msdm")
    monkeypatch.setenv("STEMLINK_PRESETS", str(PROJECT_ROOT / "presets"))
    preset = load_preset(name)
    msdm.parse_msdm_params(dict(preset.params), model=preset.model)


def test_shipped_riff_preset_passes_the_model_validation(monkeypatch):
    from stemlink.engine.models.riff import RULES, RiffParams
    from stemlink.engine.params import parse_typed

    monkeypatch.setenv("STEMLINK_PRESETS", str(PROJECT_ROOT / "presets"))
    preset = load_preset("riff-piano")
    assert (preset.task, preset.model, preset.text) == ("accompany", "riff-small", "piano, keys")
    assert parse_typed(RiffParams, RULES, dict(preset.params), model="riff-small").steps == 30
