"""Consistency model around any backbone (Song et al. 2023; improved consistency training, Song and
Dhariwal 2023), the C-DiT of the Diff-A-Riff family (issue 14 part 5).

    f(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma), *cond)
    c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2)    c_out = sd (sigma - sigma_min) / sqrt(sigma^2 + sd^2)
    c_in = 1 / sqrt(sigma^2 + sd^2)                   c_noise = ln(sigma) / 4

so f(x; sigma_min) = x exactly; the backbone and its inputs are those of `EDMDenoiser`, so one
exported graph signature serves both.

Training (`loss`), with continuous noise levels and an exponential schedule for the consistency
step, as the paper does after Music2Latent: the student level sigma is drawn log-normally
(ln sigma ~ N(p_mean, p_std^2), clipped to [sigma_min, sigma_max]); the teacher level is one step
lower in Karras' rho-space (u = sigma^(1/rho)), the step shrinking exponentially from
`step_start` to `step_end` of the u-range over the schedule (iCT's 10 -> 1280 discretisation
doubling, made continuous); the teacher is the same network without gradient (iCT drops the EMA
teacher); distance: pseudo-Huber with c = 0.00054 sqrt(dim), weighted by 1 / (sigma - sigma_teacher).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConsistencyDenoiser(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        sigma_data: float = 0.5,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        clamp: float | None = 1.0,
        p_mean: float = -1.1,
        p_std: float = 2.0,
        rho: float = 7.0,
        step_start: float = 1 / 10,
        step_end: float = 1 / 1280,
    ):
        super().__init__()
        self.backbone = backbone
        self.sigma_data, self.sigma_min, self.sigma_max = float(sigma_data), float(sigma_min), float(sigma_max)
        self.clamp = clamp
        self.p_mean, self.p_std, self.rho = float(p_mean), float(p_std), float(rho)
        self.step_start, self.step_end = float(step_start), float(step_end)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, *cond: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        sd2 = self.sigma_data**2
        s = sigma.to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
        c_skip = sd2 / ((s - self.sigma_min) ** 2 + sd2)
        c_out = self.sigma_data * (s - self.sigma_min) / (s**2 + sd2).sqrt()
        c_in = 1.0 / (s**2 + sd2).sqrt()
        out = c_skip * x + c_out * self.backbone(c_in * x, sigma.to(x.dtype).log() / 4, *cond)
        if clamp and self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        return out

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, sigma, *cond, clamp=True)

    def step_size(self, progress: float) -> float:
        """The consistency step (a fraction of the rho-space range) at `progress` in [0, 1] of the schedule."""
        p = min(max(progress, 0.0), 1.0)
        return self.step_start * (self.step_end / self.step_start) ** p

    def levels(
        self, batch: int, progress: float, *, generator: torch.Generator | None = None, device=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(student sigma, teacher sigma), both (B,), teacher < student, both in [sigma_min, sigma_max]."""
        inv = 1.0 / self.rho
        lo, hi = self.sigma_min**inv, self.sigma_max**inv
        z = torch.randn(batch, generator=generator, device=device)
        sigma = (z * self.p_std + self.p_mean).exp().clamp(self.sigma_min, self.sigma_max)
        u = sigma**inv
        u = u.clamp(min=lo + self.step_size(progress) * (hi - lo))  # room for one step below
        u_teacher = u - self.step_size(progress) * (hi - lo)
        return u**self.rho, u_teacher.clamp(min=lo) ** self.rho

    def loss(
        self, x0: torch.Tensor, noise: torch.Tensor, progress: float, *cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        sigma, sigma_teacher = self.levels(x0.shape[0], progress, generator=generator, device=x0.device)
        shape = (-1, *[1] * (x0.dim() - 1))
        student = self.denoise(x0 + sigma.reshape(shape) * noise, sigma, *cond, clamp=False)
        with torch.no_grad():
            teacher = self.denoise(x0 + sigma_teacher.reshape(shape) * noise, sigma_teacher, *cond, clamp=False)
        dim = x0[0].numel()
        c = 0.00054 * math.sqrt(dim)
        distance = ((student - teacher).pow(2).flatten(1).sum(1) + c**2).sqrt() - c
        weight = 1.0 / (sigma - sigma_teacher).clamp_min(1e-6)
        return (weight * distance).mean() / dim
