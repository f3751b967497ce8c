"""In-process FluidSynth (libfluidsynth via ctypes): the soundfont is loaded once per process.

`FluidRenderer(sample_rate).render(part, num_samples)` plays one `arrange.Part` sample-exactly:
events are sent between `fluid_synth_write_float` blocks at their sample positions, so the
result depends only on the notes (deterministic). Each stem gets a fresh synth (no reverb or
voice state leaks between stems) that shares the already-loaded soundfont. Settings match the
CLI path (`synth.py`): gain 0.5, default reverb and chorus.
Raises `MissingDependency` when the library or the soundfont is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from stemlink.errors import MissingDependency
from stemlink.lab.data.synth import APT_HINT, soundfont_path

_LIB = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise MissingDependency(f"libfluidsynth not found; {APT_HINT}") from exc
        vp, cp, ci, cd = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double
        sig = {
            "new_fluid_settings": ([], vp),
            "delete_fluid_settings": ([vp], None),
            "fluid_settings_setnum": ([vp, cp, cd], ci),
            "fluid_settings_setint": ([vp, cp, ci], ci),
            "new_fluid_synth": ([vp], vp),
            "delete_fluid_synth": ([vp], None),
            "fluid_synth_sfload": ([vp, cp, ci], ci),
            "fluid_synth_get_sfont_by_id": ([vp, ci], vp),
            "fluid_synth_add_sfont": ([vp, vp], ci),
            "fluid_synth_remove_sfont": ([vp, vp], ci),
            "fluid_synth_noteon": ([vp, ci, ci, ci], ci),
            "fluid_synth_noteoff": ([vp, ci, ci], ci),
            "fluid_synth_cc": ([vp, ci, ci, ci], ci),
            "fluid_synth_program_select": ([vp, ci, ci, ci, ci], ci),
            "fluid_synth_write_float": ([vp, ci, vp, ci, ci, vp, ci, ci], ci),
            "fluid_set_log_function": ([ci, vp, vp], vp),
        }
        for fn, (args, res) in sig.items():
            f = getattr(lib, fn)
            f.argtypes, f.restype = args, res
        lib.fluid_set_log_function(2, None, None)  # FLUID_WARN: "no preset" before add_sfont
        _LIB = lib
    return _LIB


def check_lib() -> None:
    """Raise MissingDependency unless libfluidsynth loads and the soundfont file exists."""
    _lib()
    sf2 = soundfont_path()
    if not sf2.is_file():
        raise MissingDependency(f"General MIDI soundfont not found at {sf2} (env STEMLINK_SOUNDFONT); {APT_HINT}")


class FluidRenderer:
    """One loaded soundfont at one sample rate; `render` makes a fresh synth per stem."""

    def __init__(self, sample_rate: int):
        check_lib()
        sf2 = soundfont_path()
        self.lib = _lib()
        self.sample_rate = int(sample_rate)
        self.settings = self._settings()
        self.host = self.lib.new_fluid_synth(self.settings)
        sfid = self.lib.fluid_synth_sfload(self.host, str(sf2).encode(), 1)
        if sfid < 0:
            raise MissingDependency(f"FluidSynth could not load the soundfont {sf2}; {APT_HINT}")
        self.sfont = self.lib.fluid_synth_get_sfont_by_id(self.host, sfid)

    def _settings(self) -> int:
        s = self.lib.new_fluid_settings()
        self.lib.fluid_settings_setnum(s, b"synth.sample-rate", float(self.sample_rate))
        self.lib.fluid_settings_setnum(s, b"synth.gain", 0.5)
        self.lib.fluid_settings_setint(s, b"synth.cpu-cores", 1)
        return s

    def render(self, part, num_samples: int) -> np.ndarray:
        """Notes of one `arrange.Part` -> float32 (2, num_samples)."""
        lib = self.lib
        out = np.zeros((2, num_samples), dtype=np.float32)
        synth = lib.new_fluid_synth(self.settings)
        try:
            sfid = lib.fluid_synth_add_sfont(synth, self.sfont)
            chan = 9 if part.is_drum else 0
            lib.fluid_synth_program_select(synth, chan, sfid, 128 if part.is_drum else 0, part.program)
            for cc, value in ((10, part.pan), (91, part.reverb), (7, 100)):
                lib.fluid_synth_cc(synth, chan, cc, value)
            events = []
            for n in part.notes:
                events.append((int(round(n.start * self.sample_rate)), 1, n.pitch, n.velocity))
                events.append((int(round(n.end * self.sample_rate)), 0, n.pitch, 0))
            events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at one sample
            pos = 0
            left, right = out[0], out[1]
            lp, rp = left.ctypes.data, right.ctypes.data
            for t, on, pitch, vel in events:
                t = min(t, num_samples)
                if t > pos:
                    self._write(synth, lp, rp, pos, t)
                    pos = t
                if pos >= num_samples:
                    break
                if on:
                    lib.fluid_synth_noteon(synth, chan, pitch, vel)
                else:
                    lib.fluid_synth_noteoff(synth, chan, pitch)
            if pos < num_samples:
                self._write(synth, lp, rp, pos, num_samples)
            lib.fluid_synth_remove_sfont(synth, self.sfont)
        finally:
            lib.delete_fluid_synth(synth)
        return out

    def _write(self, synth: int, lp: int, rp: int, start: int, end: int) -> None:
        block = 4096
        while start < end:
            n = min(block, end - start)
            self.lib.fluid_synth_write_float(synth, n, lp + 4 * start, 0, 1, rp + 4 * start, 0, 1)
            start += n
