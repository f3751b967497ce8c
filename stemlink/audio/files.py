"""Audio sources the apply layer reads from: in-memory arrays and (regions of) audio files.

An `AudioSource` is a finite signal of `frames` samples x `channels` at `sample_rate` that
can be read at any position: `read(start, n) -> (channels, n) float32`, with zeros outside
`[0, frames)` (so windows and resampling margins may run past both ends). Files are read
through `pedalboard.io.AudioFile` with seeks, so only the requested span is ever decoded into
memory (WAV, FLAC, AIFF, MP3, OGG at any rate and channel count).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from stemlink.errors import InvalidInput, MissingDependency


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
    """An in-memory (C, N) float32 array as an `AudioSource`."""

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


class FileSource:
    """A region `[offset, offset + frames)` of an audio file as an `AudioSource` (zeros outside).

    The file stays open until `close()` (or the end of a `with` block); reads seek, so memory
    is proportional to the span read, never to the file.
    """

    def __init__(self, path: str | Path, offset: int = 0, frames: int | None = None):
        self.path = Path(path)
        self._file = open_audio(self.path)
        self.sample_rate = int(round(self._file.samplerate))
        self.channels = int(self._file.num_channels)
        self.file_frames = int(self._file.frames)
        self.offset = int(offset)
        self.frames = self.file_frames - self.offset if frames is None else int(frames)
        if self.offset < 0 or self.frames < 0 or self.offset + self.frames > self.file_frames:
            self.close()
            raise InvalidInput(
                f"region [{self.offset}, {self.offset + self.frames}) is outside {self.path} "
                f"(0..{self.file_frames} samples at {self.sample_rate} Hz)",
                field="region",
            )

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((self.channels, n), dtype=np.float32)
        lo, hi = _clip(start, n, self.frames)
        if hi > lo:
            self._file.seek(self.offset + lo)
            data = self._file.read(hi - lo)
            out[:, lo - start : lo - start + data.shape[-1]] = data
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_audio(path: str | Path):
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


def read_all(source: AudioSource) -> np.ndarray:
    """The whole source as one (C, N) float32 array (for small regions and tests)."""
    return source.read(0, source.frames)
