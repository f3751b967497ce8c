"""Diffusion refinement of separator stems: stems still sum to the mix, only the prior's band
changes, the same seed gives the same result."""

from __future__ import annotations

import numpy as np
import torch

from stemlink.engine.models.msdm import MSDMModel
from stemlink.lab.eval.refine import refine
from tests.engine.msdm_fixtures import DEBUG_CONFIG, debug_spec, tiny_denoiser


def test_refined_stems_sum_to_the_mix_and_keep_the_high_band():
    prior = MSDMModel(debug_spec(), tiny_denoiser())
    rate, t = 44100, 11025
    g = torch.Generator().manual_seed(0)
    stems = torch.randn(2, len(DEBUG_CONFIG.stems), t, generator=g) * 0.05
    mix = stems.sum(1)
    out = refine(prior, stems, mix, rate, steps=2, sigma_start=0.02, generator=torch.Generator().manual_seed(1))
    again = refine(prior, stems, mix, rate, steps=2, sigma_start=0.02, generator=torch.Generator().manual_seed(1))
    assert out.shape == stems.shape and torch.equal(out, again)
    assert float((out.sum(1) - mix).abs().max()) < 1e-5
    change = (out - stems)[0, 0].numpy()
    assert float(np.abs(change).max()) > 1e-4  # the prior did change the stems
    spectrum = np.abs(np.fft.rfft(change))
    freqs = np.fft.rfftfreq(t, 1 / rate)
    low, high = spectrum[freqs < 0.4 * prior.sample_rate].mean(), spectrum[freqs > prior.sample_rate].mean()
    assert high < 0.01 * low  # above the prior's Nyquist the separator's stems are kept
