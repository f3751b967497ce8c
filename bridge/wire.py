"""Wire-level constants of protocol v1: version, sample format, id length, size limits.

See `bridge/PROTOCOL.md`. `Limits` is what an engine accepts (advertised in `capabilities`);
`AudioSpec` describes one audio frame of a message.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from stemlink.bridge.fields import INT64, HeaderReader

PROTOCOL_VERSION = 1
DTYPE = np.dtype("<f4")
ID_MAX_LEN = 64
SAMPLE_RATES = (1000, 384000)


@dataclass(frozen=True)
class Limits:
    """What an engine accepts; advertised in `capabilities`."""

    max_frames: int = 2**26  # per audio input (~25 min at 44.1 kHz)
    max_channels: int = 16
    max_inputs: int = 8
    max_message_bytes: int = 2**30  # all audio frames of one message together
    max_header_bytes: int = 64 * 1024
    queue_size: int = 8

    def to_header(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_header(cls, r: HeaderReader) -> "Limits":
        return cls(**{f.name: r.int(f.name, 0, INT64[1]) for f in fields(cls)})


@dataclass(frozen=True)
class AudioSpec:
    """Describes one audio frame: `channels` x `frames` float32 samples, planar."""

    name: str
    channels: int
    frames: int

    @property
    def nbytes(self) -> int:
        return self.channels * self.frames * DTYPE.itemsize
