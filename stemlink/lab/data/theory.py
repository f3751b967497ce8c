"""Music theory for the procedural arranger: keys, chord qualities, progressions, voicings.

Pitch classes are integers 0-11 (C=0); MIDI notes are integers (middle C = 60).
Pure functions and constant tables only.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: chord quality -> intervals above the root (semitones)
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
}
QUALITY_SUFFIX = {"maj": "", "min": "m", "dim": "dim", "sus4": "sus4", "7": "7", "maj7": "maj7", "m7": "m7", "m7b5": "m7b5"}
#: triad -> its seventh-chord colour (jazzy styles)
SEVENTHS = {"maj": "maj7", "min": "m7", "dim": "m7b5"}

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
BLUES_SCALE = (0, 3, 5, 6, 7, 10)

#: progressions as (semitones above the key root, quality) per chord, by mode
PROGRESSIONS: dict[str, dict[str, tuple[tuple[int, str], ...]]] = {
    "major": {
        "I-V-vi-IV": ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
        "I-IV-V-I": ((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")),
        "I-vi-IV-V": ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
        "vi-IV-I-V": ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
        "I-bVII-IV-I": ((0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")),
        "ii-V-I-vi": ((2, "m7"), (7, "7"), (0, "maj7"), (9, "m7")),
        "I-iii-IV-V": ((0, "maj"), (4, "min"), (5, "maj"), (7, "maj")),
        "IV-I-V-vi": ((5, "maj"), (0, "maj"), (7, "maj"), (9, "min")),
        "I-IV-ii-V": ((0, "maj"), (5, "maj"), (2, "min"), (7, "7")),
    },
    "minor": {
        "i-VI-III-VII": ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),
        "i-iv-v-i": ((0, "min"), (5, "min"), (7, "min"), (0, "min")),
        "i-VII-VI-V": ((0, "min"), (10, "maj"), (8, "maj"), (7, "maj")),
        "ii-V-i-i": ((2, "m7b5"), (7, "7"), (0, "m7"), (0, "m7")),
        "i-iv-VII-III": ((0, "min"), (5, "min"), (10, "maj"), (3, "maj")),
        "i-VI-iv-V": ((0, "min"), (8, "maj"), (5, "min"), (7, "7")),
        "i-III-VII-iv": ((0, "min"), (3, "maj"), (10, "maj"), (5, "min")),
    },
}
BLUES_12 = ((0, "7"),) * 4 + ((5, "7"),) * 2 + ((0, "7"),) * 2 + ((7, "7"), (5, "7"), (0, "7"), (7, "7"))

#: guitar-like voicings (intervals above a low root, bass string first)
GUITAR_SHAPES = {
    "maj": (0, 7, 12, 16, 19, 24),
    "min": (0, 7, 12, 15, 19, 24),
    "dim": (0, 6, 12, 15),
    "sus4": (0, 7, 12, 17, 19),
    "7": (0, 7, 10, 16, 19, 24),
    "maj7": (0, 7, 11, 16, 19),
    "m7": (0, 7, 10, 15, 19, 24),
    "m7b5": (0, 6, 10, 15, 18),
}


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class and quality name (a key of `QUALITIES`)."""

    root: int
    quality: str

    @property
    def tones(self) -> tuple[int, ...]:
        """Pitch classes of the chord, root first."""
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality])

    @property
    def name(self) -> str:
        return NOTE_NAMES[self.root] + QUALITY_SUFFIX[self.quality]

    @property
    def third(self) -> int:
        return (self.root + QUALITIES[self.quality][1]) % 12

    @property
    def fifth(self) -> int:
        return (self.root + QUALITIES[self.quality][2]) % 12


def key_name(root: int, mode: str) -> str:
    return f"{NOTE_NAMES[root]} {mode}"


def scale_of(root: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of the key's scale (major or natural minor)."""
    steps = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    return tuple((root + s) % 12 for s in steps)


def realize(progression: tuple[tuple[int, str], ...], key_root: int, sevenths: bool) -> list[Chord]:
    """Turn a relative progression into chords in a key (optionally seventh colours)."""
    chords = []
    for offset, quality in progression:
        if sevenths:
            quality = SEVENTHS.get(quality, quality)
        chords.append(Chord((key_root + offset) % 12, quality))
    return chords


def nearest_pitch(pc: int, target: int, lo: int = 0, hi: int = 127) -> int:
    """The MIDI note of pitch class `pc` closest to `target`, kept inside [lo, hi]."""
    base = target - ((target - pc) % 12)
    candidates = [n for n in (base, base + 12, base - 12) if lo <= n <= hi]
    if not candidates:
        n = lo + ((pc - lo) % 12)
        return n
    return min(candidates, key=lambda n: (abs(n - target), n))


def close_voicing(chord: Chord, center: int, previous: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A close-position voicing near `center`, voice-led from `previous` when given.

    Tries every inversion in the octaves around `center` and keeps the one with the smallest
    total movement from the previous voicing (or distance to the center).
    """
    tones = chord.tones
    best: tuple[int, ...] | None = None
    best_cost = None
    for inv in range(len(tones)):
        order = tones[inv:] + tones[:inv]
        for base_oct in (center - 12, center - 6, center):
            notes = []
            note = nearest_pitch(order[0], base_oct)
            notes.append(note)
            for pc in order[1:]:
                note = note + ((pc - note) % 12 or 12)
                notes.append(note)
            voicing = tuple(notes)
            mid = sum(voicing) / len(voicing)
            if previous:
                prev_mid = sum(previous) / len(previous)
                cost = abs(mid - prev_mid) + 0.5 * abs(mid - center)
            else:
                cost = abs(mid - center)
            if best_cost is None or cost < best_cost:
                best, best_cost = voicing, cost
    assert best is not None
    return best


def guitar_voicing(chord: Chord, power: bool = False) -> tuple[int, ...]:
    """A six-string-like voicing with the root between E2 (40) and D#3 (51)."""
    root = 40 + ((chord.root - 40) % 12)
    shape = (0, 7, 12) if power else GUITAR_SHAPES[chord.quality]
    return tuple(root + i for i in shape)
