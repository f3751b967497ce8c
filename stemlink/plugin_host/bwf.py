"""Broadcast WAV (BWF) writer: RIFF/WAVE with a `bext` chunk, written by our own code.

DAWs "spot" a BWF file to its original position from the `bext` TimeReference: the number
of samples since midnight (here: since the session start) at the file's own sample rate.

File layout (all integers little-endian; every chunk = 4-byte id, uint32 size, payload,
plus one pad byte if the size is odd)::

    "RIFF" <uint32 file size - 8> "WAVE"
    "fmt " 16 bytes (PCM 24-bit, 1-2 channels): uint16 format tag (1 = PCM, 3 = IEEE float),
           uint16 channels, uint32 sample rate, uint32 byte rate, uint16 block align,
           uint16 bits per sample
           40 bytes (WAVE_FORMAT_EXTENSIBLE, tag 0xFFFE, for > 2 channels): the 16 above,
           uint16 cbSize = 22, uint16 valid bits, uint32 channel mask,
           16-byte sub-format GUID (PCM or IEEE float)
           18 bytes (float32, 1-2 channels): the 16 above + uint16 cbSize = 0
    "fact" 4 bytes (float formats only): uint32 frames per channel
    "bext" 602 bytes (EBU Tech 3285 v1):
           Description        256 bytes ASCII, NUL padded
           Originator          32 bytes ("stemlink")
           OriginatorReference 32 bytes
           OriginationDate     10 bytes "yyyy-mm-dd"
           OriginationTime      8 bytes "hh:mm:ss"
           TimeReferenceLow    uint32  (low 32 bits of the 64-bit sample count)
           TimeReferenceHigh   uint32  (high 32 bits)
           Version             uint16  (1)
           UMID                64 bytes (zero)
           Reserved           190 bytes (zero; v2 loudness fields left 0)
    "data" <uint32 size> interleaved frames: float32, or 24-bit signed PCM (3 bytes, LE)

Sizes are patched on `close()`, so audio can be streamed in blocks of any size. Files are
limited to 4 GiB (RIFF); bigger outputs raise `InvalidInput`.
"""

from __future__ import annotations

import datetime as _dt
import struct
from typing import BinaryIO

import numpy as np

from stemlink.errors import InvalidInput

FORMATS = ("float32", "pcm24")
BEXT_SIZE = 602
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")
_FLOAT_GUID = bytes.fromhex("0300000000001000800000aa00389b71")
_MASKS = {1: 0x4, 2: 0x3, 3: 0x7, 4: 0x33, 5: 0x37, 6: 0x3F, 7: 0x13F, 8: 0x63F}


def bext_chunk(
    time_reference: int, description: str = "", originator: str = "stemlink", reference: str = "", when: _dt.datetime | None = None
) -> bytes:
    """The 602-byte `bext` payload with `time_reference` split into low/high uint32."""
    if not 0 <= time_reference < 2**64:
        raise InvalidInput(f"time_reference must be in 0..2**64-1 samples, got {time_reference}", field="time_reference")
    when = when or _dt.datetime.now()

    def text(value: str, size: int) -> bytes:
        return value.encode("ascii", "replace")[:size].ljust(size, b"\0")

    payload = (
        text(description, 256)
        + text(originator, 32)
        + text(reference, 32)
        + when.strftime("%Y-%m-%d").encode()
        + when.strftime("%H:%M:%S").encode()
        + struct.pack("<IIH", time_reference & 0xFFFFFFFF, time_reference >> 32, 1)
        + bytes(64)
        + bytes(190)
    )
    assert len(payload) == BEXT_SIZE
    return payload


def _fmt_chunk(sample_format: str, channels: int, sample_rate: int) -> bytes:
    bits = 32 if sample_format == "float32" else 24
    tag = 3 if sample_format == "float32" else 1
    block = channels * bits // 8
    base = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, bits)
    if channels > 2:
        guid = _FLOAT_GUID if tag == 3 else _PCM_GUID
        return (
            struct.pack("<HHIIHH", 0xFFFE, channels, sample_rate, sample_rate * block, block, bits)
            + struct.pack("<HHI", 22, bits, _MASKS.get(channels, 0))
            + guid
        )
    return base + (struct.pack("<H", 0) if tag == 3 else b"")


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


class BwfWriter:
    """Stream (C, n) float32 blocks into an open binary file as BWF; `close()` patches sizes.

    The file object must be seekable and is not closed here (the caller owns it).
    """

    def __init__(
        self,
        fh: BinaryIO,
        sample_rate: int,
        channels: int,
        *,
        time_reference: int,
        sample_format: str = "float32",
        description: str = "",
        reference: str = "",
    ):
        if sample_format not in FORMATS:
            raise InvalidInput(f"sample format must be one of {', '.join(FORMATS)}, got {sample_format!r}", field="format")
        if not 1 <= channels <= 64 or sample_rate <= 0:
            raise InvalidInput(f"bad WAV layout: {channels} channels at {sample_rate} Hz", field="channels")
        self.fh, self.channels, self.sample_format = fh, channels, sample_format
        self.frames = 0
        head = _chunk(b"fmt ", _fmt_chunk(sample_format, channels, sample_rate))
        self._fact_at: int | None = None  # offset of the fact count in the file (float32 only)
        if sample_format == "float32":
            self._fact_at = len(head) + 12 + 8  # offset of the fact count in the file
            head += _chunk(b"fact", struct.pack("<I", 0))
        head += _chunk(b"bext", bext_chunk(time_reference, description, reference=reference))
        fh.write(b"RIFF" + struct.pack("<I", 0) + b"WAVE" + head + b"data" + struct.pack("<I", 0))
        self._data_size_at = 12 + len(head) + 4
        self._bytes = 0

    def write(self, block: np.ndarray) -> None:
        """Append (C, n) samples (float, nominal range [-1, 1])."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise InvalidInput(f"block must be ({self.channels}, n), got {block.shape}", field="audio")
        frames = block.T  # interleave
        if self.sample_format == "float32":
            raw = np.ascontiguousarray(frames, dtype="<f4").tobytes()
        else:
            ints = np.round(np.clip(frames, -1.0, 1.0 - 2.0**-23) * 2.0**23).astype("<i4")
            raw = np.ascontiguousarray(ints).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        if self._bytes + len(raw) > 0xFFFFFFFF - self._data_size_at - 8:
            raise InvalidInput("output exceeds the 4 GiB WAV limit; choose a shorter region", field="frames")
        self.fh.write(raw)
        self._bytes += len(raw)
        self.frames += block.shape[-1]

    def close(self) -> None:
        """Pad to an even size and patch the RIFF, fact and data sizes."""
        if self._bytes % 2:
            self.fh.write(b"\0")
        end = self.fh.tell()
        self.fh.seek(4)
        self.fh.write(struct.pack("<I", end - 8))
        if self._fact_at is not None:
            self.fh.seek(self._fact_at)
            self.fh.write(struct.pack("<I", self.frames))
        self.fh.seek(self._data_size_at)
        self.fh.write(struct.pack("<I", self._bytes))
        self.fh.seek(end)
