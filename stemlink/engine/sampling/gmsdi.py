"""Generalized Multi-Source Diffusion Inference (thesis section 6.4): every MSDM task from one score
model over mixtures conditioned on tag sets, S(y, z, sigma).

    den = tagged_denoiser(net, tags, scale=3.0, negative=None)     # (B, K, T): source k under tags[k]
    x = sample_dirac(den, x, sigmas, mixture=y)                     # GMSDI Separator, eq. 6.16

`net(x (N, 1, T), sigma (N,), z (N, V)) -> (N, 1, T)` is the exported EDM denoiser. A source k is
denoised as a mixture whose tags are z_k (eq. 6.8); a sub-mix of sources as a mixture whose tags
are the union. Embedding scale w (classifier-free guidance) and negative prompts combine two
evaluations: D = D(z_neg) + w (D(z) - D(z_neg)), z_neg the all-zero (dropped) prompt unless a
negative prompt is given for that source.

Samplers keep the project's one signature `sampler(denoiser, x, sigmas, *, generator, callback, **options)`:
- separator: `sample_dirac` with `tagged_denoiser` over the K sources, the constrained one last (eq. 6.16);
- extractor: `sample_dirac` over two sources, the stem (z_k) and its complement (union of the
  others' tags) (eq. 6.17);
- `sample_gmsdi_generate`: total generation, the sources and their mixture y in parallel, coupled by
  Gaussian likelihoods of widths gamma_x sigma and gamma_y sigma (eq. 6.13; gamma = inf: uncoupled);
- `sample_gmsdi_partial`: accompaniment, known sources (their sum, the context) noised at each level,
  coupling through alpha * context + beta * sum(generated) (eq. 6.15).
In the two generators the last channel of x is the mixture y.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from stemlink.engine.sampling.samplers import Callback, Denoiser, _noise, _ode_derivative, _run

TagNet = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def tagged_denoiser(net: TagNet, tags: torch.Tensor, *, scale: float = 1.0, negative: torch.Tensor | None = None) -> Denoiser:
    """tags (K, V): source k's tag set; `negative` (K, V) or None. -> denoiser over (B, K, T)."""
    k_sources = tags.shape[0]
    guided = scale != 1.0 or negative is not None
    base = torch.zeros_like(tags) if negative is None else negative.to(tags.dtype)

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        b, k, t = x.shape
        if k != k_sources:
            raise ValueError(f"x has {k} sources, the tags {k_sources}")
        flat = x.reshape(b * k, 1, t).contiguous()
        s = sigma.repeat_interleave(k).contiguous()
        z = tags.repeat(b, 1)
        if not guided:
            return net(flat, s, z).reshape(b, k, t)
        both = net(torch.cat([flat, flat]), torch.cat([s, s]), torch.cat([z, base.repeat(b, 1)]))
        cond, uncond = both.chunk(2)
        return (uncond + scale * (cond - uncond)).reshape(b, k, t)

    return denoise


def _coupling(gamma: float, sigma: float) -> float:
    """1 / (gamma^2 sigma): the likelihood term's weight in the ODE derivative (0 for gamma = inf)."""
    return 0.0 if math.isinf(gamma) else 1.0 / (gamma**2 * sigma)


def _coupled(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    blend: Callable[[torch.Tensor, float], torch.Tensor],
    gamma_x: float,
    gamma_y: float,
    options: dict,
) -> torch.Tensor:
    """The generators' shared ODE: x's last channel is the mixture y; `blend(z, sigma)` is what y
    should equal (B, 1, T). d_x = (x - D_x) / sigma - (y - blend) / (gamma_x^2 sigma);
    d_y = (y - D_y) / sigma + (y - blend) / (gamma_y^2 sigma)."""

    def derivative(z: torch.Tensor, sigma: float) -> torch.Tensor:
        d = _ode_derivative(denoiser, z, sigma)
        residual = z[:, -1:] - blend(z, sigma)
        d[:, :-1] = d[:, :-1] - residual * _coupling(gamma_x, sigma)
        d[:, -1:] = d[:, -1:] + residual * _coupling(gamma_y, sigma)
        return d

    return _run(x, sigmas, derivative, lambda z, s: z, **options)


def sample_gmsdi_generate(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    gamma_x: float = math.inf,
    gamma_y: float = math.inf,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 0.0,
    corrector_steps: int = 0,
    heun: bool = False,
) -> torch.Tensor:
    """x (B, K + 1, T): K sources and, last, their mixture y (denoised under the union of tags),
    coupled to sum(x) (eq. 6.13; gamma = inf: no coupling)."""
    options = dict(generator=generator, callback=callback, s_churn=s_churn, corrector_steps=corrector_steps, heun=heun)
    return _coupled(denoiser, x, sigmas, lambda z, s: z[:, :-1].sum(dim=1, keepdim=True), gamma_x, gamma_y, options)


def sample_gmsdi_partial(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    context: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma_x: float = 1.0,
    gamma_y: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 0.0,
    corrector_steps: int = 0,
    heun: bool = False,
) -> torch.Tensor:
    """x (B, J + 1, T): the J parts to generate and, last, the mixture y (under all tags); `context`
    (B, T) or (B, 1, T): the known sources' sum, drawn from its perturbation kernel at each level;
    y is coupled to alpha * context + beta * sum(parts) (eq. 6.15)."""
    c = context[:, None, :] if context.dim() == 2 else context

    def blend(z: torch.Tensor, sigma: float) -> torch.Tensor:
        return alpha * (c + _noise(c, generator) * sigma) + beta * z[:, :-1].sum(dim=1, keepdim=True)

    options = dict(generator=generator, callback=callback, s_churn=s_churn, corrector_steps=corrector_steps, heun=heun)
    return _coupled(denoiser, x, sigmas, blend, gamma_x, gamma_y, options)
