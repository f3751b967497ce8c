"""The latent Diffusion Transformer of the Diff-A-Riff family (issue 14, part 2).

    cfg = LatentDiTConfig(latent_dim=64)
    net = LatentDiT(cfg)
    out = net(x, c_noise, context, embedding, has_context, has_embedding)

    x:             (B, latent_dim, L)  noisy target latents (EDM-scaled: c_in x)
    c_noise:       (B,)                EDM noise conditioning, ln(sigma) / 4
    context:       (B, latent_dim, L)  codec latents of the context mix, unscaled
    embedding:     (B, embed_dim)      audio embedding of the wanted part (CLAP-style); (B, 0) without one
    has_context:   (B,)                1 = use the context, 0 = dropped (classifier-free guidance)
    has_embedding: (B,)                1 = use the embedding, 0 = dropped
    ->             (B, latent_dim, L)  the EDM backbone output F

As in the paper (after Peebles and Xie's DiT): every latent frame is one token (the codec has
already reduced the rate; patch size 1); the noisy target and the context are concatenated on
channels and projected to the model width; depthwise convolutions after the Q, K, V projections
give the attention its sense of position, so any length works and nothing is tied to a window;
the conditioning vector (noise level + embedding + context flag) drives AdaLN-Zero in every block
(shift, scale and a zero-initialised gate per branch) and the final layer, which is zero-initialised
too, so a fresh model outputs 0. A dropped condition is replaced by zeros (context) or by a
learned null vector (embedding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict
from stemlink.lab.nn.consistency import ConsistencyDenoiser
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.nn.noise_embedding import NoiseEmbedding

PARAMETERIZATIONS = ("edm", "consistency")


@dataclass(frozen=True)
class LatentDiTConfig(ConfigDict):
    """One latent DiT, with its EDM settings (the latent is the codec's, in [-1, 1])."""

    LABEL: ClassVar[str] = "latent DiT"

    latent_dim: int = 64
    dim: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    embed_dim: int = 0  # audio embedding size; 0 = the model takes none
    qkv_kernel: int = 3  # depthwise conv after Q, K, V
    noise_features: int = 128
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 40.0
    p_mean: float = -1.2
    p_std: float = 1.2
    clamp: float = 1.0
    parameterization: str = "edm"  # "edm" (EDMDenoiser, many-step sampling) or "consistency" (C-DiT, 1-5 steps)
    rho: float = 7.0  # Karras schedule exponent (sampling; the consistency step's space)
    step_start: float = 0.1  # consistency training: step in rho-space, as a fraction of its range, at the start ...
    step_end: float = 1 / 1280  # ... and at the end of the schedule
    codec: str = ""  # the codec pair whose latents this models (manifest name), set by training
    codec_sha256: str = ""  # ... and its encoder file's sha256: serving refuses another codec
    clap: str = ""  # the CLAP pair whose audio embeddings condition it ("" = none), set by training
    clap_sha256: str = ""  # ... its audio encoder file's sha256

    def __post_init__(self) -> None:
        if self.dim % self.heads or self.dim < 8:
            raise InvalidInput(f"dim must be >= 8 and divisible by heads, got dim {self.dim}, heads {self.heads}", field="dim")
        if self.qkv_kernel < 1 or self.qkv_kernel % 2 == 0:
            raise InvalidInput(f"qkv_kernel must be odd and >= 1, got {self.qkv_kernel}", field="qkv_kernel")
        if self.latent_dim < 1 or self.depth < 1 or self.embed_dim < 0:
            raise InvalidInput("latent_dim, depth >= 1 and embed_dim >= 0 are required", field="config")
        if self.parameterization not in PARAMETERIZATIONS:
            raise InvalidInput(
                f"parameterization must be one of {', '.join(PARAMETERIZATIONS)}, got {self.parameterization!r}", field="parameterization"
            )
        if not 0 < self.sigma_min < self.sigma_max:
            raise InvalidInput(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}", field="sigma_min")


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    """(B, L, dim), conditioning (B, dim) -> (B, L, dim): AdaLN-Zero attention and MLP branches."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_kernel: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qkv_conv = nn.Conv1d(3 * dim, 3 * dim, qkv_kernel, padding=qkv_kernel // 2, groups=3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).unsqueeze(1).chunk(6, dim=-1)
        h = _modulate(self.norm1(x), shift1, scale1)
        qkv = self.qkv_conv(self.qkv(h).transpose(1, 2)).transpose(1, 2)
        q, k, v = qkv.reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + gate1 * self.proj(attn)
        return x + gate2 * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class LatentDiT(nn.Module):
    """The EDM backbone over codec latents; see the module docstring for the signature."""

    def __init__(self, config: LatentDiTConfig):
        super().__init__()
        c = config
        self.config = c
        self.inp = nn.Linear(2 * c.latent_dim, c.dim)
        self.noise = NoiseEmbedding(c.dim, features=c.noise_features)
        self.context_flag = nn.Parameter(torch.zeros(c.dim))
        self.embed = nn.Sequential(nn.Linear(c.embed_dim, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim)) if c.embed_dim else None
        self.null_embedding = nn.Parameter(torch.zeros(c.dim))
        self.blocks = nn.ModuleList([DiTBlock(c.dim, c.heads, c.mlp_ratio, c.qkv_kernel) for _ in range(c.depth)])
        self.norm = nn.LayerNorm(c.dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(c.dim, 2 * c.dim)
        self.out = nn.Linear(c.dim, c.latent_dim)
        for layer in (self.final_ada, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        x: torch.Tensor,
        c_noise: torch.Tensor,
        context: torch.Tensor,
        embedding: torch.Tensor,
        has_context: torch.Tensor,
        has_embedding: torch.Tensor,
    ) -> torch.Tensor:
        keep_ctx = has_context.to(x.dtype)
        keep_emb = has_embedding.to(x.dtype)[:, None]
        h = self.inp(torch.cat([x, context * keep_ctx[:, None, None]], dim=1).transpose(1, 2))
        cond = self.noise(c_noise) + keep_ctx[:, None] * self.context_flag
        if self.embed is not None:
            cond = cond + keep_emb * self.embed(embedding) + (1 - keep_emb) * self.null_embedding
        else:
            cond = cond + self.null_embedding
        for block in self.blocks:
            h = block(h, cond)
        shift, scale = self.final_ada(F.silu(cond)).unsqueeze(1).chunk(2, dim=-1)
        return self.out(_modulate(self.norm(h), shift, scale)).transpose(1, 2)


def build_latent_denoiser(config: LatentDiTConfig) -> EDMDenoiser | ConsistencyDenoiser:
    """LatentDiTConfig -> EDMDenoiser(LatentDiT) or ConsistencyDenoiser(LatentDiT), fresh weights;
    both have the signature `(x, sigma, context, embedding, has_context, has_embedding) -> x0`."""
    c = config
    if c.parameterization == "consistency":
        return ConsistencyDenoiser(
            LatentDiT(c),
            sigma_data=c.sigma_data,
            sigma_min=c.sigma_min,
            sigma_max=c.sigma_max,
            clamp=c.clamp,
            p_mean=c.p_mean,
            p_std=c.p_std,
            rho=c.rho,
            step_start=c.step_start,
            step_end=c.step_end,
        )
    return EDMDenoiser(LatentDiT(c), sigma_data=c.sigma_data, clamp=c.clamp, p_mean=c.p_mean, p_std=c.p_std)
