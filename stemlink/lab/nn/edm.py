"""EDM (Karras et al. 2022) preconditioning around any backbone, as in the MSDM paper's code.

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma))
    c_skip = sd^2 / (sigma^2 + sd^2)     c_out = sigma sd / sqrt(sigma^2 + sd^2)
    c_in = 1 / sqrt(sigma^2 + sd^2)      c_noise = ln(sigma) / 4

x: (B, N, T) stems (or latents, or (B, D) vectors), sigma: (B,) -> D: (B, N, T), clamped to [-clamp, clamp] at
inference. Conditioning inputs (`*cond`: a context, an embedding, ...) go to the backbone as
they are, unscaled: `backbone(c_in x, c_noise, *cond)`.
Training draws ln(sigma) ~ N(p_mean, p_std^2) and weights the squared error by
(sigma^2 + sd^2) / (sigma sd)^2.
"""

from __future__ import annotations

import torch
from torch import nn


class EDMDenoiser(nn.Module):
    """Preconditioned denoiser. `backbone(x (B,N,T), c_noise (B,), *cond) -> (B,N,T)`."""

    def __init__(self, backbone: nn.Module, sigma_data: float = 0.2, clamp: float | None = 1.0, p_mean: float = -3.0, p_std: float = 1.0):
        super().__init__()
        self.backbone = backbone
        self.sigma_data = float(sigma_data)
        self.clamp = clamp
        self.p_mean = float(p_mean)
        self.p_std = float(p_std)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, *cond: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """(B, N, T), (B,), conditioning -> (B, N, T) estimate of the clean stems."""
        sd2 = self.sigma_data**2
        s = sigma.to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
        c_skip = sd2 / (s**2 + sd2)
        c_out = s * self.sigma_data / (s**2 + sd2).sqrt()
        c_in = 1.0 / (s**2 + sd2).sqrt()
        c_noise = sigma.to(x.dtype).log() / 4
        out = c_skip * x + c_out * self.backbone(c_in * x, c_noise, *cond)
        if clamp and self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        return out

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, sigma, *cond, clamp=True)

    def sample_sigmas(self, batch: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Training noise levels: (B,) with ln(sigma) ~ N(p_mean, p_std^2)."""
        z = torch.randn(batch, generator=generator, device=device)
        return (z * self.p_std + self.p_mean).exp()

    def loss(self, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        """Weighted denoising score matching loss -> scalar.

        x0: (B, N, T) clean stems, sigma: (B,) noise levels, noise: (B, N, T) unit Gaussian.
        """
        s = sigma.reshape(-1, *[1] * (x0.dim() - 1))
        denoised = self.denoise(x0 + s * noise, sigma, *cond, clamp=False)
        weight = (s**2 + self.sigma_data**2) / (s * self.sigma_data) ** 2
        return (weight * (denoised - x0) ** 2).mean()
