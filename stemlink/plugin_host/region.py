"""Regions: a span of an audio file placed on a DAW timeline, and reading it.

A `Region` is (source file, first sample in the file, length in samples, timeline position
in samples at the session rate, optional channel selection). All positions are integers in
samples; `Region.from_times` converts seconds (file positions at the file's rate, timeline at
the session rate). Defaults: the region runs to the end of the file; the timeline position is
the region's start in the file (the file itself sits at timeline 0); the session rate is the
file's rate.

The engine returns stems at the file's rate. Their BWF TimeReference is the timeline sample
expressed at the file's rate: `round(timeline * file_rate / session_rate)`.

Every problem (missing or unreadable file, a folder or FIFO given as the file, negative
start, zero length, past the end of the file, bad channel index) raises `InvalidInput` naming
the field; a region longer than the engine accepts per input (`Limits.max_frames`) raises
`TooLarge` before anything is read (`stemlink/contract.py` `MAX_FRAMES`).

Memory follows the file, not its header: for WAV/RF64/AIFF the frames the header claims are
compared with the bytes the file holds (`stemlink/plugin_host/headers.py`). A file holding less than
its header says is read only as far as its data goes, with a `TruncatedAudio` warning
("truncated: header says N frames, file holds M"); a region past the data is refused.
Compressed files are bounded by the frame limit and read in blocks.

Checked once: `Region.check` probes the file (`file_info`) and validates the region; the
region it returns carries that `FileInfo` (`region.info`), so planning a job and reading the
region later neither reopen the header nor repeat the checks. `dataclasses.replace` on a
checked region drops `info` (a changed region is checked again). Reading goes through
`stemlink.audio.files.FileSource` and, when a rate is asked for, `stemlink.audio.resample`:
the same reader and resampler the engine and the training caches use.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from stemlink.audio.files import FileSource, open_audio
from stemlink.audio.resample import resample_span
from stemlink.contract import MAX_FRAMES
from stemlink.errors import InvalidInput, TooLarge
from stemlink.plugin_host.headers import pcm_extent

_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


class TruncatedAudio(UserWarning):
    """A file holds fewer frames than its header claims; only the frames present are used."""


@dataclass(frozen=True)
class FileInfo:
    sample_rate: int
    channels: int
    frames: int  # frames the file really holds (what regions are checked against)
    header_frames: int | None = None  # what the header claims, when that is more than `frames`

    def truncation(self, path: Path) -> str | None:
        if self.header_frames is None:
            return None
        return f"{path}: truncated: header says {self.header_frames} frames, file holds {self.frames}; using the {self.frames} present"


def check_input_file(path: str | Path, kind: str = "audio file", field: str = "path") -> Path:
    """`path` must be an existing regular file: a folder, FIFO or device is named as such
    (and never opened: opening a FIFO would block)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise InvalidInput(f"{kind} not found: {path}", field=field) from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {kind} {path}: {exc.strerror or exc}", field=field) from exc
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{path} is a directory, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}", field=field)
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _KINDS if test(mode)), "special file")
        raise InvalidInput(f"{path} is not a regular file ({what})", field=field)
    return path


def file_info(path: str | Path) -> FileInfo:
    """Rate, channels and the frames really present (the header's claim checked against the file size)."""
    path = check_input_file(path)
    with open_audio(path) as f:
        rate, channels, frames = int(round(f.samplerate)), int(f.num_channels), int(f.frames)
    try:
        extent = pcm_extent(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read audio file {path}: {exc.strerror or exc}", field="path") from exc
    if extent is not None and extent.held < frames:
        if extent.held == 0:
            raise InvalidInput(f"{path} holds no audio data (its header says {frames} frames): the file is truncated", field="path")
        return FileInfo(rate, channels, extent.held, header_frames=frames)
    return FileInfo(rate, channels, frames)


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
    info: FileInfo | None = field(default=None, init=False, compare=False, repr=False)  # set by `check`

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
    ) -> Region:
        """Build a region from seconds or samples (give one of each pair, not both); returned checked."""
        info = file_info(path)
        begin = _pick("start", start, start_sample, info.sample_rate, default=0)
        assert begin is not None  # a default was given
        stop = _pick("end", end, end_sample, info.sample_rate, default=None)
        rate = session_rate or info.sample_rate
        place = _pick("timeline", timeline, timeline_sample, rate, default=None)
        frames = None if stop is None else stop - begin
        return cls(Path(path), begin, frames, place, session_rate, channels, name, track).check(info)

    def check(self, info: FileInfo | None = None) -> Region:
        """Validate against the file (probed with `file_info` unless given); returns the checked
        region: `frames` filled in and `info` set. A checked region is returned as it is."""
        if self.info is not None:
            return self
        if info is None:
            info = file_info(self.path)
        if self.start < 0:
            raise InvalidInput(f"region start must be >= 0, got sample {self.start}", field="start")
        held = f"{info.frames} samples at {info.sample_rate} Hz" + (
            "" if info.header_frames is None else f"; its header claims {info.header_frames}: truncated"
        )
        if self.start >= info.frames:
            raise InvalidInput(f"region starts at sample {self.start}, past the end of {self.path} ({held})", field="start")
        frames = info.frames - self.start if self.frames is None else self.frames
        if frames <= 0:
            raise InvalidInput(f"region is empty: end must be after start (start {self.start}, frames {frames})", field="end")
        if self.start + frames > info.frames:
            raise InvalidInput(f"region end (sample {self.start + frames}) is past the end of {self.path} ({held})", field="end")
        if frames > MAX_FRAMES:
            raise TooLarge(
                f"region of {self.path} is {frames} frames; the engine accepts at most {MAX_FRAMES} per input (limits.max_frames): choose a shorter region",
                field="end",
            )
        if self.timeline is not None and self.timeline < 0:
            raise InvalidInput(f"timeline position must be >= 0, got {self.timeline}", field="timeline")
        if self.session_rate is not None and not 1000 <= self.session_rate <= 384000:
            raise InvalidInput(f"session rate must be in 1000..384000 Hz, got {self.session_rate}", field="session_rate")
        if self.channels is not None:
            if not self.channels or any(not 0 <= c < info.channels for c in self.channels):
                raise InvalidInput(
                    f"channels {list(self.channels)} must be indices in 0..{info.channels - 1} of {self.path}", field="channels"
                )
        checked = replace(self, frames=frames)
        object.__setattr__(checked, "info", info)
        return checked

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


def read_region(region: Region, *, rate: int | None = None) -> tuple[np.ndarray, int, Region]:
    """Read a region: ((C, N) float32 audio, its rate, the checked region with frames set).

    `rate`: resample to this rate while reading (the region stays in the file's samples):
    `max(1, round(frames * rate / file_rate))` samples from the region's start, converted by
    `stemlink.audio.resample`. Only the frames present in the file are ever decoded, in blocks
    of `stemlink.audio.files.READ_BLOCK`, straight into the returned array (one copy).
    """
    region = region.check()
    info = region.info
    assert info is not None and region.frames is not None
    note = info.truncation(region.path)
    if note:
        warnings.warn(note, TruncatedAudio, stacklevel=2)
    with FileSource(region.path, region.start, region.frames, region.channels) as source:
        if rate is None or rate == info.sample_rate:
            return source.read(0, region.frames), info.sample_rate, region
        count = max(1, int(round(region.frames * rate / info.sample_rate)))
        return resample_span(source.read, info.sample_rate, int(rate), 0, count), int(rate), region
