"""Rhythmic/melodic figures, one bar at a time, for each instrument role.

Every function returns a list of `Hit` (position and length in beats from the bar start,
MIDI pitches, velocity, strum direction). `arrange.py` places bars in time and humanizes.
Randomness comes only from the `rng` argument (numpy Generator), so a seed fixes the music.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stemlink.lab.data.styles import DRUM_NOTES, Style
from stemlink.lab.data.theory import Chord, close_voicing, guitar_voicing, nearest_pitch

VEL = {"X": 112, "x": 92, "g": 42}


@dataclass
class Hit:
    pos: float  # beats from bar start
    length: float  # beats
    pitches: tuple[int, ...]
    velocity: int
    strum: int = 0  # 0 none, +1 down (low->high), -1 up (high->low)


@dataclass
class BarContext:
    """What a figure needs to know about the bar it fills."""

    style: Style
    chord: Chord
    next_chord: Chord
    bar_index: int  # index in the song
    section: str  # intro/verse/chorus/bridge/outro
    first_of_section: bool
    last_of_section: bool
    scale: tuple[int, ...]


def _beats(ctx: BarContext) -> int:
    return ctx.style.beats


def _sub(ctx: BarContext) -> float:
    """Smallest figure subdivision in beats (8ths, or triplet 8ths in 6/8 and swing grids)."""
    return 1.0 / 3.0 if ctx.style.steps_per_beat == 3 else 0.5


# ---------------------------------------------------------------- drums
def drums_bar(ctx: BarContext, rng: np.random.Generator) -> list[Hit]:
    style = ctx.style
    step = 1.0 / style.steps_per_beat
    hits: list[Hit] = []
    for voice, pattern in style.drums.items():
        for i, ch in enumerate(pattern):
            if ch == ".":
                # sparse variations: extra ghost kick/hat
                if voice in ("hat", "kick") and rng.random() < 0.04:
                    hits.append(Hit(i * step, 0.25, (DRUM_NOTES[voice],), VEL["g"]))
                continue
            note = DRUM_NOTES[voice]
            if voice == "hat" and rng.random() < 0.05:
                note = DRUM_NOTES["open"]
            hits.append(Hit(i * step, 0.25, (note,), VEL[ch]))
    if ctx.first_of_section and ctx.section in ("chorus", "verse", "bridge") and rng.random() < 0.8:
        hits = [h for h in hits if not (h.pos == 0 and h.pitches[0] in (DRUM_NOTES["hat"], DRUM_NOTES["ride"]))]
        hits.append(Hit(0.0, 1.0, (DRUM_NOTES["crash"],), 105))
    if ctx.last_of_section and rng.random() < 0.7:
        hits = _fill(ctx, hits, rng)
    return hits


def _fill(ctx: BarContext, hits: list[Hit], rng: np.random.Generator) -> list[Hit]:
    style = ctx.style
    fill_beats = 1 if rng.random() < 0.6 else min(2, style.beats)
    start = style.beats - fill_beats
    hits = [h for h in hits if h.pos < start or h.pitches[0] == DRUM_NOTES["kick"]]
    step = 1.0 / style.steps_per_beat
    toms = [DRUM_NOTES["snare"], DRUM_NOTES["tom_hi"], DRUM_NOTES["tom_mid"], DRUM_NOTES["tom_lo"], DRUM_NOTES["floor"]]
    n = int(round(fill_beats / step))
    for k in range(n):
        idx = min(len(toms) - 1, int(k * len(toms) / n + rng.integers(0, 2)))
        hits.append(Hit(start + k * step, 0.25, (toms[idx],), int(80 + 30 * k / max(1, n - 1))))
    return hits


# ---------------------------------------------------------------- bass
def _degree(ctx: BarContext, deg: str, root_note: int, rng: np.random.Generator) -> int:
    c = ctx.chord
    if deg == "R":
        return root_note
    if deg == "8":
        return root_note + 12
    if deg == "5":
        return nearest_pitch(c.fifth, root_note + 5, 28, 55)
    if deg == "3":
        return root_note + ((c.third - c.root) % 12)
    if deg == "6":
        return root_note + 9
    if deg == "b7":
        return root_note + 10
    if deg == "app":  # approach the next chord's root from a semitone or a fifth away
        target = nearest_pitch(ctx.next_chord.root, root_note, 28, 55)
        return target + int(rng.choice([-1, 1, -5, 2]))
    raise ValueError(deg)


BASS_FIGURES: dict[str, list[tuple[float, float, str]]] = {
    "pop": [(0, 1.5, "R"), (1.5, 1.0, "R"), (2.5, 0.5, "5"), (3, 0.5, "R"), (3.5, 0.5, "app")],
    "funk": [(0, 0.5, "R"), (0.75, 0.25, "8"), (1.5, 0.25, "R"), (2, 0.5, "5"), (2.75, 0.25, "R"), (3.25, 0.25, "b7"), (3.5, 0.5, "app")],
    "bossa": [(0, 1.5, "R"), (1.5, 0.5, "5"), (2, 1.5, "R"), (3.5, 0.5, "5")],
    "reggae": [(0, 0.75, "R"), (0.75, 0.25, "R"), (1.5, 0.5, "3"), (2, 1.0, "5"), (3.5, 0.5, "app")],
}


def bass_bar(ctx: BarContext, figure: str, center: int, rng: np.random.Generator) -> list[Hit]:
    beats = _beats(ctx)
    root = nearest_pitch(ctx.chord.root, center, 28, 52)
    plan: list[tuple[float, float, str]]
    if figure in BASS_FIGURES and beats == 4:
        plan = list(BASS_FIGURES[figure])
    elif figure == "root8":
        plan = [(p, 0.45, "R") for p in np.arange(0, beats, _sub(ctx))]
        if rng.random() < 0.4:
            plan[-1] = (plan[-1][0], plan[-1][1], "app")
    elif figure == "octave":
        plan = [(p, 0.4, "R" if k % 2 == 0 else "8") for k, p in enumerate(np.arange(0, beats, 0.5))]
    elif figure == "root_fifth":
        plan = [(b, 0.9, "R" if b % 2 == 0 else "5") for b in range(beats)]
    elif figure == "waltz":
        plan = [(0, 1.0, "R" if ctx.bar_index % 2 == 0 else "5")]
        if rng.random() < 0.3:
            plan.append((2, 1.0, "5"))
    elif figure == "long":
        plan = [(0, beats - 0.6, "R")]
        if rng.random() < 0.5:
            plan.append((beats - 0.5, 0.45, "app" if rng.random() < 0.5 else "5"))
    elif figure == "boogie":
        degs = ["R", "3", "5", "6"] if ctx.bar_index % 2 == 0 else ["b7", "6", "5", "3"]
        plan = []
        for b in range(beats):
            d = degs[b % 4]
            plan += [(b, 0.6, d), (b + 2 / 3, 0.3, d)]
    elif figure == "walking":
        return _walking(ctx, root, rng)
    else:  # any figure undefined for this meter: root on each beat
        plan = [(b, 0.9, "R") for b in range(beats)]
    out = []
    for pos, length, deg in plan:
        vel = 96 if pos == 0 else 84
        out.append(Hit(float(pos), float(length), (_degree(ctx, deg, root, rng),), vel))
    if figure == "funk":  # ghost notes
        for p in (1.0, 2.5):
            if rng.random() < 0.5:
                out.append(Hit(p, 0.12, (root,), 45))
    return out


def _walking(ctx: BarContext, root: int, rng: np.random.Generator) -> list[Hit]:
    beats = _beats(ctx)
    target = nearest_pitch(ctx.next_chord.root, root, 28, 52)
    notes = [root]
    chord_pcs = set(ctx.chord.tones)
    scale = set(ctx.scale) | chord_pcs
    for b in range(1, beats):
        if b == beats - 1:
            notes.append(target + int(rng.choice([-1, 1])))
            continue
        prev = notes[-1]
        direction = 1 if target >= prev else -1
        options = [prev + direction * s for s in (1, 2, 3, 4) if (prev + direction * s) % 12 in scale]
        tones = [n for n in options if n % 12 in chord_pcs]
        pick = tones[0] if tones and rng.random() < 0.6 else (options[0] if options else prev)
        notes.append(int(min(55, max(28, pick))))
    return [Hit(float(b), 0.92, (n,), 92 if b == 0 else 80 + int(rng.integers(0, 8))) for b, n in enumerate(notes)]


# ---------------------------------------------------------------- comping (piano, guitar, pads)
COMP_RHYTHMS: dict[str, list[tuple[float, float]]] = {
    "syncop": [(0, 1.4), (1.5, 1.4), (3, 0.9)],
    "bossa": [(0, 0.6), (0.75, 0.6), (1.5, 0.9), (2.5, 0.6), (3.25, 0.6)],
    "charleston": [(0, 0.5), (1.5, 0.5)],
}


def comp_bar(ctx: BarContext, figure: str, voicing: tuple[int, ...], rng: np.random.Generator, bass_note: int | None = None) -> list[Hit]:
    """Chordal figures shared by piano, guitar and pads. `voicing` = notes of this bar's chord."""
    beats = _beats(ctx)
    sub = _sub(ctx)
    hits: list[Hit] = []
    if figure == "pad":
        hits.append(Hit(0, beats - 0.05, voicing, 70))
    elif figure == "quarters":
        for b in range(beats):
            hits.append(Hit(b, 0.7, voicing, 82 if b == 0 else 72))
    elif figure in COMP_RHYTHMS and beats == 4:
        rhythm = list(COMP_RHYTHMS[figure])
        if figure == "charleston" and rng.random() < 0.5:
            rhythm.append((float(rng.choice([2.5, 3.0, 3.5])), 0.5))
        for pos, length in rhythm:
            hits.append(Hit(pos, length, voicing, 80 if pos == 0 else 74))
    elif figure == "offbeat":
        for b in range(beats):
            hits.append(Hit(b + 0.5, 0.3, voicing, 78))
    elif figure == "stabs":
        grid = np.arange(0, beats, 0.25 if ctx.style.steps_per_beat == 4 else sub)
        n = int(rng.integers(3, 6))
        picks = sorted(rng.choice(len(grid), size=min(n, len(grid)), replace=False))
        for k in picks:
            hits.append(Hit(float(grid[k]), 0.2, voicing, int(rng.integers(70, 100))))
    elif figure == "arpeggio":
        seq = list(voicing) + [voicing[0] + 12]
        if ctx.bar_index % 2:
            seq = seq[::-1]
        for k, pos in enumerate(np.arange(0, beats, sub)):
            hits.append(Hit(float(pos), sub * 1.8, (seq[k % len(seq)],), 70 + (8 if k == 0 else 0)))
    elif figure == "waltz":
        for b in range(1, beats):
            hits.append(Hit(b, 0.6, voicing, 70))
    elif figure == "shuffle":
        for b in range(beats):
            hits.append(Hit(b, 0.55, voicing, 80))
            hits.append(Hit(b + 2 / 3, 0.3, voicing, 66))
    else:  # unknown for this meter: one chord per beat
        for b in range(beats):
            hits.append(Hit(b, 0.8, voicing, 76))
    if bass_note is not None and figure in ("pad", "arpeggio", "waltz", "syncop", "bossa"):
        hits.append(Hit(0, min(beats, 2) - 0.05, (bass_note,), 72))
    return hits


