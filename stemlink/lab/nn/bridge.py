"""CLAP_beta, the modality-gap bridge of the Diff-A-Riff family (issue 14 part 4): a diffusion model
over CLAP audio embeddings conditioned on a CLAP text embedding, so a text prompt becomes an
audio embedding from the distribution the DiT was trained on (text -> bridge -> audio embedding
-> DiT), and, with the text dropped, an unconditional audio embedding (the paper's CLAP_A*).

    net = BridgeMLP(BridgeConfig(embed_dim=128))
    out = net(x (B, D), c_noise (B,), text (B, D), has_text (B,))      # the EDM backbone F

As in the paper: residual dense blocks whose LayerNorms are modulated (AdaLN: shift, scale, gate)
by the text embedding plus the noise-level embedding; a dropped text is a learned null vector.
`build_bridge` wraps it in the project's `EDMDenoiser`; sampled embeddings are renormalised to
the unit sphere by the caller, as CLAP embeddings are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.nn.noise_embedding import NoiseEmbedding


@dataclass(frozen=True)
class BridgeConfig(ConfigDict):
    LABEL: ClassVar[str] = "CLAP bridge"

    embed_dim: int = 128
    hidden: int = 256
    blocks: int = 6
    noise_features: int = 64
    sigma_data: float = 0.09  # per-dimension std of unit-norm 128-d embeddings, ~1 / sqrt(128)
    sigma_min: float = 0.002
    sigma_max: float = 5.0
    p_mean: float = -1.6
    p_std: float = 1.4
    clap: str = ""  # the CLAP pair whose embeddings this maps (manifest name), set by training
    clap_sha256: str = ""  # ... its audio encoder file's sha256

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.hidden < 8 or self.blocks < 1:
            raise InvalidInput("embed_dim >= 1, hidden >= 8 and blocks >= 1 are required", field="config")


class BridgeBlock(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.fc1, self.fc2 = nn.Linear(hidden, 2 * hidden), nn.Linear(2 * hidden, hidden)
        self.ada = nn.Linear(hidden, 3 * hidden)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.ada(F.silu(cond)).chunk(3, dim=-1)
        return h + gate * self.fc2(F.silu(self.fc1(self.norm(h) * (1 + scale) + shift)))


class BridgeMLP(nn.Module):
    def __init__(self, config: BridgeConfig):
        super().__init__()
        c = config
        self.config = c
        self.inp = nn.Linear(c.embed_dim, c.hidden)
        self.noise = NoiseEmbedding(c.hidden, features=c.noise_features)
        self.text = nn.Sequential(nn.Linear(c.embed_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.null_text = nn.Parameter(torch.zeros(c.hidden))
        self.blocks = nn.ModuleList([BridgeBlock(c.hidden) for _ in range(c.blocks)])
        self.norm = nn.LayerNorm(c.hidden)
        self.out = nn.Linear(c.hidden, c.embed_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, text: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        keep = has_text.to(x.dtype)[:, None]
        cond = self.noise(c_noise) + keep * self.text(text) + (1 - keep) * self.null_text
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, cond)
        return self.out(self.norm(h))


def build_bridge(config: BridgeConfig) -> EDMDenoiser:
    """BridgeConfig -> EDMDenoiser(BridgeMLP): D(x (B, D), sigma (B,), text (B, D), has_text (B,)) -> (B, D)."""
    return EDMDenoiser(BridgeMLP(config), sigma_data=config.sigma_data, clamp=1.0, p_mean=config.p_mean, p_std=config.p_std)
