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


def guided(
    net: ConditionalDenoiser,
    cond: Sequence[torch.Tensor],
    uncond: Sequence[torch.Tensor],
    scale: float,
    also: Sequence[tuple[Sequence[torch.Tensor], float]] = (),
) -> Denoiser:
    """`also`: further (inputs, weight) terms, each adding weight * (D(cond) - D(inputs)): guidance
    toward one condition alone, e.g. the inputs with the context kept and the embedding dropped
    (multi-condition guidance). Every evaluation runs in one batched call."""
    also = [(inputs, w) for inputs, w in also if w != 0.0]
    for inputs, _ in (*also, (uncond, 0.0)):
        if len(inputs) != len(cond):
            raise ValueError(f"cond and the other branches need the same inputs, got {len(cond)} and {len(inputs)}")
    if scale == 1.0 and not also:
        return lambda x, sigma: net(x, sigma, *cond)
    if scale == 0.0 and not also:
        return lambda x, sigma: net(x, sigma, *uncond)
    branches = [cond, uncond, *(inputs for inputs, _ in also)]
    stacked = [torch.cat(parts) for parts in zip(*branches, strict=True)]
    n = len(branches)

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d_cond, d_uncond, *d_also = net(torch.cat([x] * n), torch.cat([sigma] * n), *stacked).chunk(n)
        out = d_uncond + scale * (d_cond - d_uncond)
        for d, (_, w) in zip(d_also, also, strict=True):
            out = out + w * (d_cond - d)
        return out

    return denoise
