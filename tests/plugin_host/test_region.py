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


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(start=0.5, end=0.5), "end"),
        (dict(start=0.6, end=0.5), "end"),
        (dict(start=0.5, end=2.0), "end"),
        (dict(start=1.5), "start"),
        (dict(start=-1.0), "start"),
        (dict(start=0.1, start_sample=10), "start"),
        (dict(channels=(2,)), "channels"),
        (dict(start=float("nan")), "start"),
    ],
)
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


def test_separate_probes_and_checks_the_region_once(tmp_path, monkeypatch):
    """`stemlink separate`: the file's header is probed once and the region checked once (the
    region carries its `FileInfo` from the CLI through planning to reading); the audio is
    opened once more, to be read."""
    import stemlink.audio.files as files_module
    import stemlink.plugin_host.region as region_module
    from stemlink.cli import main
    from stemlink.lab.export.echo import build_echo_export

    exports = build_echo_export(tmp_path / "exports", sample_rate=44100, window=8192, formats=("torchscript",))
    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "mix.wav", channels=2, frames=20000)
    calls = {"probe": 0, "check": 0, "read_open": 0}
    real_info, real_check, real_open = region_module.file_info, Region.check, files_module.open_audio

    def probe(path):
        calls["probe"] += 1
        return real_info(path)

    def check(self, info=None):
        calls["check"] += self.info is None
        return real_check(self, info)

    def read_open(path):
        calls["read_open"] += 1
        return real_open(path)

    monkeypatch.setattr(region_module, "file_info", probe)
    monkeypatch.setattr(Region, "check", check)
    monkeypatch.setattr(files_module, "open_audio", read_open)
    assert main(["separate", "mix.wav", "--out", "out", "--start-sample", "100", "--end-sample", "15100", "--channels", "1"]) == 0
    assert calls == {"probe": 1, "check": 1, "read_open": 1}
    with AudioFile(str(tmp_path / "out" / "mix_bass_100.wav")) as f:
        assert (f.num_channels, f.frames) == (1, 15000)


def test_checked_region_changed_is_checked_again(tmp_path):
    from dataclasses import replace

    path = tmp_path / "x.wav"
    make(path, frames=1000)
    region = Region.from_times(path, start_sample=10)
    assert region.info is not None and region.frames == 990
    moved = replace(region, start=2000)
    assert moved.info is None  # a changed region is no longer "checked"
    with pytest.raises(InvalidInput, match="past the end"):
        moved.check()


def test_read_region_resamples_with_the_engine_resampler(tmp_path):
    from stemlink.audio.resample import resample_array

    path = tmp_path / "x.flac"
    make(path, 44100, 2, frames=30000)
    region = Region.from_times(path, start_sample=1000, end_sample=23050)
    audio, _, _ = read_region(region)
    resampled, rate, _ = read_region(region, rate=16000)
    assert rate == 16000 and resampled.shape == (2, round(22050 * 16000 / 44100))
    np.testing.assert_array_equal(resampled, resample_array(audio, 44100, 16000, frames=resampled.shape[-1]))
