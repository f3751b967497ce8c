"""A stereo audio autoencoder in the STFT domain (`STFTCodecConfig`, `STFTCodec`): the latent
space of the Diff-A-Riff family (issue 14, part 1), in the role Music2Latent2 has in the paper.

    codec = STFTCodec(STFTCodecConfig())
    z = codec.encode(audio)          # (B, 2, T) at 44.1 kHz -> (B, latent_dim, codec.latent_frames(T))
    audio = codec.decode(z, T)       # -> (B, 2, T), exactly T samples

Why the STFT domain: a waveform autoencoder (diffusers' `AutoencoderOobleck`) runs its convolutions
at the audio rate, ~1 s of CPU per second of audio even at 2.4 M parameters. Here every layer runs
at the STFT frame rate (86 frames/s at hop 512) or below; the decoder ends, as Vocos does, in a
head that predicts each bin's log magnitude and phase, and one inverse STFT. The default
compresses 2 x 44,100 samples/s to 64 x 10.8 values/s (128x, Music2Latent2's ratio).

- Encoder: |STFT| compressed (power 0.3) and the STFT's phase as cos/sin, both channels, bins
  as features: (B, 2 * 3 * F, N) -> Conv1d -> ConvNeXt blocks -> strided Conv1d per stride ->
  latent (tanh-bounded, so a diffusion model gets a fixed range).
- Decoder: latent -> transposed Conv1d per stride -> ConvNeXt blocks -> Conv1d to
  (log magnitude, phase) per channel and bin -> complex STFT -> iSTFT, trimmed to T.

The signal side (features, padding, log magnitude/phase -> iSTFT) is `stemlink.engine.codec_geometry`,
shared with serving; the encoder and decoder networks are exported separately. Inputs are padded
to a whole number of latent frames and the output is trimmed back, so any length works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from stemlink.engine.codec_geometry import CodecGeometry
from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict


@dataclass(frozen=True)
class STFTCodecConfig(ConfigDict):
    """Everything that defines one codec. `strides`: latent frames per STFT frame, multiplied."""

    LABEL: ClassVar[str] = "STFT codec"

    sample_rate: int = 44100
    channels: int = 2
    n_fft: int = 2048
    hop: int = 512
    dim: int = 256
    blocks: int = 3  # ConvNeXt blocks before (encoder) / after (decoder) the resampling
    strides: tuple[int, ...] = (2, 2, 2)
    latent_dim: int = 64
    magnitude_power: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if not 0 < self.hop <= self.n_fft // 2:
            raise InvalidInput(f"hop must be in 1..n_fft/2, got {self.hop} with n_fft {self.n_fft}", field="hop")
        if any(s < 1 or (s > 1 and s % 2) for s in self.strides):
            raise InvalidInput(f"strides must be 1 or even, got {self.strides}", field="strides")
        if self.channels < 1 or self.latent_dim < 1 or self.dim < 8:
            raise InvalidInput("channels, latent_dim >= 1 and dim >= 8 are required", field="config")

    @property
    def frames_per_latent(self) -> int:
        return math.prod(self.strides)

    @property
    def geometry(self) -> CodecGeometry:
        return CodecGeometry(self.sample_rate, self.channels, self.n_fft, self.hop, self.frames_per_latent, self.magnitude_power)

    @property
    def bins(self) -> int:
        return self.geometry.bins

    @property
    def samples_per_latent(self) -> int:
        return self.geometry.samples_per_latent

    @property
    def latent_rate(self) -> float:
        return self.geometry.latent_rate

    @property
    def compression(self) -> float:
        """Audio values per latent value."""
        return self.channels * self.samples_per_latent / self.latent_dim


class ConvNeXt1d(nn.Module):
    """Depthwise 7-tap conv, LayerNorm, pointwise MLP (x3), layer-scaled residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 3 * dim)
        self.down = nn.Linear(3 * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).transpose(1, 2)
        y = self.down(torch.nn.functional.gelu(self.up(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class CodecEncoder(nn.Module):
    """Features (B, 3 * C * F, N) -> latent (B, latent_dim, N / frames_per_latent) in [-1, 1]."""

    def __init__(self, config: STFTCodecConfig):
        super().__init__()
        c = config
        self.inp = nn.Conv1d(3 * c.channels * c.bins, c.dim, 1)
        self.blocks = nn.Sequential(*[ConvNeXt1d(c.dim) for _ in range(c.blocks)])
        self.down = nn.Sequential(
            *[nn.Conv1d(c.dim, c.dim, 2 * s, stride=s, padding=s // 2) if s > 1 else nn.Identity() for s in c.strides]
        )
        self.out = nn.Conv1d(c.dim, c.latent_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.down(self.blocks(self.inp(features)))))


class CodecDecoder(nn.Module):
    """Latent (B, latent_dim, L) -> head (B, 2 * C * F, L * frames_per_latent): log magnitude, phase."""

    def __init__(self, config: STFTCodecConfig):
        super().__init__()
        c = config
        self.frames_per_latent = c.frames_per_latent
        self.inp = nn.Conv1d(c.latent_dim, c.dim, 1)
        self.up = nn.Sequential(
            *[nn.ConvTranspose1d(c.dim, c.dim, 2 * s, stride=s, padding=s // 2) if s > 1 else nn.Identity() for s in reversed(c.strides)]
        )
        self.blocks = nn.Sequential(*[ConvNeXt1d(c.dim) for _ in range(c.blocks)])
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Conv1d(c.dim, 2 * c.channels * c.bins, 1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.up(self.inp(latent)))
        return self.head(self.norm(x.transpose(1, 2)).transpose(1, 2))


class STFTCodec(nn.Module):
    """Encoder and decoder networks with the signal side (`CodecGeometry`) around them."""

    def __init__(self, config: STFTCodecConfig):
        super().__init__()
        self.config = config
        self.geometry = config.geometry
        self.encoder = CodecEncoder(config)
        self.decoder = CodecDecoder(config)

    def padded_length(self, frames: int) -> int:
        return self.geometry.padded_length(frames)

    def latent_frames(self, frames: int) -> int:
        return self.geometry.latent_frames(frames)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> latent (B, latent_dim, latent_frames(T)), in [-1, 1]."""
        return self.encoder(self.geometry.features(audio))

    def decode_spectrum(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, latent_dim, L) -> complex STFT (B, C, F, L * frames_per_latent)."""
        return self.geometry.spectrum(self.decoder(latent))

    def decode(self, latent: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """latent (B, latent_dim, L) -> (B, C, length) audio (default: L * samples_per_latent)."""
        return self.geometry.synthesize(self.decoder(latent), length)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(audio), audio.shape[-1])