GUITAR_STRUMS = {
    4: [(0, 1), (1, 1), (1.5, -1), (2.5, -1), (3, 1), (3.5, -1)],
    3: [(0, 1), (1, 1), (1.5, -1), (2, 1), (2.5, -1)],
    2: [(0, 1), (1 / 3, -1), (2 / 3, 1), (1, 1), (4 / 3, -1), (5 / 3, 1)],
}


def guitar_bar(ctx: BarContext, figure: str, rng: np.random.Generator, prev: tuple[int, ...] | None) -> list[Hit]:
    beats = _beats(ctx)
    if figure == "power8":
        v = guitar_voicing(ctx.chord, power=True)
        return [Hit(float(p), 0.4, v, 100 if p % 1 == 0 else 86, 1) for p in np.arange(0, beats, _sub(ctx))]
    full = guitar_voicing(ctx.chord)
    if figure == "strum":
        out = []
        for pos, d in GUITAR_STRUMS.get(beats, [(b, 1) for b in range(beats)]):
            notes = full if d > 0 else full[-4:]
            out.append(Hit(float(pos), 0.9 if d > 0 else 0.45, notes, 88 if d > 0 else 70, d))
        return out
    if figure == "scratch":
        out = []
        for k, pos in enumerate(np.arange(0, beats, 0.25)):
            accent = rng.random() < 0.25 or k % 4 == 2
            out.append(Hit(float(pos), 0.2 if accent else 0.08, full[-3:], 95 if accent else 45, 1 if k % 2 == 0 else -1))
        return out
    if figure == "train":
        low = (full[0],) if ctx.bar_index % 2 == 0 else (full[1],)
        out = []
        for b in range(beats):
            out.append(Hit(b, 0.8, low if b % 2 == 0 else full[2:], 86, 0 if b % 2 == 0 else 1))
        return out
    voicing = close_voicing(ctx.chord, 60, prev)
    return [Hit(h.pos, h.length, h.pitches, h.velocity, 1 if len(h.pitches) > 1 else 0) for h in comp_bar(ctx, figure, voicing, rng)]


