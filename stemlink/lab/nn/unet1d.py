"""A 1D convolutional U-Net over several waveform channels (one channel per stem).

The backbone knows nothing about diffusion except a scalar noise embedding input (and, with
`cond_dim`, a conditioning vector joining it):

    x: (B, C_in, T)   c_noise: (B,)   [cond: (B, cond_dim)]   ->   (B, C_out, T)

T must be a multiple of the product of `factors` (the total downsampling).
Levels: residual blocks (GroupNorm, SiLU, conv, FiLM from the noise embedding), strided-conv
downsampling, optional self-attention on the coarse levels, transposed-conv upsampling with
skip connections.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from stemlink.lab.nn.noise_embedding import NoiseEmbedding


def _groups(channels: int, wanted: int = 8) -> int:
    g = min(wanted, channels)
    while channels % g:
        g -= 1
    return g


def _zero_init(conv: nn.Conv1d) -> None:
    """Zero a conv's weight and bias, so the branch it ends starts as 0."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ResBlock(nn.Module):
    """(B, C_in, T), (B, E) -> (B, C_out, T)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, kernel: int = 3, dilation: int = 1):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=pad, dilation=dilation)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=kernel // 2)
        _zero_init(self.conv2)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over time, residual: (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.heads = heads
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.out = nn.Conv1d(channels, channels, 1)
        _zero_init(self.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, t).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(h.transpose(-1, -2).reshape(b, c, t))


class Level(nn.Module):
    """Residual blocks (+ attention) at one resolution."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, blocks: int, attention: bool, heads: int, kernel: int):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c_in if i == 0 else c_out, c_out, emb_dim, kernel) for i in range(blocks))
        self.attn = nn.ModuleList(Attention(c_out, heads) for _ in range(blocks)) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, emb)
            if self.attn is not None:
                x = self.attn[i](x)
        return x


class UNet1D(nn.Module):
    """1D U-Net: (B, in_channels, T), c_noise (B,) -> (B, out_channels, T).

    `channels[i]` is the width at level i (level 0 = full rate); `factors[i]` the
    downsampling between level i and i + 1 (len(factors) == len(channels) - 1);
    `blocks[i]` residual blocks per level; `attentions[i]` enables self-attention there.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: tuple[int, ...],
        factors: tuple[int, ...],
        blocks: tuple[int, ...],
        attentions: tuple[bool, ...],
        emb_dim: int = 128,
        heads: int = 4,
        kernel: int = 3,
        io_kernel: int = 7,
        cond_dim: int = 0,
    ):
        super().__init__()
        if not (len(channels) == len(blocks) == len(attentions) == len(factors) + 1):
            raise ValueError("channels, blocks, attentions need one entry per level; factors one fewer")
        self.factors = tuple(factors)
        self.embed = NoiseEmbedding(emb_dim)
        self.cond = nn.Linear(cond_dim, emb_dim) if cond_dim else None  # a conditioning vector joins the noise embedding
        self.conv_in = nn.Conv1d(in_channels, channels[0], io_kernel, padding=io_kernel // 2)
        self.down_levels = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, c in enumerate(channels):
            self.down_levels.append(Level(c, c, emb_dim, blocks[i], attentions[i], heads, kernel))
            if i < len(factors):
                f = factors[i]
                self.downsample.append(nn.Conv1d(c, channels[i + 1], 2 * f, stride=f, padding=f // 2))
        self.up_levels = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(channels))):
            c = channels[i]
            self.up_levels.append(Level(2 * c, c, emb_dim, blocks[i], attentions[i], heads, kernel))
            if i > 0:
                f = factors[i - 1]
                self.upsample.append(nn.ConvTranspose1d(c, channels[i - 1], 2 * f, stride=f, padding=f // 2))
        self.norm_out = nn.GroupNorm(_groups(channels[0]), channels[0])
        self.conv_out = nn.Conv1d(channels[0], out_channels, io_kernel, padding=io_kernel // 2)
        _zero_init(self.conv_out)

    @property
    def hop(self) -> int:
        """Total downsampling: T must be a multiple of this."""
        return math.prod(self.factors)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        """`cond`: with `cond_dim`, one (B, cond_dim) vector (e.g. GMSDI's tag set), added to the
        noise embedding that drives every block's FiLM."""
        emb = self.embed(c_noise)
        if self.cond is not None:
            emb = emb + self.cond(cond[0])
        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down_levels):
            h = level(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        for j, level in enumerate(self.up_levels):
            h = level(torch.cat([h, skips.pop()], dim=1), emb)
            if j < len(self.upsample):
                h = self.upsample[j](h)
        return self.conv_out(F.silu(self.norm_out(h)))
