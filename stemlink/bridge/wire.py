"""Wire-level constants of protocol v1: version, sample format, id length; `AudioSpec`.

See `stemlink/bridge/PROTOCOL.md`. Every request bound (rates, channels, frames, bytes, ...)
is the contract's `Limits` (`stemlink/contract.py`), which the wire and the engine both check.
`AudioSpec` describes one audio frame of a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROTOCOL_VERSION = 1
DTYPE = np.dtype("<f4")
ID_MAX_LEN = 64

__all__ = ["PROTOCOL_VERSION", "DTYPE", "ID_MAX_LEN", "AudioSpec"]


@dataclass(frozen=True)
class AudioSpec:
    """Describes one audio frame: `channels` x `frames` float32 samples, planar."""

    name: str
    channels: int
    frames: int

    @property
    def nbytes(self) -> int:
        return self.channels * self.frames * DTYPE.itemsize

    @property
    def shape(self) -> tuple[str, int, int]:
        """(name, channels, frames), as `stemlink.contract.check_request` takes it."""
        return (self.name, self.channels, self.frames)
