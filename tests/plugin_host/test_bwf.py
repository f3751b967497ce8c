"""BWF writer: a parser written here reads back the bext TimeReference; pedalboard reads the audio."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.plugin_host.bwf import BwfWriter


def parse_riff(data: bytes) -> dict[bytes, bytes]:
    """Chunk id -> payload of a RIFF/WAVE file (independent of the writer's code)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


def time_reference(bext: bytes) -> int:
    # Description 256, Originator 32, OriginatorReference 32, Date 10, Time 8 -> offset 338
    low, high = struct.unpack("<II", bext[338:346])
    return (high << 32) | low


def write(path, audio, rate, tref, fmt="float32", block=1000):
    with open(path, "wb") as fh:
        w = BwfWriter(fh, rate, audio.shape[0], time_reference=tref, sample_format=fmt)
        for i in range(0, audio.shape[-1], block):
            w.write(audio[:, i : i + block])
        w.close()


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("fmt", ["float32", "pcm24"])
@pytest.mark.parametrize("tref", [0, 441000, 2**32 + 12345])
def test_bext_time_reference_and_pedalboard_reads_it(tmp_path, channels, fmt, tref):
    rate, frames = 48000, 4801  # odd frame count: 24-bit mono data needs a pad byte
    audio = (0.5 * np.random.default_rng(1).standard_normal((channels, frames))).clip(-1, 1).astype(np.float32)
    path = tmp_path / "x.wav"
    write(path, audio, rate, tref, fmt)
    chunks = parse_riff(path.read_bytes())
    assert len(chunks[b"bext"]) == 602 and time_reference(chunks[b"bext"]) == tref
    assert struct.unpack("<H", chunks[b"fmt "][2:4])[0] == channels
    assert len(chunks[b"data"]) == frames * channels * (4 if fmt == "float32" else 3)
    with AudioFile(str(path)) as f:
        assert (f.samplerate, f.num_channels, f.frames) == (rate, channels, frames)
        back = f.read(frames)
    np.testing.assert_allclose(back, audio, atol=0 if fmt == "float32" else 2.0**-23)


def test_bad_block_shape_is_rejected():
    from stemlink.errors import InvalidInput

    w = BwfWriter(io.BytesIO(), 44100, 2, time_reference=0)
    with pytest.raises(InvalidInput):
        w.write(np.zeros((3, 10), np.float32))
