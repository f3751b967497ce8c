"""How many frames an uncompressed audio file really holds, read from its container.

A WAV (RIFF, RIFX, RF64) or AIFF/AIFC header states the size of its sample data, and a
decoder believes it: a 176 KB file claiming 512 MiB decodes as 512 MiB of (mostly) zeros.
`pcm_extent(path)` walks the chunk headers (a few hundred bytes, never the samples) and
returns both numbers: the frames the data chunk claims and the frames the file's bytes
actually hold, `min(claimed size, bytes after the data chunk's start) // bytes per frame`.

Compressed formats (FLAC, MP3, OGG, ...) give None: their decoded length cannot be checked
against the file size (a silent FLAC decodes to ~2000x its size), so the host bounds them
by the engine's frame limit instead and reads them in blocks.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_CHUNKS = 4096  # chunk headers walked before giving up (each read is 8 bytes)
_AIFC_BYTES = {b"fl32": 4, b"FL32": 4, b"fl64": 8, b"FL64": 8, b"ulaw": 1, b"ULAW": 1, b"alaw": 1, b"ALAW": 1}
_AIFC_PCM = (b"NONE", b"twos", b"sowt", b"raw ", b"in24", b"in32", b"42ni", b"23ni")


@dataclass(frozen=True)
class PcmExtent:
    claimed: int  # frames the header's data size implies
    held: int  # frames whose bytes are in the file (<= claimed)
    block_align: int  # bytes per frame (all channels)


def pcm_extent(path: str | Path) -> PcmExtent | None:
    """The claimed and real frame counts of a WAV/RF64/AIFF file; None for anything else."""
    path = Path(path)
    size = os.stat(path).st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
            return _wave(fh, size, ">" if head[:4] == b"RIFX" else "<")
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff(fh, size)
    return None


def _chunks(fh: BinaryIO, size: int, endian: str):
    """(id, payload start, declared payload size) for each chunk header inside the file."""
    pos = 12
    for _ in range(MAX_CHUNKS):
        if pos + 8 > size:
            return
        fh.seek(pos)
        raw = fh.read(8)
        if len(raw) < 8:
            return
        cid, length = raw[:4], struct.unpack(endian + "I", raw[4:])[0]
        yield cid, pos + 8, length
        pos += 8 + length + (length & 1)


def _extent(claimed_bytes: int, start: int, size: int, block: int) -> PcmExtent | None:
    if block <= 0:
        return None
    held_bytes = max(0, min(claimed_bytes, size - start))
    return PcmExtent(claimed=claimed_bytes // block, held=held_bytes // block, block_align=block)


def _wave(fh: BinaryIO, size: int, endian: str) -> PcmExtent | None:
    block, ds64 = 0, None
    for cid, start, length in _chunks(fh, size, endian):
        if cid == b"fmt " and length >= 16:
            fh.seek(start)
            block = struct.unpack(endian + "HHIIH", fh.read(14))[4]
        elif cid == b"ds64" and length >= 16:
            fh.seek(start)
            ds64 = struct.unpack("<QQ", fh.read(16))[1]  # RF64: the real 64-bit data size
        elif cid == b"data":
            claimed = ds64 if length == 0xFFFFFFFF and ds64 is not None else length
            return _extent(claimed, start, size, block)
    return None


def _aiff(fh: BinaryIO, size: int) -> PcmExtent | None:
    block, ssnd = 0, None
    for cid, start, length in _chunks(fh, size, ">"):
        if cid == b"COMM" and length >= 18:
            fh.seek(start)
            raw = fh.read(min(length, 22))
            channels, _, bits = struct.unpack(">hIh", raw[:8])
            kind = raw[18:22] if len(raw) >= 22 else b"NONE"
            width = _AIFC_BYTES.get(kind, (bits + 7) // 8 if kind in _AIFC_PCM else 0)
            block = max(channels, 0) * width
        elif cid == b"SSND" and length >= 8:
            fh.seek(start)
            offset = struct.unpack(">I", fh.read(4))[0]
            ssnd = (length - 8 - offset, start + 8 + offset)
        if block and ssnd:
            return _extent(max(ssnd[0], 0), ssnd[1], size, block)
    return None
