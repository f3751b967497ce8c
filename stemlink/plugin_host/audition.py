"""`--play`: audition audio through sounddevice (PortAudio), with clear errors when impossible.

sounddevice is imported only here and only when playing. No PortAudio library, or no output
device (e.g. a headless machine without /dev/snd or a JACK server), raises
`MissingDependency` with what to install or start; playback never crashes a job whose files
are already written.
"""

from __future__ import annotations

import numpy as np

from stemlink.errors import MissingDependency


def output_device() -> object:
    """The default output device description; `MissingDependency` when there is none."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise MissingDependency(
            f"audio playback needs sounddevice and PortAudio ({exc}): pip install sounddevice; apt-get install libportaudio2"
        ) from exc
    try:
        return sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError) as exc:
        raise MissingDependency(
            f"no audio output device ({exc}); on a headless machine start a JACK server "
            "(jackd --no-realtime -d dummy -r 48000 &) or play the written WAV files elsewhere"
        ) from exc


def play(audio: np.ndarray, sample_rate: int, *, blocking: bool = True) -> None:
    """Play (C, N) float32 audio on the default output device."""
    output_device()
    import sounddevice as sd

    try:
        sd.play(np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T), int(sample_rate))
        if blocking:
            sd.wait()
    except sd.PortAudioError as exc:
        raise MissingDependency(f"audio playback failed: {exc}") from exc