# ---------------------------------------------------------------- melody (lead / woodwind)
MOTIFS: list[list[tuple[float, float]]] = [  # (pos, length) cells over one bar of 4 beats, scaled to the bar length
    [(0, 1), (1, 0.5), (1.5, 0.5), (2, 1.5)],
    [(0, 0.5), (0.5, 0.5), (1, 1), (2.5, 0.5), (3, 1)],
    [(0.5, 0.5), (1, 0.5), (1.5, 1.5), (3, 0.5), (3.5, 0.5)],
    [(0, 2), (2, 1), (3, 1)],
]


def melody_bar(
    ctx: BarContext, motif: list[tuple[float, float]], last: int, rng: np.random.Generator, lo: int = 64, hi: int = 84
) -> tuple[list[Hit], int]:
    """A phrase bar: chord tones on strong positions, scale steps between; returns (hits, last note)."""
    beats = _beats(ctx)
    scale = sorted(set(ctx.scale))
    hits = []
    for pos, length in motif:
        pos, length = pos * beats / 4, length * beats / 4
        strong = abs(pos - round(pos)) < 1e-6
        if strong:
            pcs = ctx.chord.tones
            cands = [nearest_pitch(pc, last, lo, hi) for pc in pcs]
        else:
            step = int(rng.choice([-2, -1, 1, 2]))
            pc_idx = min(range(len(scale)), key=lambda i: abs(scale[i] - last % 12))
            pc = scale[(pc_idx + step) % len(scale)]
            cands = [nearest_pitch(pc, last + step, lo, hi)]
        note = min(cands, key=lambda n: abs(n - last) + float(rng.random()))
        hits.append(Hit(pos, length * 0.9, (note,), 84 if strong else 74))
        last = note
    return hits, last
