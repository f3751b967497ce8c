"""Audio files and the sources the apply layer reads from: the one place audio is decoded or written.

An `AudioSource` is a finite signal of `frames` samples x `channels` at `sample_rate` that
can be read at any position: `read(start, n) -> (channels, n) float32`, with zeros outside
`[0, frames)` (so windows and resampling margins may run past both ends). Files are read
through `pedalboard.io.AudioFile` with seeks, in blocks of at most `READ_BLOCK` frames, so only
the requested span is ever decoded into memory (WAV, FLAC, AIFF, MP3, OGG at any rate and
channel count). The host's region reader (`stemlink/plugin_host/region.py`), the engine's
apply layer and the training caches (`stemlink/lab/data/cache.py`) all read through here.

Writing (corpus renderer, caches): FLAC is written 24-bit. `quantize24` puts samples on the
24-bit grid k / 2^23 first and a mix is the float64 sum of the quantized stems, so the mix needs
no further rounding. Read back as float32 (pedalboard/JUCE convert int24 with slightly
different scales for writing, reading, positive and negative samples), mix - sum(stems) stays
within 2 LSB (2^-22).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stemlink.errors import InvalidInput, MissingDependency

READ_BLOCK = 1 << 18  # frames decoded per read call
FULL_SCALE = float(2**23)


@runtime_checkable
class AudioSource(Protocol):
    sample_rate: int
    channels: int
    frames: int

    def read(self, start: int, n: int) -> np.ndarray:
        """(channels, n) float32 samples [start, start + n); zeros outside [0, frames)."""


def _clip(start: int, n: int, frames: int) -> tuple[int, int]:
    """The part of [start, start + n) inside [0, frames): (lo, hi), possibly empty."""
    lo, hi = max(start, 0), min(start + n, frames)
    return lo, max(hi, lo)


class ArraySource:
    """An in-memory (C, N) float32 array as an `AudioSource` (no copy of a float32 array)."""

    def __init__(self, audio: np.ndarray, sample_rate: int):
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise InvalidInput(f"audio must be (channels, frames), got shape {audio.shape}", field="audio")
        self.audio = audio
        self.sample_rate = int(sample_rate)
        self.channels, self.frames = audio.shape

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((self.channels, n), dtype=np.float32)
        lo, hi = _clip(start, n, self.frames)
        out[:, lo - start : hi - start] = self.audio[:, lo:hi]
        return out


class MidSource:
    """The mean of a source's channels (mono (1, n)): the generative/score downmix."""

    def __init__(self, source: AudioSource):
        self.source = source
        self.sample_rate = source.sample_rate
        self.channels = 1
        self.frames = source.frames

    def read(self, start: int, n: int) -> np.ndarray:
        return self.source.read(start, n).mean(axis=0, keepdims=True, dtype=np.float32)


class StereoSource:
    """A source folded to stereo (2, n): left = mean of the even channels, right = mean of the odd
    ones; a mono source feeds both (the stereo generative downmix; `unfold_stereo` is its inverse)."""

    def __init__(self, source: AudioSource):
        self.source = source
        self.sample_rate = source.sample_rate
        self.channels = 2
        self.frames = source.frames

    def read(self, start: int, n: int) -> np.ndarray:
        x = self.source.read(start, n)
        if x.shape[0] == 1:
            return np.repeat(x, 2, axis=0)
        return np.stack([x[0::2].mean(axis=0, dtype=np.float32), x[1::2].mean(axis=0, dtype=np.float32)])


def unfold_stereo(x: np.ndarray, channels: int) -> np.ndarray:
    """(..., 2, n) stereo -> (..., channels, n): mono gets the mean, otherwise even channels get the
    left and odd channels the right (the inverse of `StereoSource`'s fold)."""
    if channels == 1:
        return x.mean(axis=-2, keepdims=True, dtype=np.float32)
    return x[..., [c % 2 for c in range(channels)], :]


class FileSource:
    """A region `[offset, offset + frames)` of an audio file as an `AudioSource` (zeros outside).

    The file stays open until `close()` (or the end of a `with` block); reads seek and decode
    in blocks of `READ_BLOCK`, so memory is the span read plus one block, never the file.
    `channels`: the file channels to use (0-based), default all. Frames the file does not
    deliver (a truncated file) read as zeros.
    """

    def __init__(self, path: str | Path, offset: int = 0, frames: int | None = None, channels: tuple[int, ...] | None = None):
        self.path = Path(path)
        self._file = open_audio(self.path)
        self.sample_rate = int(round(self._file.samplerate))
        file_channels = int(self._file.num_channels)
        self.file_frames = int(self._file.frames)
        self.offset = int(offset)
        self.frames = self.file_frames - self.offset if frames is None else int(frames)
        self._pick = None if channels is None else list(channels)
        self.channels = file_channels if channels is None else len(channels)
        if self.offset < 0 or self.frames < 0 or self.offset + self.frames > self.file_frames:
            self.close()
            raise InvalidInput(
                f"region [{self.offset}, {self.offset + self.frames}) is outside {self.path} "
                f"(0..{self.file_frames} samples at {self.sample_rate} Hz)",
                field="region",
            )
        if self._pick is not None and (not self._pick or any(not 0 <= c < file_channels for c in self._pick)):
            self.close()
            raise InvalidInput(f"channels {self._pick} must be indices in 0..{file_channels - 1} of {self.path}", field="channels")

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((self.channels, n), dtype=np.float32)
        lo, hi = _clip(start, n, self.frames)
        if hi > lo:
            self._file.seek(self.offset + lo)
            done = lo
            while done < hi:
                block = self._file.read(min(READ_BLOCK, hi - done))
                got = block.shape[-1]
                if got == 0:
                    break  # the file holds less than its header says: the rest stays zero
                out[:, done - start : done - start + got] = block if self._pick is None else block[self._pick]
                done += got
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_audio(path: str | Path) -> Any:
    """`pedalboard.io.AudioFile(path)` for reading, with typed errors for missing/unreadable files."""
    try:
        from pedalboard.io import AudioFile
    except ImportError as exc:  # pragma: no cover - pedalboard is a core dependency
        raise MissingDependency("reading audio files needs pedalboard: pip install pedalboard") from exc
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"audio file not found: {path}", field="path")
    try:
        return AudioFile(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        raise InvalidInput(f"cannot read audio file {path}: {exc}", field="path") from exc


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """A whole file (WAV/FLAC/AIFF/MP3) -> (float32 (C, n), rate): for corpus files and tests."""
    with FileSource(path) as source:
        return source.read(0, source.frames), source.sample_rate


def quantize24(x: np.ndarray) -> np.ndarray:
    """Round float audio to the 24-bit PCM grid (clipped to [-1, 1 - 2^-23]). float32 out."""
    q = np.round(np.asarray(x, dtype=np.float64) * FULL_SCALE)
    q = np.clip(q, -FULL_SCALE, FULL_SCALE - 1)
    return (q / FULL_SCALE).astype(np.float32)


def write_flac(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write (C, n) float audio as 24-bit FLAC, atomically (temp file + rename)."""
    from pedalboard.io import AudioFile

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.flac")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    with AudioFile(str(tmp), "w", samplerate=sample_rate, num_channels=audio.shape[0], bit_depth=24, quality=0) as f:
        f.write(audio)
    os.replace(tmp, path)
