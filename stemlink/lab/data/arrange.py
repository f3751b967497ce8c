"""Procedural song arranger: one seeded song -> per-stem note lists (the MIDI of each stem).

A song has one style (groove, meter), one tempo and key, a form of sections (intro, verse,
chorus, bridge, outro) with their own chord progressions, and per-section active stems
(dropouts). Bass follows the chord roots, piano/guitar voice the chords, drums play the
style's groove with fills and crashes at section boundaries, and optional extra stems
(strings, pads, organ, brass, leads) add sustained chords, stabs or a motif-based melody.
Timing and velocity are humanized. Everything random comes from one numpy Generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stemlink.lab.data import figures as fig
from stemlink.lab.data.classes import MSDM_STEMS, gm_name
from stemlink.lab.data.styles import STYLES, Style
from stemlink.lab.data.theory import BLUES_12, PROGRESSIONS, Chord, close_voicing, key_name, nearest_pitch, realize, scale_of

EXTRA_PROGRAMS = {
    "strings": (48, 49, 50, 44),
    "synth_pad": (88, 89, 90, 91, 94),
    "organ": (16, 17, 18, 19),
    "brass": (61, 56, 57, 62),
    "synth_lead": (80, 81, 82, 84, 87),
    "woodwind": (73, 71, 65, 66, 68),
}
ROLE = {
    "drums": "groove",
    "bass": "bass line",
    "strings": "sustained chords",
    "synth_pad": "pad",
    "organ": "sustained chords",
    "brass": "stabs",
    "synth_lead": "lead melody",
    "woodwind": "melody",
}


@dataclass
class Note:
    pitch: int
    start: float  # seconds
    end: float
    velocity: int


@dataclass
class Part:
    """One stem: its class, GM program and its notes."""

    cls: str
    program: int
    is_drum: bool
    role: str
    notes: list[Note] = field(default_factory=list)
    pan: int = 64
    reverb: int = 40

    @property
    def instrument(self) -> str:
        return gm_name(self.program, self.is_drum)


@dataclass
class Section:
    name: str
    start_bar: int
    bars: int
    progression: str
    active: tuple[str, ...]


@dataclass
class Arrangement:
    style: Style
    tempo: float
    key_root: int
    mode: str
    bars: int
    sections: list[Section]
    chords: list[Chord]  # one per bar
    parts: dict[str, Part]
    figures: dict[str, str] = field(default_factory=dict)  # role -> figure name

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo

    @property
    def bar_seconds(self) -> float:
        return self.style.beats * self.beat_seconds

    @property
    def key(self) -> str:
        return key_name(self.key_root, self.mode)


FORM = ("verse", "chorus", "verse", "chorus", "bridge", "chorus", "chorus", "outro")


def _plan_sections(
    style: Style, mode: str, key_root: int, n_bars: int, chord_bars: int, classes: list[str], rng: np.random.Generator
) -> tuple[list[Section], list[Chord]]:
    """Form, progressions per section type, per-section active stems and one chord per bar."""
    if style.name == "shuffle":
        progs = {"verse": "12-bar blues", "chorus": "12-bar blues", "bridge": "12-bar blues"}
        sec_len = 12
    else:
        names = list(style.progressions) or list(PROGRESSIONS[mode])
        names = [n for n in names if n in PROGRESSIONS[mode]] or list(PROGRESSIONS[mode])
        chosen = rng.choice(names, size=3, replace=len(names) < 3)
        progs = dict(zip(("verse", "chorus", "bridge"), (str(c) for c in chosen), strict=False))
        sec_len = 4 * chord_bars if n_bars <= 24 else 8  # several sections even in a short clip
    sections: list[Section] = []
    bar = 0
    intro_len = (2 if sec_len <= 4 else int(rng.choice([2, 4]))) if n_bars > 8 else 0
    order = (["intro"] if intro_len else []) + list(FORM) * 4
    k = 0
    while bar < n_bars:
        name = order[k]
        k += 1
        length = intro_len if name == "intro" else sec_len
        prog = progs.get(name, progs["verse"])
        sections.append(Section(name, bar, length, prog, active_set(name, classes, rng)))
        bar += length
    ensure_everyone_plays([s for s in sections if s.start_bar < max(1, n_bars - 1)], classes, rng)
    chords: list[Chord] = []
    for sec in sections:
        if sec.progression == "12-bar blues":
            cycle = realize(BLUES_12, key_root, False)
            per = 1
        else:
            cycle = realize(PROGRESSIONS[mode][sec.progression], key_root, style.sevenths)
            per = chord_bars
        for b in range(sec.bars):
            chords.append(cycle[(b // per) % len(cycle)])
    return sections, chords


def active_set(name: str, classes: list[str], rng: np.random.Generator) -> tuple[str, ...]:
    """Stems playing in a section of type `name` (dropout odds per type; >= 2, intro >= 1)."""
    drop = {"intro": 0.55, "verse": 0.25, "chorus": 0.05, "bridge": 0.4, "outro": 0.35}[name]
    active = [c for c in classes if rng.random() >= drop]
    if name == "bridge" and "drums" in active and rng.random() < 0.5:
        active.remove("drums")
    minimum = 1 if name == "intro" else 2
    rest = [c for c in classes if c not in active]
    while len(active) < min(minimum, len(classes)):
        pick = rest.pop(int(rng.integers(len(rest))))
        active.append(pick)
    return tuple(c for c in classes if c in active)


def ensure_everyone_plays(sections: list[Section], classes: list[str], rng: np.random.Generator) -> None:
    """Add each stem that plays in none of `sections` to one random non-intro section."""
    for c in classes:
        if not any(c in s.active for s in sections):
            candidates = [s for s in sections if s.name != "intro"] or sections
            s = candidates[int(rng.integers(len(candidates)))]
            s.active = tuple(x for x in classes if x in s.active or x == c)


def _draw_program(style: Style, cls: str, rng: np.random.Generator) -> tuple[int, bool]:
    if cls == "drums":
        return int(rng.choice(style.kits)), True
    options = style.programs.get(cls) or EXTRA_PROGRAMS[cls]
    return int(rng.choice(options)), False


def arrange(rng: np.random.Generator, seconds: float, style_name: str | None = None) -> Arrangement:
    """Compose one song of at least `seconds` seconds (plus one bar of tail)."""
    style = STYLES[style_name] if style_name else STYLES[str(rng.choice(sorted(STYLES)))]
    tempo = float(int(rng.integers(style.tempo[0], style.tempo[1] + 1)))
    mode = str(rng.choice(style.modes))
    key_root = int(rng.integers(12))
    bar_seconds = style.beats * 60.0 / tempo
    n_bars = int(math.ceil(seconds / bar_seconds)) + 1
    chord_bars = 2 if (tempo >= 140 and style.beats >= 3 and rng.random() < 0.6) else 1

    classes = list(MSDM_STEMS)
    if rng.random() < 0.1:
        classes.remove(str(rng.choice(["guitar", "piano"])))
    n_extra = int(rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15]))
    extras = [str(x) for x in rng.choice(style.extras, size=min(n_extra, len(style.extras)), replace=False)]
    classes += extras

    sections, chords = _plan_sections(style, mode, key_root, n_bars, chord_bars, classes, rng)
    parts: dict[str, Part] = {}
    for cls in classes:
        program, is_drum = _draw_program(style, cls, rng)
        parts[cls] = Part(
            cls,
            program,
            is_drum,
            ROLE.get(cls, ""),
            pan=int(np.clip(64 + rng.normal(0, 22), 20, 108)) if cls not in ("bass", "drums") else 64,
            reverb=int(rng.integers(15, 70)),
        )
    song = Arrangement(style, tempo, key_root, mode, n_bars, sections, chords, parts)
    _perform(song, rng)
    return song


def _perform(song: Arrangement, rng: np.random.Generator) -> None:
    """Fill every part's notes bar by bar (figures), then place them in time with humanization."""
    style = song.style
    scale = scale_of(song.key_root, song.mode)
    bass_fig = str(rng.choice(style.bass))
    piano_fig = str(rng.choice(style.piano))
    guitar_fig = str(rng.choice(style.guitar))
    bass_center = int(rng.integers(33, 41))
    piano_center = int(rng.integers(58, 68))
    extra_fig = {c: ("stabs" if c == "brass" else "pad") for c in song.parts}
    motif = fig.MOTIFS[int(rng.integers(len(fig.MOTIFS)))]
    lead_last = 72
    prev_piano: tuple[int, ...] | None = None
    prev_gtr: tuple[int, ...] | None = None
    prev_pad: tuple[int, ...] | None = None
    bar_of = {}
    for sec in song.sections:
        for b in range(sec.bars):
            bar_of[sec.start_bar + b] = (sec, b)
    song.figures = {"bass": bass_fig, "piano": piano_fig, "guitar": guitar_fig}
    for bar in range(song.bars):
        sec, b = bar_of[bar]
        ctx = fig.BarContext(
            style, song.chords[bar], song.chords[min(bar + 1, len(song.chords) - 1)], bar, sec.name, b == 0, b == sec.bars - 1, scale
        )
        t0 = bar * song.bar_seconds
        for cls in sec.active:
            part = song.parts[cls]
            if cls == "drums":
                hits = fig.drums_bar(ctx, rng)
            elif cls == "bass":
                hits = fig.bass_bar(ctx, bass_fig, bass_center, rng)
            elif cls == "piano":
                prev_piano = close_voicing(ctx.chord, piano_center, prev_piano)
                lh = nearest_pitch(ctx.chord.root, 45, 36, 55)
                hits = fig.comp_bar(ctx, piano_fig, prev_piano, rng, bass_note=lh)
            elif cls == "guitar":
                hits = fig.guitar_bar(ctx, guitar_fig, rng, prev_gtr)
                prev_gtr = hits[0].pitches if hits else prev_gtr
            elif cls in ("synth_lead", "woodwind"):
                if b % 4 == 3 and rng.random() < 0.6:  # phrase rest
                    continue
                hits, lead_last = fig.melody_bar(ctx, motif, lead_last, rng)
            else:
                prev_pad = close_voicing(ctx.chord, 67 if cls != "organ" else 60, prev_pad)
                hits = fig.comp_bar(ctx, extra_fig[cls], prev_pad, rng)
            _place(part, hits, t0, song, rng)


