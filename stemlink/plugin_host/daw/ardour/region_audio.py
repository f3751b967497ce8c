"""An Ardour region's audio exactly as Ardour plays it, as a WAV the host can send.

Ardour reads a region's channels sample for sample from its sources: `length` samples from
`start`, at the session rate, whatever rate a file's header claims (a 44.1 kHz file in a
48 kHz session plays 48,000 of its samples per second; Ardour resamples only when importing).
`ardour7-export` confirms it: the rendered track equals the source samples `start .. start +
length`, exactly, apart from the region's fades. So the region is read the same way, scaled by
the region's gain (`scale-amplitude`) and written as one float32 WAV at the session rate: the
stems that come back are at the session rate, with the region's length, ready to be placed at
its position. The session's own files are only ever opened for reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from stemlink.errors import InvalidInput
from stemlink.plugin_host.daw.ardour.session import ArdourRegion
from stemlink.plugin_host.region import Region, read_region


def region_audio(region: ArdourRegion) -> np.ndarray:
    """(channels, length) float32: the region's samples from its sources, times its gain."""
    out = np.empty((region.channels, region.length), dtype=np.float32)
    for c, source in enumerate(region.sources):
        try:
            audio, _, _ = read_region(Region(source.path, region.start, region.length, channels=(source.channel,)))
        except InvalidInput as exc:
            raise InvalidInput(f"region {region.name!r} (id {region.id}), channel {c + 1}: {exc.message}", field="regions") from exc
        out[c] = audio[0]
    if region.gain != 1.0:
        out *= np.float32(region.gain)
    return out


def write_region_wav(region: ArdourRegion, sample_rate: int, path: Path) -> Path:
    """The region as a float32 WAV at the session rate (the host's input file for this region)."""
    audio = region_audio(region)
    with AudioFile(str(path), "w", sample_rate, region.channels, bit_depth=32) as f:
        f.write(audio)
    return path
