"""Text descriptions of stems, from what the corpus renderer knows of each one: the words a CLAP-style
text encoder learns (issue 14 part 3) and a producer types.

    facts = stem_facts(track, "bass")         # {"class": "bass", "instrument": "electric bass (finger)", ...}
    words = brightness_word(window, 44100)    # "dark" | "warm" | "bright", from the window's spectral centroid
    text = describe(facts, rng, brightness=words)   # "warm electric bass (finger), root fifth, low register"

Facts per stem (rendered corpora; other layouts give the class alone):
  class       the stem class ("synth_pad" -> "synth pad")
  instrument  the GM instrument it was rendered with, lower case
  family      a coarser family ("keys", "plucked strings", ...) shared by several classes
  figure      its playing style, from the arrangement ("root fifth", "strum", "sustained chords")
  register    "low", "middle" or "high" register, from the median MIDI pitch of its notes
  style       the track's style ("folk", "bossa", ...)
`describe` draws a random subset of the facts in random order (always the class or the instrument,
so a description names what sounds), optionally with a brightness word, joined by ", ".
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from stemlink.lab.data.corpus import Track

FAMILY = {
    "bass": "low end",
    "drums": "percussion",
    "percussion": "percussion",
    "guitar": "plucked strings",
    "piano": "keys",
    "organ": "keys",
    "strings": "orchestral",
    "brass": "winds",
    "woodwind": "winds",
    "synth_lead": "synth",
    "synth_pad": "synth",
}
REGISTERS = ((48, "low"), (67, "middle"), (128, "high"))  # median MIDI pitch below -> register
BRIGHTNESS = ((900.0, "dark"), (2200.0, "warm"), (float("inf"), "bright"))  # spectral centroid (Hz) below -> word


@lru_cache(maxsize=4096)
def _median_pitch(path: str) -> float | None:
    try:
        import mido  # type: ignore[import-untyped]

        pitches = [msg.note for msg in mido.MidiFile(path) if msg.type == "note_on" and msg.velocity > 0]
    except (OSError, ValueError, EOFError, ImportError):
        return None
    return float(np.median(pitches)) if pitches else None


def register_word(median_pitch: float) -> str:
    return next(word for limit, word in REGISTERS if median_pitch < limit)


def stem_facts(track: Track, cls: str) -> dict[str, str]:
    info = track.meta.get("stems", {}).get(cls, {})
    facts = {"class": cls.replace("_", " ")}
    if cls in FAMILY:
        facts["family"] = FAMILY[cls]
    if info.get("instrument"):
        facts["instrument"] = str(info["instrument"]).lower()
    if info.get("figure"):
        facts["figure"] = str(info["figure"]).replace("_", " ")
    style = track.meta.get("style")
    if style:
        facts["style"] = str(style).replace("_", " ")
    midi = info.get("midi")
    if midi and not info.get("is_drum") and track.stems.get(cls):
        pitch = _median_pitch(str(Path(track.stems[cls][0]).parent / midi))
        if pitch is not None:
            facts["register"] = f"{register_word(pitch)} register"
    return facts


def brightness_word(audio: np.ndarray, sample_rate: int) -> str | None:
    """Spectral centroid of a (T,) or (C, T) window -> "dark" / "warm" / "bright"; None when silent."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    power = np.abs(np.fft.rfft(x)) ** 2
    total = power.sum()
    if total < 1e-12:
        return None
    centroid = float((power * np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate)).sum() / total)
    return next(word for limit, word in BRIGHTNESS if centroid < limit)


def describe(facts: dict[str, str], rng: np.random.Generator, *, brightness: str | None = None, full: bool = False) -> str:
    """A description of one stem: every fact in a fixed order if `full`, else a random subset in
    random order; the brightness word (always if `full`, else half the time) goes before the
    instrument or class."""
    keys = ["instrument", "class", "figure", "register", "family", "style"]
    present = [k for k in keys if k in facts]
    named = [k for k in ("instrument", "class") if k in facts]
    if full:
        chosen, head = present, named[0]
    else:
        head = named[int(rng.integers(len(named)))]
        rest = [k for k in present if k != head and rng.random() < 0.5]
        chosen = [head, *rest]
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    bright = brightness if brightness and (full or rng.random() < 0.5) else None
    return ", ".join(f"{bright} {facts[k]}" if bright and k == head else facts[k] for k in chosen)
