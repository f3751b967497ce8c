"""Band-split mask separator networks (`BandSplitConfig`, `BandSplitNet`): the spectrum is cut
into bands (narrow at low frequencies, mel-spaced), each band is embedded, a sequence core
models time and bands, and a per-band head predicts one mask per stem.

    BandSplitNet(spec (B, 2, F, N) real/imag of the mix STFT) -> masks (B, S, F, N)

Masks are a softmax over stems, so they are in [0, 1] and sum to 1 at every bin: masked stems
sum back to the mix (mixture consistency by construction) and silence maps to silence.
The input is normalised by its own RMS (level-invariant); each band also gets its log energy
relative to the whole, so the core still sees where the energy is.

Cores (`core`), the bake-off of issue 12 (one `layer` = one pass over time + one over bands):
- "lstm":        bidirectional LSTMs over time per band, then over bands per frame (BSRNN line)
- "transformer": pre-norm self-attention with rotary positions, same two axes (BS-RoFormer line)
- "conv":        residual 3x3 convolutions on the (band, frame) grid, dilated in time
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict

CORES = ("lstm", "transformer", "conv")


@dataclass(frozen=True)
class BandSplitConfig(ConfigDict):
    """Everything that defines one band-split separator. `window` is the engine's window and the
    training crop (samples at `sample_rate`)."""

    LABEL: ClassVar[str] = "band-split"

    stems: tuple[str, ...] = ("bass", "drums", "guitar", "piano")
    sample_rate: int = 44100
    window: int = 131072
    n_fft: int = 2048
    hop: int = 512
    bands: int = 32
    dim: int = 64
    layers: int = 2
    core: str = "transformer"
    heads: int = 4
    head_mult: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "stems", tuple(self.stems))
        if self.core not in CORES:
            raise InvalidInput(f"core must be one of {', '.join(CORES)}, got {self.core!r}", field="core")
        if len(self.stems) < 2:
            raise InvalidInput(f"a separator needs at least 2 stems, got {self.stems}", field="stems")
        if not 0 < self.hop <= self.n_fft // 2:
            raise InvalidInput(f"hop must be in 1..n_fft/2, got hop {self.hop} with n_fft {self.n_fft}", field="hop")
        if not 2 <= self.bands <= self.n_fft // 2 + 1:
            raise InvalidInput(f"bands must be in 2..{self.n_fft // 2 + 1}, got {self.bands}", field="bands")
        if self.core == "transformer" and (self.dim % self.heads or (self.dim // self.heads) % 2):
            raise InvalidInput(f"dim {self.dim} must split into {self.heads} heads of even size", field="heads")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1


def band_edges(n_fft: int, sample_rate: int, bands: int) -> list[int]:
    """Bin indices [0, e1, ..., F] of `bands` contiguous bands, mel-spaced, each >= 1 bin wide."""
    n_bins = n_fft // 2 + 1
    mel_top = 2595.0 * math.log10(1.0 + (sample_rate / 2) / 700.0)
    edges = [0]
    for k in range(1, bands):
        hz = 700.0 * (10 ** (mel_top * k / bands / 2595.0) - 1.0)
        b = int(round(hz / (sample_rate / 2) * (n_bins - 1)))
        edges.append(max(b, edges[-1] + 1))
    edges.append(n_bins)
    if any(b >= e for b, e in zip(edges[:-1], edges[1:], strict=True)):  # too many bands for the bins near the top
        raise InvalidInput(f"{bands} bands do not fit {n_bins} bins", field="bands")
    return edges


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over axis -2 of (..., L, D), D even."""
    length, dim = x.shape[-2], x.shape[-1]
    pos = torch.arange(length, dtype=x.dtype, device=x.device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=x.dtype, device=x.device) * (-math.log(10000.0) / dim))[None, :]
    angle = pos * freq  # (L, D/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class LSTMAxis(nn.Module):
    """Residual bidirectional LSTM over the sequence axis of (L, M, D) -> (L, M, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.norm(x))
        return x + self.proj(y)


class AttentionAxis(nn.Module):
    """Pre-norm rotary self-attention + MLP over the sequence axis of (M, L, D) -> (M, L, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(m, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(rotary(q), rotary(k), v)
        x = x + self.out(y.transpose(1, 2).reshape(m, length, dim))
        return x + self.mlp(self.norm2(x))


class ConvGrid(nn.Module):
    """Residual 3x3 convolution on (B, D, K, N), dilated `dilation` frames in time."""

    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=(1, dilation), dilation=(1, dilation))
        self.norm = nn.GroupNorm(1, dim)
        self.mix = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.gelu(self.norm(self.conv(x))))


