"""`--play`: audition audio through sounddevice (PortAudio), with clear errors when impossible.

sounddevice is imported only here and only when playing. No PortAudio library, or no output
device (e.g. a headless machine without /dev/snd or a JACK server), raises
`MissingDependency` with what to install or start; playback never crashes a job whose files
are already written.
"""

from __future__ import annotations

import warnings

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


def device_rate(sample_rate: int, channels: int) -> int:
    """`sample_rate` if the default output device takes it, else the device's own rate (a JACK
    server, for one, runs at one rate and PortAudio does not convert)."""
    import sounddevice as sd

    try:
        sd.check_output_settings(samplerate=sample_rate, channels=channels)
        return sample_rate
    except (sd.PortAudioError, ValueError):
        return int(round(sd.query_devices(kind="output")["default_samplerate"]))


def play(audio: np.ndarray, sample_rate: int, *, blocking: bool = True) -> None:
    """Play (C, N) float32 audio on the default output device, from its first sample; at the
    device's rate when it does not take `sample_rate` (converted with `stemlink.audio.resample`,
    a warning says so)."""
    output_device()
    import sounddevice as sd

    audio = np.asarray(audio, dtype=np.float32)
    rate = device_rate(int(sample_rate), audio.shape[0])
    if rate != sample_rate:
        from stemlink.audio.resample import resample_array

        warnings.warn(
            f"--play: the output device runs at {rate} Hz; playing the {sample_rate} Hz audio converted to {rate} Hz", stacklevel=2
        )
        audio = resample_array(audio, int(sample_rate), rate)
    try:
        sd.play(np.ascontiguousarray(audio.T), rate)
        if blocking:
            sd.wait()
    except sd.PortAudioError as exc:
        raise MissingDependency(f"audio playback failed: {exc}") from exc
