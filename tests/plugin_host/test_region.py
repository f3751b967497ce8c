"""Regions: seconds/samples, any format/rate/channels, and typed errors for bad regions."""
from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.errors import InvalidInput
from stemlink.plugin_host.region import Region, read_region


def make(path, rate=44100, channels=2, frames=44100):
    x = (0.1 * np.random.default_rng(0).standard_normal((channels, frames))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels) as f:
        f.write(x)
    return x


@pytest.mark.parametrize("ext,rate,channels", [("wav", 96000, 6), ("flac", 48000, 1), ("aiff", 44100, 2), ("mp3", 44100, 2)])
def test_read_region_formats(tmp_path, ext, rate, channels):
    path = tmp_path / f"x.{ext}"
    x = make(path, rate, channels, frames=rate)
    audio, got_rate, region = read_region(Region.from_times(path, start=0.25, end=0.75))
    assert got_rate == rate and audio.shape == (channels, rate // 2) and audio.dtype == np.float32
    assert region.start == rate // 4 and region.frames == rate // 2
    if ext in ("wav", "flac", "aiff"):  # lossless: sample-exact
        np.testing.assert_allclose(audio, x[:, rate // 4 : 3 * rate // 4], atol=1e-4)  # 16-bit files


def test_samples_timeline_and_time_reference(tmp_path):
    path = tmp_path / "x.wav"
    make(path, 44100)
    region = Region.from_times(path, start_sample=100, end_sample=1100, timeline=2.0, session_rate=48000, channels=(1,))
    assert (region.start, region.frames, region.timeline) == (100, 1000, 96000)
    assert region.time_reference(44100) == 88200  # timeline sample at the file's (stems') rate
    assert Region.from_times(path, start_sample=100).time_reference(44100) == 100  # default: file at timeline 0
    audio, _, _ = read_region(region)
    assert audio.shape == (1, 1000)


@pytest.mark.parametrize("kwargs,field", [
    (dict(start=0.5, end=0.5), "end"),
    (dict(start=0.6, end=0.5), "end"),
    (dict(start=0.5, end=2.0), "end"),
    (dict(start=1.5), "start"),
    (dict(start=-1.0), "start"),
    (dict(start=0.1, start_sample=10), "start"),
    (dict(channels=(2,)), "channels"),
    (dict(start=float("nan")), "start"),
])
def test_bad_regions_are_typed_errors(tmp_path, kwargs, field):
    path = tmp_path / "x.wav"
    make(path)
    with pytest.raises(InvalidInput) as info:
        Region.from_times(path, **kwargs)
    assert info.value.field == field


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InvalidInput, match="not found"):
        Region.from_times(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(InvalidInput, match="cannot read"):
        Region.from_times(bad)
