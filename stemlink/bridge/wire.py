"""Wire-level constants of protocol v1: version, sample format, id length, size limits.

See `stemlink/bridge/PROTOCOL.md`. `Limits` is what an engine accepts (advertised in `capabilities`);
it lives in `stemlink/limits.py`, the one definition of every request bound that the wire and
the engine both check. `AudioSpec` describes one audio frame of a message.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemlink.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Limits

PROTOCOL_VERSION = 1
DTYPE = np.dtype("<f4")
ID_MAX_LEN = 64
SAMPLE_RATES = (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)

__all__ = ["PROTOCOL_VERSION", "DTYPE", "ID_MAX_LEN", "SAMPLE_RATES", "Limits", "AudioSpec"]


@dataclass(frozen=True)
class AudioSpec:
    """Describes one audio frame: `channels` x `frames` float32 samples, planar."""

    name: str
    channels: int
    frames: int

    @property
    def nbytes(self) -> int:
        return self.channels * self.frames * DTYPE.itemsize
