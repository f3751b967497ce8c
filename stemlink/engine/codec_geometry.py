"""The signal side of the STFT codec (issue 14 part 1): what its encoder network reads and how
its decoder network's output becomes audio. Training (`stemlink.lab.nn.stft_codec`) and serving
use these same functions; the exported networks only see the tensors in between.

    g = CodecGeometry(sample_rate=44100, channels=2, n_fft=2048, hop=512, frames_per_latent=8)
    features = g.features(audio)               # (B, C, T) -> (B, 3 * C * F, N), N = latent frames * 8
    audio = g.synthesize(head, length)         # (B, 2 * C * F, N) log magnitude, phase -> (B, C, length)

Inputs are zero-padded to a whole number of latent frames with at least n_fft / 2 zeros at the
end (`padded_length`), so the one frame dropped from a centred STFT only ever overlaps padding and
every input sample is represented. The STFT is the project's (`stemlink.engine.spectral`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stemlink.engine import spectral
from stemlink.errors import InvalidInput

MAX_LOG_MAGNITUDE = 6.0  # exp(6) = 403: far above any full-scale bin of a 2048-point Hann STFT (~512)


@dataclass(frozen=True)
class CodecGeometry:
    sample_rate: int
    channels: int
    n_fft: int
    hop: int
    frames_per_latent: int
    magnitude_power: float = 0.3

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def samples_per_latent(self) -> int:
        return self.hop * self.frames_per_latent

    @property
    def latent_rate(self) -> float:
        return self.sample_rate / self.samples_per_latent

    def padded_length(self, frames: int) -> int:
        unit = self.samples_per_latent
        return -(-(frames + self.n_fft // 2) // unit) * unit

    def latent_frames(self, frames: int) -> int:
        return self.padded_length(frames) // self.samples_per_latent

    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> complex (B, C, F, T // hop); T a multiple of samples_per_latent."""
        b, ch, t = audio.shape
        return spectral.stft(audio.reshape(b * ch, t), self.n_fft, self.hop)[..., : t // self.hop].reshape(b, ch, self.bins, -1)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """complex (B, C, F, N) -> (B, C, length), length <= N * hop."""
        b, ch, f, n = spec.shape
        pad = torch.zeros(b, ch, f, 1, dtype=spec.dtype, device=spec.device)  # the last frame a centred STFT has
        audio = spectral.istft(torch.cat((spec, pad), dim=-1).reshape(b * ch, f, n + 1), self.n_fft, self.hop, n * self.hop)
        return audio.reshape(b, ch, -1)[..., :length]

    def pad(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 3 or audio.shape[1] != self.channels:
            raise InvalidInput(f"expected audio (B, {self.channels}, T), got {tuple(audio.shape)}", field="audio")
        t = audio.shape[-1]
        return torch.nn.functional.pad(audio, (0, self.padded_length(t) - t))

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) audio -> (B, 3 * C * F, N): compressed magnitude, cos and sin of the phase."""
        spec = self.stft(self.pad(audio))
        mag = spec.abs().clamp_min(1e-8)
        phase = spec / mag
        return torch.cat((mag**self.magnitude_power, phase.real, phase.imag), dim=1).flatten(1, 2)

    def spectrum(self, head: torch.Tensor) -> torch.Tensor:
        """(B, 2 * C * F, N) log magnitude and phase -> complex (B, C, F, N)."""
        b, _, n = head.shape
        x = head.reshape(b, 2, self.channels, self.bins, n)
        return torch.polar(torch.exp(x[:, 0].clamp(max=MAX_LOG_MAGNITUDE)), x[:, 1])

    def synthesize(self, head: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """(B, 2 * C * F, N) -> (B, C, length) audio (default N * hop samples)."""
        n = head.shape[-1]
        return self.istft(self.spectrum(head), n * self.hop if length is None else int(length))
