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

The STFT is the project's (`stemlink/engine/spectral.py`: periodic Hann, centred, zero padding); inputs are padded to a whole number of
latent frames and the output is trimmed back, so any length works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from stemlink.engine import spectral
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
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frames_per_latent(self) -> int:
        return math.prod(self.strides)

    @property
    def samples_per_latent(self) -> int:
        return self.hop * self.frames_per_latent

    @property
    def latent_rate(self) -> float:
        return self.sample_rate / self.samples_per_latent

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


class STFTCodec(nn.Module):
    def __init__(self, config: STFTCodecConfig):
        super().__init__()
        self.config = c = config
        features = 3 * c.channels * c.bins  # compressed magnitude, cos and sin of the phase
        self.enc_in = nn.Conv1d(features, c.dim, 1)
        self.enc_blocks = nn.Sequential(*[ConvNeXt1d(c.dim) for _ in range(c.blocks)])
        self.down = nn.ModuleList(nn.Conv1d(c.dim, c.dim, 2 * s, stride=s, padding=s // 2) if s > 1 else nn.Identity() for s in c.strides)
        self.enc_out = nn.Conv1d(c.dim, c.latent_dim, 1)
        self.dec_in = nn.Conv1d(c.latent_dim, c.dim, 1)
        self.up = nn.ModuleList(
            nn.ConvTranspose1d(c.dim, c.dim, 2 * s, stride=s, padding=s // 2) if s > 1 else nn.Identity() for s in reversed(c.strides)
        )
        self.dec_blocks = nn.Sequential(*[ConvNeXt1d(c.dim) for _ in range(c.blocks)])
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Conv1d(c.dim, 2 * c.channels * c.bins, 1)  # log magnitude, phase

    # --- STFT helpers ------------------------------------------------------------------------

    def padded_length(self, frames: int) -> int:
        """What `frames` samples are padded to before encoding: whole latent frames, with at least
        n_fft / 2 zeros at the end, so the frames the codec drops (a centred STFT's last one)
        only ever overlap padding and the first `frames` samples are fully represented."""
        unit = self.config.samples_per_latent
        return -(-(frames + self.config.n_fft // 2) // unit) * unit

    def latent_frames(self, frames: int) -> int:
        return self.padded_length(frames) // self.config.samples_per_latent

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> complex (B, C, F, T / hop); T a multiple of samples_per_latent."""
        c = self.config
        b, ch, t = audio.shape
        return spectral.stft(audio.reshape(b * ch, t), c.n_fft, c.hop)[..., : t // c.hop].reshape(b, ch, c.bins, -1)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        c = self.config
        b, ch, f, n = spec.shape
        pad = torch.zeros(b, ch, f, 1, dtype=spec.dtype, device=spec.device)  # the last frame a centred STFT has
        audio = spectral.istft(torch.cat((spec, pad), dim=-1).reshape(b * ch, f, n + 1), c.n_fft, c.hop, n * c.hop)
        return audio.reshape(b, ch, -1)[..., :length]

    # --- the codec ---------------------------------------------------------------------------

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> latent (B, latent_dim, latent_frames(T)), in [-1, 1]."""
        c = self.config
        if audio.dim() != 3 or audio.shape[1] != c.channels:
            raise InvalidInput(f"expected audio (B, {c.channels}, T), got {tuple(audio.shape)}", field="audio")
        t = audio.shape[-1]
        audio = nn.functional.pad(audio, (0, self.padded_length(t) - t))
        spec = self.stft(audio)
        mag = spec.abs()
        phase = spec / mag.clamp_min(1e-8)
        feats = torch.cat((mag.clamp_min(1e-8) ** c.magnitude_power, phase.real, phase.imag), dim=1)
        x = self.enc_blocks(self.enc_in(feats.flatten(1, 2)))
        for down in self.down:
            x = down(x)
        return torch.tanh(self.enc_out(x))

    def decode(self, latent: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """latent (B, latent_dim, L) -> (B, C, length) audio (default: L * samples_per_latent)."""
        c = self.config
        n = latent.shape[-1] * c.frames_per_latent
        x = self.dec_in(latent)
        for up in self.up:
            x = up(x)
        x = self.dec_blocks(x[..., :n])
        x = self.head(self.norm(x.transpose(1, 2)).transpose(1, 2))
        b = x.shape[0]
        x = x.reshape(b, 2, c.channels, c.bins, n)
        magnitude = torch.exp(x[:, 0].clamp(max=6.0))
        spec = torch.polar(magnitude, x[:, 1])
        return self.istft(spec, n * c.hop if length is None else int(length))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(audio), audio.shape[-1])
