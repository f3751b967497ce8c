"""Noise schedules (pure functions) and diffusion samplers sharing one signature:
`sampler(denoiser, x, sigmas, *, generator, callback, **options) -> x`."""

from stemlink.engine.sampling.samplers import sample_consistency, sample_dirac, sample_gaussian, sample_generate, sample_inpaint
from stemlink.engine.sampling.schedules import karras_sigmas

__all__ = ["karras_sigmas", "sample_consistency", "sample_dirac", "sample_gaussian", "sample_generate", "sample_inpaint"]
