"""Audio files: block-wise region reads (channels, truncation), 24-bit FLAC writing, whole-file reads."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

import stemlink.audio.files as files
from stemlink.audio.files import FileSource, quantize24, read_audio, write_flac
from stemlink.errors import InvalidInput


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


def wav32(path, x, rate=44100):
    with AudioFile(str(path), "w", rate, x.shape[0], bit_depth=32) as f:
        f.write(x)
    return path


def test_reads_in_blocks_equal_one_read_and_pick_channels(tmp_path, monkeypatch):
    x = noise(3, 10007)
    path = wav32(tmp_path / "x.wav", x)
    monkeypatch.setattr(files, "READ_BLOCK", 1000)
    with FileSource(path, offset=5, frames=9000, channels=(2, 0)) as src:
        assert (src.channels, src.frames, src.sample_rate) == (2, 9000, 44100)
        got = src.read(-10, 9020)
    np.testing.assert_array_equal(got[:, :10], 0.0)
    np.testing.assert_array_equal(got[:, 10:9010], x[[2, 0], 5:9005])
    np.testing.assert_array_equal(got[:, 9010:], 0.0)


def test_bad_channels_are_refused(tmp_path):
    path = wav32(tmp_path / "x.wav", noise(2, 100))
    with pytest.raises(InvalidInput, match="channels") as info:
        FileSource(path, channels=(2,))
    assert info.value.field == "channels"


def test_flac_round_trip_is_24_bit_exact(tmp_path):
    x = quantize24(noise(2, 5000))
    write_flac(tmp_path / "x.flac", x, 16000)
    y, rate = read_audio(tmp_path / "x.flac")
    assert rate == 16000 and y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=2**-22)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temp file left
