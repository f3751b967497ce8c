"""Warm-started diffusion refinement of a separator's stems (the "Demucs + Gibbs" idea of the
MSDM thesis, issue 12 part 2), as a measurement.

    refine(prior, stems (B, S, T), mix (B, T), rate, *, steps, sigma_start, generator) -> (B, S, T)

The separator's stems are brought to the prior's rate (MSDM: 8 kHz), noised to `sigma_start`
and run through the symmetric Dirac sampler (`sample_dirac`, stems constrained to sum to the
mix at the prior's rate) from `sigma_start` down to 1e-4 in `steps` steps with one corrector
step. Only the band the prior covers is replaced: out = stems - up(down(stems)) + up(refined),
so the stems still sum to the mix exactly and everything above the prior's Nyquist stays the
separator's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stemlink.audio.resample import resample_array
from stemlink.engine.sampling import karras_sigmas, sample_dirac


def _resample(x: torch.Tensor, rate: int, to: int, frames: int) -> torch.Tensor:
    """(..., T) -> (..., frames), the project's resampler (the one the apply layer uses)."""
    flat = x.reshape(-1, x.shape[-1]).numpy()
    out = np.stack([resample_array(row[None], rate, to, frames)[0] for row in flat])
    return torch.from_numpy(out.astype(np.float32)).reshape(*x.shape[:-1], frames)


def refine(
    prior: Any,
    stems: torch.Tensor,
    mix: torch.Tensor,
    rate: int,
    *,
    steps: int,
    sigma_start: float,
    generator: torch.Generator,
    corrector_steps: int = 1,
) -> torch.Tensor:
    """Refine (B, S, T) separator stems of (B, T) mixes at `rate` with an MSDM `prior` model."""
    t = stems.shape[-1]
    low_frames = int(round(t * prior.sample_rate / rate))
    padded = -(-low_frames // prior.hop) * prior.hop  # the denoiser takes multiples of its hop
    low = _resample(stems, rate, prior.sample_rate, low_frames)
    y = _resample(mix, rate, prior.sample_rate, low_frames)
    pad = padded - low_frames
    low_p, y_p = torch.nn.functional.pad(low, (0, pad)), torch.nn.functional.pad(y, (0, pad))
    sigmas = karras_sigmas(steps, 1e-4, sigma_start)
    x = low_p + sigma_start * torch.randn(low_p.shape, generator=generator)
    with torch.no_grad():
        refined = sample_dirac(
            prior._denoise,
            x,
            sigmas,
            mixture=y_p,
            symmetric=True,
            generator=generator,
            callback=None,
            s_churn=0.0,
            corrector_steps=corrector_steps,
        )[..., :low_frames]
    return stems - _resample(low, prior.sample_rate, rate, t) + _resample(refined, prior.sample_rate, rate, t)
