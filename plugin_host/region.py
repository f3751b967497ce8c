"""Regions: a span of an audio file placed on a DAW timeline, and reading it.

A `Region` is (source file, first sample in the file, length in samples, timeline position
in samples at the session rate, optional channel selection). All positions are integers in
samples; `Region.from_times` converts seconds (file positions at the file's rate, timeline at
the session rate). Defaults: the region runs to the end of the file; the timeline position is
the region's start in the file (the file itself sits at timeline 0); the session rate is the
file's rate.

The engine returns stems at the file's rate. Their BWF TimeReference is the timeline sample
expressed at the file's rate: `round(timeline * file_rate / session_rate)`.

Every problem (missing or unreadable file, negative start, zero length, past the end of
the file, bad channel index) raises `InvalidInput` naming the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from stemlink.engine.audio_io import FileSource, open_audio
from stemlink.errors import InvalidInput


@dataclass(frozen=True)
class FileInfo:
    sample_rate: int
    channels: int
    frames: int


def file_info(path: str | Path) -> FileInfo:
    with open_audio(path) as f:
        return FileInfo(int(round(f.samplerate)), int(f.num_channels), int(f.frames))


@dataclass(frozen=True)
class Region:
    path: Path
    start: int = 0  # first sample in the file, at the file's rate
    frames: int | None = None  # length at the file's rate; None = to the end of the file
    timeline: int | None = None  # position on the timeline at session_rate; None = start (file at 0)
    session_rate: int | None = None  # None = the file's rate
    channels: tuple[int, ...] | None = None  # file channels to use (0-based); None = all
    name: str | None = None
    track: str | None = None

    @classmethod
    def from_times(
        cls,
        path: str | Path,
        *,
        start: float | None = None,
        end: float | None = None,
        start_sample: int | None = None,
        end_sample: int | None = None,
        timeline: float | None = None,
        timeline_sample: int | None = None,
        session_rate: int | None = None,
        channels: tuple[int, ...] | None = None,
        name: str | None = None,
        track: str | None = None,
    ) -> "Region":
        """Build a region from seconds or samples (give one of each pair, not both)."""
        info = file_info(path)
        begin = _pick("start", start, start_sample, info.sample_rate, default=0)
        stop = _pick("end", end, end_sample, info.sample_rate, default=None)
        rate = session_rate or info.sample_rate
        place = _pick("timeline", timeline, timeline_sample, rate, default=None)
        frames = None if stop is None else stop - begin
        region = cls(Path(path), begin, frames, place, session_rate, channels, name, track)
        region.check(info)
        return region

    def check(self, info: FileInfo) -> "Region":
        """Validate against the file; returns the region with `frames` filled in."""
        if self.start < 0:
            raise InvalidInput(f"region start must be >= 0, got sample {self.start}", field="start")
        if self.start >= info.frames:
            raise InvalidInput(f"region starts at sample {self.start}, past the end of {self.path} ({info.frames} samples at {info.sample_rate} Hz)", field="start")
        frames = info.frames - self.start if self.frames is None else self.frames
        if frames <= 0:
            raise InvalidInput(f"region is empty: end must be after start (start {self.start}, frames {frames})", field="end")
        if self.start + frames > info.frames:
            raise InvalidInput(f"region end (sample {self.start + frames}) is past the end of {self.path} ({info.frames} samples at {info.sample_rate} Hz)", field="end")
        if self.timeline is not None and self.timeline < 0:
            raise InvalidInput(f"timeline position must be >= 0, got {self.timeline}", field="timeline")
        if self.session_rate is not None and not 1000 <= self.session_rate <= 384000:
            raise InvalidInput(f"session rate must be in 1000..384000 Hz, got {self.session_rate}", field="session_rate")
        if self.channels is not None:
            if not self.channels or any(not 0 <= c < info.channels for c in self.channels):
                raise InvalidInput(f"channels {list(self.channels)} must be indices in 0..{info.channels - 1} of {self.path}", field="channels")
        return replace(self, frames=frames)

    def time_reference(self, file_rate: int) -> int:
        """BWF TimeReference: the timeline sample at `file_rate` (the written stems' rate)."""
        if self.timeline is None:  # default placement: the file sits at timeline 0
            return self.start
        return int(round(self.timeline * file_rate / (self.session_rate or file_rate)))

    def label(self) -> str:
        """Region name for output files (name, else the start sample)."""
        return self.name or f"{self.start}"


def _pick(label: str, seconds: float | None, samples: int | None, rate: int, default: int | None) -> int | None:
    if seconds is not None and samples is not None:
        raise InvalidInput(f"give --{label} (seconds) or --{label}-sample, not both", field=label)
    if samples is not None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)):
            raise InvalidInput(f"{label}_sample must be an integer, got {samples!r}", field=label)
        return int(samples)
    if seconds is not None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
            raise InvalidInput(f"{label} must be a finite number of seconds, got {seconds!r}", field=label)
        return int(round(seconds * rate))
    return default


def read_region(region: Region) -> tuple[np.ndarray, int, Region]:
    """Read a region: ((C, N) float32 audio, file rate, the checked region with frames set)."""
    info = file_info(region.path)
    region = region.check(info)
    with FileSource(region.path, offset=region.start, frames=region.frames) as source:
        audio = source.read(0, region.frames)
    if region.channels is not None:
        audio = np.ascontiguousarray(audio[list(region.channels)])
    return audio, info.sample_rate, region