class BandSplitNet(nn.Module):
    """(B, 2, F, N) mix spectrum -> (B, S, F, N) masks (softmax over S)."""

    def __init__(self, config: BandSplitConfig):
        super().__init__()
        self.config = config
        self.edges = band_edges(config.n_fft, config.sample_rate, config.bands)
        widths = [e - b for b, e in zip(self.edges[:-1], self.edges[1:], strict=True)]
        d, s = config.dim, len(config.stems)
        self.split_norm = nn.ModuleList(nn.LayerNorm(2 * w) for w in widths)
        self.split = nn.ModuleList(nn.Linear(2 * w, d) for w in widths)
        self.energy = nn.Linear(1, d)
        self.band_embedding = nn.Parameter(torch.zeros(config.bands, d))
        if config.core == "lstm":
            self.time = nn.ModuleList(LSTMAxis(d) for _ in range(config.layers))
            self.across = nn.ModuleList(LSTMAxis(d) for _ in range(config.layers))
        elif config.core == "transformer":
            self.time = nn.ModuleList(AttentionAxis(d, config.heads) for _ in range(config.layers))
            self.across = nn.ModuleList(AttentionAxis(d, config.heads) for _ in range(config.layers))
        else:
            self.time = nn.ModuleList(ConvGrid(d, 2 ** (2 * i % 8)) for i in range(config.layers))
            self.across = nn.ModuleList(ConvGrid(d, 2 ** ((2 * i + 1) % 8)) for i in range(config.layers))
        self.head = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(d), nn.Linear(d, config.head_mult * d), nn.Tanh(), nn.Linear(config.head_mult * d, s * w))
            for w in widths
        )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        b, _, _, n = spec.shape
        k, s = self.config.bands, len(self.config.stems)
        # Floors are clamps, not `+ eps`: the dynamo ONNX exporter's optimiser drops an added 1e-8
        # (torch 2.14 / onnxscript 0.7), which turns digital silence into NaN in the exported graph.
        scale = spec.pow(2).mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-10).sqrt()
        x = spec / scale
        tokens = []
        for i in range(k):
            band = x[:, :, self.edges[i] : self.edges[i + 1]]  # (B, 2, w, N)
            feats = band.permute(0, 3, 1, 2).reshape(b, n, -1)  # (B, N, 2w)
            energy = torch.log10(feats.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-8))
            tokens.append(self.split[i](self.split_norm[i](feats)) + self.energy(energy))
        h = torch.stack(tokens, dim=1) + self.band_embedding[None, :, None]  # (B, K, N, D)
        d = h.shape[-1]
        for time, across in zip(self.time, self.across, strict=True):
            if self.config.core == "conv":
                g = h.permute(0, 3, 1, 2)  # (B, D, K, N)
                h = across(time(g)).permute(0, 2, 3, 1)
            else:
                h = time(h.reshape(b * k, n, d)).reshape(b, k, n, d)
                h = across(h.transpose(1, 2).reshape(b * n, k, d)).reshape(b, n, k, d).transpose(1, 2)
        logits = []
        for i in range(k):
            w = self.edges[i + 1] - self.edges[i]
            logits.append(self.head[i](h[:, i]).reshape(b, n, s, w).permute(0, 2, 3, 1))  # (B, S, w, N)
        return torch.softmax(torch.cat(logits, dim=2), dim=1)


def build_bandsplit(config: BandSplitConfig) -> BandSplitNet:
    return BandSplitNet(config)
