"""Classifier-free guidance: a conditional denoiser with extra inputs -> the samplers' plain
`denoiser(x, sigma)`.

    denoiser = guided(net, cond=(context, embedding, ones, ones), uncond=(context, embedding, zeros, zeros), scale=3.0)
    x = sample_generate(denoiser, x, sigmas, generator=g)

D_w = D(x, sigma, *uncond) + scale * (D(x, sigma, *cond) - D(x, sigma, *uncond)), both halves in one
batched call; scale 1 is the conditional model alone (one call), scale 0 the unconditional one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from stemlink.engine.sampling.samplers import Denoiser

ConditionalDenoiser = Callable[..., torch.Tensor]  # (x (B, ...), sigma (B,), *cond) -> (B, ...)


def guided(net: ConditionalDenoiser, cond: Sequence[torch.Tensor], uncond: Sequence[torch.Tensor], scale: float) -> Denoiser:
    if len(cond) != len(uncond):
        raise ValueError(f"cond and uncond need the same inputs, got {len(cond)} and {len(uncond)}")
    if scale == 1.0:
        return lambda x, sigma: net(x, sigma, *cond)
    if scale == 0.0:
        return lambda x, sigma: net(x, sigma, *uncond)
    both = [torch.cat([c, u]) for c, u in zip(cond, uncond, strict=True)]

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d_cond, d_uncond = net(torch.cat([x, x]), torch.cat([sigma, sigma]), *both).chunk(2)
        return d_uncond + scale * (d_cond - d_uncond)

    return denoise