def _swing(pos: float, style: Style) -> float:
    frac = pos % 1.0
    if style.swing and style.steps_per_beat == 4 and (abs(frac - 0.25) < 1e-6 or abs(frac - 0.75) < 1e-6):
        return pos + style.swing * 0.25
    if style.swing and style.steps_per_beat == 2 and abs(frac - 0.5) < 1e-6:
        return pos + style.swing * 0.5
    return pos


def _place(part: Part, hits: list[fig.Hit], t0: float, song: Arrangement, rng: np.random.Generator) -> None:
    beat = song.beat_seconds
    sd = song.style.looseness_ms / 1000.0 * (0.6 if part.is_drum else 1.0)
    for h in hits:
        start = t0 + _swing(h.pos, song.style) * beat + float(rng.normal(0, sd))
        vel_base = int(np.clip(h.velocity + rng.normal(0, 6), 20, 127))
        length = max(0.05, h.length * beat * (0.5 if part.is_drum else 0.92))
        pitches = sorted(h.pitches, reverse=h.strum < 0)
        spread = float(rng.uniform(0.006, 0.016)) if h.strum else 0.0
        for k, p in enumerate(pitches):
            s = max(0.0, start + k * spread)
            v = int(np.clip(vel_base - (3 * k if h.strum else 0), 1, 127))
            part.notes.append(Note(int(p), s, s + length, v))
