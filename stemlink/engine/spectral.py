"""The STFT convention every mask separator shares (training and serving use these functions).

    stft(x (B, T), n_fft, hop) -> complex (B, F, N)     F = n_fft // 2 + 1, N = T // hop + 1
    istft(spec (B, F, N), n_fft, hop, length) -> (B, length)
    as_channels(spec) -> (B, 2, F, N) real/imag, the input of an exported mask network

Periodic Hann window, centred frames with zero padding (so a 1-sample input is defined), and
`istft(stft(x)) == x` to float rounding for hop <= n_fft / 2. Masking is linear in the spectrum:
stems whose masks sum to 1 at every bin sum back to the mix.
"""

from __future__ import annotations

import torch


def _window(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=like.real.dtype if like.is_complex() else like.dtype, device=like.device)


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, T) real -> (B, F, N) complex."""
    return torch.stft(x, n_fft, hop, window=_window(n_fft, x), center=True, pad_mode="constant", return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """(B, F, N) complex -> (B, length) real."""
    return torch.istft(spec, n_fft, hop, window=_window(n_fft, spec), center=True, length=length)


def as_channels(spec: torch.Tensor) -> torch.Tensor:
    """(B, F, N) complex -> (B, 2, F, N) float32 (real, imaginary)."""
    return torch.stack((spec.real, spec.imag), dim=1).float().contiguous()


def apply_masks(spec: torch.Tensor, masks: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Mix spectrum (B, F, N) x masks (B, S, F, N) -> stems (B, S, length)."""
    b, s = masks.shape[:2]
    stems = masks.to(spec.real.dtype) * spec[:, None]
    return istft(stems.reshape(b * s, *spec.shape[-2:]), n_fft, hop, length).reshape(b, s, length)
