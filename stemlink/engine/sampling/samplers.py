"""Diffusion samplers for multi-source models (MSDM), k-diffusion style.

Every sampler: `sampler(denoiser, x, sigmas, *, generator, callback=None, **options) -> x`

    denoiser(x (B, N, T), sigma (B,)) -> (B, N, T)   D(x; sigma), the preconditioned denoiser
    x:       (B, N, T) start sample, normally randn * sigmas[0]
    sigmas:  (I + 1,) decreasing noise levels ending with 0 (see `schedules`)
    callback(done, total) after every denoiser call; raising in it (e.g. `Cancelled`) stops

Shared step (Algorithm 3 of the MSDM paper, generalised): for each level sigma_i, R + 1
times: "churn" the sample up to sigma_hat = sigma_i (1 + alpha), alpha = min(S_churn / I,
sqrt(2) - 1); project it onto the constraint; Euler (or Heun) step to sigma_{i+1} with the
ODE derivative d = (x - D) / sigma (+ likelihood terms); if a correction remains, add noise
back up to sigma_i. Samplers differ only in their projection and derivative:

- `sample_generate`: total generation (no constraint).
- `sample_inpaint`: partial generation; known stems are replaced by noised copies of their
  true value at every evaluation and by the exact value at the end.
- `sample_dirac`: Dirac likelihood; stems in `subset` must sum to `mixture`; the last stem of
  the subset is constrained to mixture minus the others, the others get d_m - d_last. With
  `subset` = all stems this is MSDM separation; the result sums to the mixture exactly.
  `symmetric=True`: the same constraint without a designated stem (stable with few steps).
- `sample_gaussian`: Gaussian likelihood N(mixture | sum x_subset, (gamma sigma)^2) for comparison.
- `sample_consistency`: multistep sampling of a consistency model (the denoiser is f(x, sigma) -> x0),
  with optional held entries (`known`, `mask`) for continuation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, int], None] | None
Project = Callable[[torch.Tensor, float], torch.Tensor]
Derivative = Callable[[torch.Tensor, float], torch.Tensor]


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _ode_derivative(denoiser: Denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    sig = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    return (x - denoiser(x, sig)) / sigma


def _run(
    x: torch.Tensor,
    sigmas: torch.Tensor,
    derivative: Derivative,
    project: Project,
    *,
    generator: torch.Generator | None,
    callback: Callback,
    s_churn: float,
    corrector_steps: int,
    heun: bool,
) -> torch.Tensor:
    if corrector_steps < 0:
        raise ValueError(f"corrector_steps must be >= 0, got {corrector_steps}")
    levels = [float(s) for s in sigmas]
    steps = len(levels) - 1
    alpha = min(s_churn / steps, math.sqrt(2) - 1) if s_churn > 0 else 0.0
    total = sum((corrector_steps + 1) * (2 if heun and levels[i + 1] > 0 else 1) for i in range(steps))
    done = 0

    def evaluate(z: torch.Tensor, sigma: float) -> torch.Tensor:
        nonlocal done
        d = derivative(z, sigma)
        done += 1
        if callback is not None:
            callback(done, total)
        return d

    for i in range(steps):
        sigma, sigma_next = levels[i], levels[i + 1]
        for r in range(corrector_steps + 1):
            sigma_hat = sigma * (1 + alpha)
            if alpha > 0:
                x = x + _noise(x, generator) * math.sqrt(sigma_hat**2 - sigma**2)
            x = project(x, sigma_hat)
            d = evaluate(x, sigma_hat)
            x_next = x + (sigma_next - sigma_hat) * d
            if heun and sigma_next > 0:
                d2 = evaluate(project(x_next, sigma_next), sigma_next)
                x_next = x + (sigma_next - sigma_hat) * (d + d2) / 2
            x = project(x_next, sigma_next)
            if r < corrector_steps:
                x = x + _noise(x, generator) * math.sqrt(max(sigma**2 - sigma_next**2, 0.0))
    return x


def sample_generate(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 0.0,
    corrector_steps: int = 0,
    heun: bool = False,
) -> torch.Tensor:
    """Total generation: (B, N, T) noise -> (B, N, T) stems."""
    return _run(
        x,
        sigmas,
        lambda z, s: _ode_derivative(denoiser, z, s),
        lambda z, s: z,
        generator=generator,
        callback=callback,
        s_churn=s_churn,
        corrector_steps=corrector_steps,
        heun=heun,
    )


def sample_inpaint(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    known: torch.Tensor,
    mask: Sequence[bool] | torch.Tensor,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 0.0,
    corrector_steps: int = 0,
    heun: bool = False,
) -> torch.Tensor:
    """Partial generation. known: (B, N, T) true values, used where `mask` is True: a sequence of
    N booleans (whole stems) or a bool tensor broadcastable to x (any entries, e.g. the first
    frames of a window that continues the previous one); the result equals `known` there exactly."""
    if isinstance(mask, torch.Tensor):
        keep = mask.to(device=x.device, dtype=torch.bool)
        try:
            torch.broadcast_shapes(keep.shape, x.shape)
        except RuntimeError as exc:
            raise ValueError(f"mask of shape {tuple(keep.shape)} does not broadcast to x {tuple(x.shape)}") from exc
    else:
        keep = torch.as_tensor(list(mask), dtype=torch.bool, device=x.device)
        if keep.numel() != x.shape[1]:
            raise ValueError(f"mask has {keep.numel()} entries, x has {x.shape[1]} stems")
        keep = keep[None, :, None]

    def project(z: torch.Tensor, sigma: float) -> torch.Tensor:
        noisy = known + _noise(known, generator) * sigma if sigma > 0 else known
        return torch.where(keep, noisy, z)

    return _run(
        x,
        sigmas,
        lambda z, s: _ode_derivative(denoiser, z, s),
        project,
        generator=generator,
        callback=callback,
        s_churn=s_churn,
        corrector_steps=corrector_steps,
        heun=heun,
    )


def sample_consistency(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    sigma_min: float = 0.002,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1): `denoiser` is a consistency
    function f(x, sigma) -> x0. At each level of `sigmas` but the final 0: re-noise the current
    estimate to that level (not the first), evaluate f. With `known` and a bool `mask`
    (broadcastable to x), those entries are held at `known` (noised to each level, exact at the end)."""
    levels = [float(s) for s in sigmas if float(s) > 0]
    if not levels:
        raise ValueError("sigmas need at least one level above 0")
    keep = None if mask is None else mask.to(device=x.device, dtype=torch.bool)
    if (known is None) != (keep is None):
        raise ValueError("known and mask go together")

    def project(z: torch.Tensor, sigma: float) -> torch.Tensor:
        if keep is None or known is None:
            return z
        return torch.where(keep, known + _noise(known, generator) * sigma, z)

    estimate = x
    for i, sigma in enumerate(levels):
        z = x if i == 0 else estimate + _noise(estimate, generator) * math.sqrt(max(sigma**2 - sigma_min**2, 0.0))
        z = project(z, sigma)
        estimate = denoiser(z, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))
        if callback is not None:
            callback(i + 1, len(levels))
    return estimate if keep is None or known is None else torch.where(keep, known, estimate)


