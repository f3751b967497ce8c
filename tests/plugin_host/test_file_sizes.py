"""The host's memory follows the file, not its header: WAV/AIFF headers that claim more than the
file holds are read only as far as the data goes (with a warning), never allocated from the
header; regions are bounded by the engine's frame limit before anything is read."""

from __future__ import annotations

import struct
import tracemalloc
import warnings

import numpy as np
import pytest
from pedalboard.io import AudioFile

import stemlink.audio.files as files_module
import stemlink.plugin_host.region as region_module
from stemlink.contract import MAX_FRAMES
from stemlink.errors import InvalidInput, TooLarge
from stemlink.plugin_host.headers import pcm_extent
from stemlink.plugin_host.region import Region, TruncatedAudio, file_info, read_region


def write(path, frames=44100, channels=2, rate=44100):
    x = (0.1 * np.random.default_rng(0).standard_normal((channels, frames))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels, bit_depth=16) as f:
        f.write(x)
    return x


def lie(path, data_bytes=None, keep=1.0):
    """Patch the WAV's data chunk size to `data_bytes` and/or keep only a fraction of its data."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"data")
    size = struct.unpack("<I", raw[at + 4 : at + 8])[0]
    if data_bytes is not None:
        raw[at + 4 : at + 8] = struct.pack("<I", data_bytes)
        raw[4:8] = struct.pack("<I", min(data_bytes + at, 0xFFFFFFFF))
    path.write_bytes(bytes(raw[: at + 8 + int(size * keep)]))
    return path


class CountingFile:
    """Wraps a pedalboard file: records every read size."""

    def __init__(self, inner, reads):
        self.inner, self.reads = inner, reads

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read(self, n):
        self.reads.append(int(n))
        return self.inner.read(n)

    def resampled_to(self, rate):
        return CountingFile(self.inner.resampled_to(rate), self.reads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.inner.close()


@pytest.fixture
def reads(monkeypatch):
    seen: list[int] = []
    real = files_module.open_audio
    counting = lambda path: CountingFile(real(path), seen)  # noqa: E731
    monkeypatch.setattr(region_module, "open_audio", counting)  # the header probe
    monkeypatch.setattr(files_module, "open_audio", counting)  # the reader (FileSource)
    return seen


@pytest.mark.parametrize("claim", [512 * 2**20, 0xFFFFFFF0])
def test_header_claiming_far_more_than_the_file_is_read_as_the_file(tmp_path, reads, claim):
    """The issue's 176 KB WAV whose header claims 512 MiB (or 4 GiB): 44100 frames read, a
    warning, and no allocation anywhere near the claim."""
    x = write(tmp_path / "mix.wav")
    path = lie(tmp_path / "mix.wav", data_bytes=claim)
    size = path.stat().st_size
    assert size < 180_000
    info = file_info(path)
    assert (info.frames, info.header_frames) == (44100, claim // 4)
    write(tmp_path / "warm.wav", frames=100)
    read_region(Region.from_times(tmp_path / "warm.wav"))  # imports and caches before measuring
    reads.clear()
    tracemalloc.start()
    try:
        with pytest.warns(TruncatedAudio, match=f"truncated: header says {claim // 4} frames, file holds 44100"):
            audio, rate, region = read_region(Region.from_times(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert audio.shape == (2, 44100) and region.frames == 44100
    np.testing.assert_allclose(audio, x, atol=1e-4)  # the data that is there (16-bit)
    assert sum(reads) == 44100 and max(reads) <= files_module.READ_BLOCK
    assert peak < 2 * audio.nbytes + 2**16  # the region and one decoded block, not the 512 MiB claimed
    assert audio.nbytes < 3 * size


def test_data_present_for_ten_percent_is_not_zero_padded(tmp_path, reads):
    write(tmp_path / "mix.wav")
    path = lie(tmp_path / "mix.wav", keep=0.1)
    assert pcm_extent(path).held == 4410 and pcm_extent(path).claimed == 44100
    with pytest.warns(TruncatedAudio, match="header says 44100 frames, file holds 4410"):
        audio, _, region = read_region(Region.from_times(path))
    assert audio.shape == (2, 4410) and sum(reads) == 4410
    with pytest.raises(InvalidInput, match="past the end of .* \\(4410 samples at 44100 Hz; its header claims 44100: truncated\\)"):
        Region.from_times(path, start=0.05, end=0.5)
    with pytest.raises(InvalidInput, match="past the end"):
        Region.from_times(path, start=0.5)


def test_truncated_aiff_is_detected(tmp_path):
    path = tmp_path / "mix.aiff"
    write(path, frames=20000)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 4 * 15000])  # cut the last 15000 frames of sample data
    extent = pcm_extent(path)
    assert (extent.claimed, extent.held) == (20000, 5000)
    assert file_info(path).frames == 5000


def test_honest_files_are_untouched(tmp_path):
    for name in ("a.wav", "a.aiff", "a.flac"):
        write(tmp_path / name, frames=12345)
        info = file_info(tmp_path / name)
        assert (info.frames, info.header_frames) == (12345, None)
    assert pcm_extent(tmp_path / "a.flac") is None  # compressed: bounded by the frame limit instead
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation warning for an honest file
        audio, _, _ = read_region(Region.from_times(tmp_path / "a.wav"))
    assert audio.shape == (2, 12345)


def test_reading_in_blocks_equals_one_read(tmp_path, monkeypatch):
    x = write(tmp_path / "a.flac", frames=10007)
    monkeypatch.setattr(files_module, "READ_BLOCK", 1000)
    audio, _, _ = read_region(Region.from_times(tmp_path / "a.flac", start_sample=3, end_sample=9999))
    np.testing.assert_allclose(audio, x[:, 3:9999], atol=1e-4)
    resampled, rate, _ = read_region(Region.from_times(tmp_path / "a.flac"), rate=22050)
    assert rate == 22050 and abs(resampled.shape[-1] - 5003) <= 1


def test_region_over_the_engine_limit_is_refused_before_reading(tmp_path, reads, monkeypatch):
    write(tmp_path / "a.wav", frames=5000)
    monkeypatch.setattr(region_module, "MAX_FRAMES", 4096)
    with pytest.raises(TooLarge, match="4096 per input"):
        read_region(Region(tmp_path / "a.wav"))
    assert reads == []
    assert region_module.MAX_FRAMES != MAX_FRAMES  # the real number comes from stemlink/contract.py


def test_cli_warns_and_writes_what_the_file_holds(tmp_path, monkeypatch, capsys):
    from stemlink.cli import main
    from stemlink.lab.export.echo import build_echo_export

    exports = build_echo_export(tmp_path / "exports", sample_rate=44100, window=8192, formats=("torchscript",))
    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "mix.wav")
    lie(tmp_path / "mix.wav", data_bytes=512 * 2**20)
    assert main(["separate", "mix.wav", "--out", "out", "--stems", "bass"]) == 0
    err = capsys.readouterr().err
    assert "warning: mix.wav: truncated: header says 134217728 frames, file holds 44100" in err
    with AudioFile(str(tmp_path / "out" / "mix_bass_0.wav")) as f:
        assert (f.num_channels, f.frames) == (2, 44100)
