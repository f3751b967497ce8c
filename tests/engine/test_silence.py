"""Silence in, silence out: separation of silent windows never reaches the model (apply layer)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stemlink.contract import TaskRequest
from stemlink.engine import apply
from stemlink.engine.models.msdm import MSDMModel
from stemlink.engine.tasks import run_task
from tests.engine.msdm_fixtures import GaussianDenoiser, debug_spec


def msdm() -> MSDMModel:
    """A diffusion separator with the exact denoiser of iid Gaussian stems (std 0.2): on
    silence its stems are loud noise that cancels, as MSDM's are."""
    spec = replace(debug_spec(defaults={"steps": 4}), tasks=("separate", "extract", "remove", "accompany", "generate"))
    return MSDMModel(spec, GaussianDenoiser(0.2))


def separate(x: np.ndarray, rate: int = 44100, task: str = "separate", **kw) -> dict[str, np.ndarray]:
    return run_task(msdm(), TaskRequest(task=task, sample_rate=rate, inputs={"mix": x}, **kw)).stems


def test_the_sampler_alone_turns_silence_into_cancelling_noise(monkeypatch):
    """What the gate prevents (the -46 dBFS stems of issue 10): without it, stems are loud."""
    monkeypatch.setattr(apply, "SILENCE_PEAK", 0.0)
    stems = separate(np.zeros((2, 3000), np.float32))
    assert max(float(np.abs(s).max()) for s in stems.values()) > 1e-3
    assert np.abs(sum(stems.values())).max() < 1e-5


@pytest.mark.parametrize("rate,channels,frames", [(44100, 2, 3000), (48000, 6, 20011), (8000, 1, 64), (1000, 2, 500)])
def test_digital_silence_gives_exact_zeros(rate, channels, frames):
    stems = separate(np.zeros((channels, frames), np.float32), rate)
    assert sorted(stems) == ["bass", "drums", "guitar", "piano"]
    for s in stems.values():
        assert s.shape == (channels, frames) and s.dtype == np.float32
        assert not s.any()


@pytest.mark.parametrize("task,stems,names", [("extract", ("bass",), ["bass", "residual"]), ("remove", ("drums",), ["mix"])])
def test_extract_and_remove_of_silence_are_silent(task, stems, names):
    out = separate(np.zeros((2, 2000), np.float32), task=task, stems=stems)
    assert sorted(out) == names and not any(s.any() for s in out.values())


def test_near_silence_stays_near_silent_and_sums_to_the_mix():
    x = (10 ** (-95 / 20) * np.random.default_rng(0).standard_normal((2, 4000))).astype(np.float32)  # -95 dBFS RMS
    stems = separate(x)
    peak = float(np.abs(x).max())
    assert all(float(np.abs(s).max()) <= peak * 1.01 for s in stems.values())
    assert np.abs(sum(stems.values()) - x).max() < 1e-9


def test_silent_channel_next_to_a_loud_one():
    x = np.zeros((2, 3000), np.float32)
    x[0] = 0.1 * np.random.default_rng(1).standard_normal(3000)
    stems = separate(x)
    assert all(not s[1].any() for s in stems.values())  # the silent channel
    assert max(float(np.abs(s[0]).max()) for s in stems.values()) > 1e-3
    assert np.abs(sum(stems.values()) - x).max() < 1e-5


def test_audible_input_is_unchanged_by_the_gate(monkeypatch):
    x = (0.1 * np.random.default_rng(2).standard_normal((2, 3000))).astype(np.float32)
    gated = separate(x)
    monkeypatch.setattr(apply, "SILENCE_PEAK", 0.0)
    ungated = separate(x)
    for name in gated:
        np.testing.assert_array_equal(gated[name], ungated[name])


def test_accompany_of_silence_still_generates():
    """The gate is for separation only: a silent context is a valid prompt."""
    req = TaskRequest(task="accompany", sample_rate=8000, inputs={"context": np.zeros((1, 2000), np.float32)}, context_stems=("bass",))
    out = run_task(msdm(), req).stems
    assert max(float(np.abs(s).max()) for s in out.values()) > 1e-3


def test_a_quiet_mix_is_separated_as_if_it_were_at_the_model_level():
    """Below `SEPARATION_RMS` the model sees the window raised to that level: the stems of a
    mix 40 dB down are the stems of the mix, 40 dB down (not loud noise that cancels)."""
    x = (0.05 * np.random.default_rng(3).standard_normal((1, 4000))).astype(np.float32)  # below -20 dBFS RMS
    loud, quiet = separate(x), separate(x * np.float32(0.01))
    for name in loud:
        np.testing.assert_allclose(quiet[name] * 100, loud[name], rtol=1e-3, atol=1e-4)


def test_without_the_gain_a_quiet_mix_gives_stems_louder_than_itself(monkeypatch):
    monkeypatch.setattr(apply, "SEPARATION_RMS", 0.0)
    x = (0.0005 * np.random.default_rng(3).standard_normal((1, 4000))).astype(np.float32)  # -66 dBFS RMS
    assert max(float(np.abs(s).max()) for s in separate(x).values()) > 10 * float(np.abs(x).max())