def _subset(subset: Sequence[int] | None, n: int) -> list[int]:
    idx = list(range(n)) if subset is None else [int(i) for i in subset]
    if len(idx) < 1 or len(set(idx)) != len(idx) or not all(0 <= i < n for i in idx):
        raise ValueError(f"subset must be distinct stem indices in [0, {n}), got {idx}")
    return idx


def sample_dirac(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    mixture: torch.Tensor,
    subset: Sequence[int] | None = None,
    symmetric: bool = False,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 20.0,
    corrector_steps: int = 1,
    heun: bool = False,
) -> torch.Tensor:
    """MSDM 'Dirac' sampler. mixture: (B, T) = sum of the `subset` stems (default: all).
    Returns (B, N, T) whose subset stems sum to `mixture` (up to float rounding).

    symmetric=False: Algorithm 3 (the last subset stem is y minus the others; the others
    follow d_m - d_last). Its Euler step multiplies the constrained stem's noise by
    (1 - K h), h = (sigma_hat - sigma_next) / sigma_hat, K = len(subset): unstable for
    h > 2 / K, i.e. with few steps.
    symmetric=True: the same Dirac constraint with no designated stem: the derivative is
    projected orthogonally onto sum(d_subset) = 0 (d_n - mean(d)) and the residual
    y - sum(x_subset) is shared equally (the gamma -> 0 limit of the Gaussian likelihood);
    every stem's noise shrinks by (1 - h), stable at any step count.
    """
    idx = _subset(subset, x.shape[1])
    free, last = idx[:-1], idx[-1]
    y = mixture[:, None, :] if mixture.dim() == 2 else mixture

    def project(z: torch.Tensor, sigma: float) -> torch.Tensor:
        z = z.clone()
        if symmetric:
            z[:, idx] = z[:, idx] + (y - z[:, idx].sum(dim=1, keepdim=True)) / len(idx)
        else:
            z[:, last : last + 1] = y - z[:, free].sum(dim=1, keepdim=True)
        return z

    def derivative(z: torch.Tensor, sigma: float) -> torch.Tensor:
        d = _ode_derivative(denoiser, z, sigma)
        if symmetric:
            d[:, idx] = d[:, idx] - d[:, idx].mean(dim=1, keepdim=True)
        else:
            d[:, free] = d[:, free] - d[:, last : last + 1]
            d[:, last] = 0.0
        return d

    return _run(
        project(x, float(sigmas[0])),
        sigmas,
        derivative,
        project,
        generator=generator,
        callback=callback,
        s_churn=s_churn,
        corrector_steps=corrector_steps,
        heun=heun,
    )


def sample_gaussian(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    mixture: torch.Tensor,
    subset: Sequence[int] | None = None,
    gamma: float = 2.0,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    s_churn: float = 20.0,
    corrector_steps: int = 1,
    heun: bool = False,
) -> torch.Tensor:
    """Gaussian-likelihood separation (NCSN-BASIS style), likelihood std gamma * sigma.

    Posterior ODE derivative: d_n = (x_n - D_n) / sigma - (mixture - sum_subset x) / (gamma^2 sigma)
    for n in the subset. gamma >= sqrt(len(subset) / 2) keeps the final step stable;
    the default 2.0 makes the last Euler step an exact projection for 4 stems.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    idx = _subset(subset, x.shape[1])
    y = mixture[:, None, :] if mixture.dim() == 2 else mixture

    def derivative(z: torch.Tensor, sigma: float) -> torch.Tensor:
        d = _ode_derivative(denoiser, z, sigma)
        residual = y - z[:, idx].sum(dim=1, keepdim=True)
        d[:, idx] = d[:, idx] - residual / (gamma**2 * sigma)
        return d

    return _run(
        x,
        sigmas,
        derivative,
        lambda z, s: z,
        generator=generator,
        callback=callback,
        s_churn=s_churn,
        corrector_steps=corrector_steps,
        heun=heun,
    )
