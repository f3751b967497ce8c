"""Audio file I/O and resampling for the data layer (pedalboard.io, scipy).

FLAC is written 24-bit: `quantize24` puts samples on the 24-bit grid k / 2^23 first and the
mix is the float64 sum of the quantized stems, so the mix needs no further rounding. Read
back as float32 (pedalboard/JUCE convert int24 with slightly different scales for writing,
reading, positive and negative samples), mix - sum(stems) stays within 2 LSB (2^-22).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

FULL_SCALE = float(2 ** 23)


def quantize24(x: np.ndarray) -> np.ndarray:
    """Round float audio to the 24-bit PCM grid (clipped to [-1, 1 - 2^-23]). float32 out."""
    q = np.round(np.asarray(x, dtype=np.float64) * FULL_SCALE)
    q = np.clip(q, -FULL_SCALE, FULL_SCALE - 1)
    return (q / FULL_SCALE).astype(np.float32)


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write (C, n) float audio as 24-bit FLAC, atomically (temp file + rename)."""
    from pedalboard.io import AudioFile

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.flac")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    with AudioFile(str(tmp), "w", samplerate=sample_rate, num_channels=audio.shape[0], bit_depth=24, quality=0) as f:
        f.write(audio)
    os.replace(tmp, path)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read any pedalboard-readable file (WAV/FLAC/AIFF/MP3) -> (float32 (C, n), rate)."""
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as f:
        data = f.read(f.frames)
        rate = int(round(f.samplerate))
    return np.asarray(data, dtype=np.float32), rate


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis; output length = round(n * dst / src)."""
    if src_rate == dst_rate:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(dst_rate, src_rate)
    out = resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
    n = int(round(audio.shape[-1] * dst_rate / src_rate))
    if out.shape[-1] < n:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, n - out.shape[-1])])
    return out[..., :n]
