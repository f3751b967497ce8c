"""`NoiseEmbedding`: a diffusion noise level c_noise (B,) -> (B, dim) conditioning vector,
sinusoidal features at log-spaced frequencies followed by an MLP (shared by the U-Net and the DiT)."""

from __future__ import annotations

import math

import torch
from torch import nn


class NoiseEmbedding(nn.Module):
    """c_noise (B,) -> (B, dim): sinusoidal features followed by an MLP."""

    freqs: torch.Tensor  # (features // 2,) buffer

    def __init__(self, dim: int, features: int = 64, max_freq: float = 1000.0):
        super().__init__()
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), features // 2))
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        angles = c_noise.float()[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))
