"""Log-mel filterbank front end in plain torch, exportable to ONNX and TorchScript.

    audio: (B, T) float32   ->   (B, n_mels, frames),   frames = T // hop_length + 1

The STFT is a strided conv1d against a windowed DFT basis (cos and sin kernels), so the
legacy and dynamo ONNX exporters both handle it (no complex tensors). With `center=True`
the signal is reflect-padded by n_fft // 2 on both sides, as `torch.stft` does. The mel
filterbank is HTK-scale triangles without area normalisation, numerically the same as
`torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")`; no librosa or
torchaudio is needed at inference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + freq / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """HTK triangular filters -> (n_freqs, n_mels), float64 math, float32 result."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).to(torch.float32)


def dft_kernels(n_fft: int, win_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hann-windowed real DFT basis -> (cos, sin), each (n_fft // 2 + 1, 1, n_fft).

    A window shorter than n_fft is zero-padded on both sides (centred), as torch.stft does.
    """
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64).unsqueeze(1)
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))
    phase = 2.0 * math.pi * k * n / n_fft
    cos = (torch.cos(phase) * window).to(torch.float32).unsqueeze(1)
    sin = (-torch.sin(phase) * window).to(torch.float32).unsqueeze(1)
    return cos, sin


class MelFrontEnd(nn.Module):
    """(B, T) waveform -> (B, n_mels, frames) log-mel power spectrogram.

    `log_eps` is added before the natural log (COLA uses 1e-6); `log=False` returns the linear
    mel power, which is what reference implementations are compared against.
    """

    dft_cos: torch.Tensor  # (n_fft // 2 + 1, 1, n_fft) buffers
    dft_sin: torch.Tensor
    mel_fb: torch.Tensor  # (n_mels, n_fft // 2 + 1)

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        center: bool = True,
        log: bool = True,
        log_eps: float = 1e-6,
    ):
        super().__init__()
        win_length = win_length or n_fft
        if not 0 < win_length <= n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}")
        f_max = float(f_max if f_max is not None else sample_rate / 2)
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={f_min}, f_max={f_max}")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.center = center
        self.log = log
        self.log_eps = log_eps
        cos, sin = dft_kernels(n_fft, win_length)
        self.register_buffer("dft_cos", cos, persistent=False)
        self.register_buffer("dft_sin", sin, persistent=False)
        self.register_buffer(
            "mel_fb", mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate).t().contiguous(), persistent=False
        )  # (n_mels, n_freqs)

    def frames(self, samples: int) -> int:
        """Number of output frames for `samples` input samples."""
        if self.center:
            return samples // self.hop_length + 1
        return (samples - self.n_fft) // self.hop_length + 1

    def power_spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, n_fft // 2 + 1, frames) |STFT|^2."""
        x = audio.unsqueeze(1)
        if self.center:
            pad = self.n_fft // 2
            x = F.pad(x, (pad, pad), mode="reflect")
        real = F.conv1d(x, self.dft_cos, stride=self.hop_length)
        imag = F.conv1d(x, self.dft_sin, stride=self.hop_length)
        return real * real + imag * imag

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.mel_fb, self.power_spectrogram(audio))  # (B, n_mels, frames)
        if self.log:
            mel = torch.log(mel + self.log_eps)
        return mel
