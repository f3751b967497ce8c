"""Mixture consistency: the residual of a band-limited separator goes to the stems it belongs to."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from stemlink.audio.resample import resample_array
from stemlink.engine.residual import ResidualSplit

HOST, MODEL = 44100, 8000


def _si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref, est = ref.ravel().astype(np.float64), est.ravel().astype(np.float64)
    alpha = est @ ref / (ref @ ref)
    target = alpha * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def _song(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """(4, 2, n) stereo stems at 44.1 kHz: bass (sines), drums (kick + broadband hats),
    guitar (bright sawtooth chords), piano (decaying harmonic tones)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * HOST)
    t = np.arange(n) / HOST
    beat = t % 0.25
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * np.exp(-3 * (t % 0.5))
    hats = rng.standard_normal(n) * np.exp(-60 * beat) * 0.2
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-25 * (t % 0.5)) * 0.5
    drums = hats * (t % 0.5 >= 0.25) + kick
    saw = lambda f: 2 * ((t * f) % 1.0) - 1  # noqa: E731
    guitar = 0.08 * (saw(196) + saw(247) + saw(294)) * (t % 1.0 < 0.6)
    piano = sum(0.1 / k * np.sin(2 * np.pi * 440 * k * t) for k in range(1, 6)) * np.exp(-2 * (t % 1.0))
    stems = np.stack([bass, drums, guitar, piano]).astype(np.float32)
    return np.stack([stems, 0.8 * stems], axis=1)  # (4, 2, n)


def _band_limited(stems: np.ndarray) -> np.ndarray:
    """What a perfect 8 kHz separator returns at 44.1 kHz: every stem below 4 kHz only."""
    n = stems.shape[-1]
    return np.stack([resample_array(resample_array(s, HOST, MODEL), MODEL, HOST, frames=n) for s in stems])


def test_stems_sum_to_the_mix_and_shares_sum_to_one():
    truth = _song()
    mix = truth.sum(axis=0)
    estimate = _band_limited(truth)
    for mode in ("band", "equal"):
        out = ResidualSplit(4, 2, HOST, MODEL, mode)(estimate, mix)
        assert out.shape == truth.shape and out.dtype == np.float32
        assert np.max(np.abs(out.sum(axis=0) - mix)) < 1e-5
    w = ResidualSplit(4, 2, HOST, MODEL).weights(estimate)
    assert np.allclose(w.sum(axis=0), 1.0) and w.min() >= 0.0


def test_block_boundaries_do_not_change_the_result():
    truth = _song(seconds=1.5, seed=1)
    mix = truth.sum(axis=0)
    estimate = _band_limited(truth)
    whole = ResidualSplit(4, 2, HOST, MODEL)(estimate, mix)
    split = ResidualSplit(4, 2, HOST, MODEL)
    cuts = [0, 1, 777, 4096, 20000, 20001, mix.shape[-1]]
    parts = [split(estimate[..., a:b], mix[..., a:b]) for a, b in pairwise(cuts)]
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), whole, atol=1e-6)


def test_band_split_gives_the_high_band_to_the_stems_it_belongs_to():
    """With a perfect 8 kHz separator, the band above 4 kHz is the whole error. Sharing it by
    top-octave energy must beat sharing it equally by a wide margin on the bright stems."""
    truth = _song(seed=2)
    mix = truth.sum(axis=0)
    estimate = _band_limited(truth)
    band = ResidualSplit(4, 2, HOST, MODEL, "band")(estimate, mix)
    equal = ResidualSplit(4, 2, HOST, MODEL, "equal")(estimate, mix)
    sdr_band = [_si_sdr(truth[s], band[s]) for s in range(4)]
    sdr_equal = [_si_sdr(truth[s], equal[s]) for s in range(4)]
    assert np.mean(sdr_band) > np.mean(sdr_equal) + 3.0, (sdr_band, sdr_equal)
    for s in range(4):  # no stem gets worse than equal sharing by more than a little
        assert sdr_band[s] > sdr_equal[s] - 0.5, (s, sdr_band, sdr_equal)


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="band"):
        ResidualSplit(4, 2, HOST, MODEL, "loudest")
