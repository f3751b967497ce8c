"""Render one stem's notes to audio with the FluidSynth CLI and a General MIDI soundfont.

`check_synth()` raises `MissingDependency` (with the apt command) when fluidsynth or the
soundfont is missing. `render_part()` writes a one-instrument MIDI file and renders it to a
float32 WAV; the returned array is (2, n) at the requested rate, trimmed/padded to n.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from stemlink.errors import MissingDependency

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
APT_HINT = "install it with: sudo apt-get install -y fluidsynth fluid-soundfont-gm (or run `bash setup.sh install`)"


def soundfont_path() -> Path:
    """The GM soundfont (env STEMLINK_SOUNDFONT overrides the Debian FluidR3_GM path)."""
    return Path(os.environ.get("STEMLINK_SOUNDFONT", DEFAULT_SOUNDFONT))


def check_synth() -> tuple[str, Path]:
    """Return (fluidsynth executable, soundfont path) or raise MissingDependency."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MissingDependency(f"the FluidSynth command line program `fluidsynth` is not on PATH; {APT_HINT}")
    sf2 = soundfont_path()
    if not sf2.is_file():
        raise MissingDependency(f"General MIDI soundfont not found at {sf2} (env STEMLINK_SOUNDFONT); {APT_HINT}")
    return exe, sf2


def write_midi(part, path: Path, tempo: float) -> None:
    """Write one `arrange.Part` as a single-instrument MIDI file (pan and reverb CCs at t=0)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=float(tempo))
    inst = pretty_midi.Instrument(program=part.program, is_drum=part.is_drum, name=part.cls)
    inst.control_changes += [
        pretty_midi.ControlChange(10, part.pan, 0.0),
        pretty_midi.ControlChange(91, part.reverb, 0.0),
        pretty_midi.ControlChange(7, 100, 0.0),
    ]
    for n in part.notes:
        inst.notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end))
    pm.instruments.append(inst)
    pm.write(str(path))


def render_midi(midi_path: Path, sample_rate: int, num_samples: int, workdir: Path) -> np.ndarray:
    """FluidSynth-render a MIDI file; returns float32 (2, num_samples)."""
    from scipy.io import wavfile

    exe, sf2 = check_synth()
    wav_path = workdir / (midi_path.stem + ".wav")
    cmd = [exe, "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-O", "float", "-T", "wav", "-F", str(wav_path), str(sf2), str(midi_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wav_path.exists():
        raise RuntimeError(f"fluidsynth failed ({proc.returncode}) on {midi_path}: {proc.stderr.strip()[:500]}")
    with warnings.catch_warnings():  # fluidsynth writes a LIST chunk scipy does not parse
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        rate, data = wavfile.read(str(wav_path))
    wav_path.unlink()
    if rate != sample_rate:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {sample_rate}")
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = np.stack([data, data], axis=1)
    out = np.zeros((2, num_samples), dtype=np.float32)
    n = min(num_samples, data.shape[0])
    out[:, :n] = data[:n, :2].T
    return out


def render_part(part, tempo: float, sample_rate: int, num_samples: int, midi_out: Path | None = None) -> np.ndarray:
    """Notes of one stem -> float32 audio (2, num_samples); silence when the part has no notes.

    `midi_out`: also keep the stem's MIDI file there.
    """
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / f"{part.cls}.mid"
        write_midi(part, midi, tempo)
        if midi_out is not None:
            shutil.copyfile(midi, midi_out)
        if not part.notes:
            return np.zeros((2, num_samples), dtype=np.float32)
        return render_midi(midi, sample_rate, num_samples, Path(tmp))
