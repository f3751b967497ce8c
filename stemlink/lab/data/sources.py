"""Song sources for the renderer: each turns a seeded rng into a `SongPlan` (parts + metadata).

- ``procedural``: `arrange.arrange` (styles, progressions, sections, dropouts).
- ``chorales``: a music21 Bach chorale, one part per stem (`chorales.compose_chorale`).
- ``mma``: a chord chart played by one of Debian mma's library grooves (`mma.compose_mma`).
- ``mixed``: each track draws procedural (70%) or chorales (30%).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

SOURCES = ("procedural", "chorales", "mma", "mixed")


class SectionMeta(TypedDict):
    """One section in a song's metadata (`SongPlan.meta["sections"]`)."""

    name: str
    start: float  # seconds
    end: float  # seconds
    bars: int
    progression: str
    active: list[str]  # stem classes playing


@dataclass
class SongPlan:
    """What the renderer needs: stems (class -> Part), tempo, song metadata and tags."""

    source: str
    parts: dict  # class -> arrange.Part
    tempo: float
    meta: dict  # style, key, meter, sections, chords... (JSON-safe)
    tags: list[str]
    stem_tags: dict[str, list[str]] = field(default_factory=dict)
    stem_meta: dict[str, dict] = field(default_factory=dict)


def compose(source: str, rng: np.random.Generator, seconds: float, *, seed: int = 0, index: int = 0) -> SongPlan:
    """Draw one song from `source` (see module docstring) for track `index` of a corpus."""
    if source == "mixed":
        source = "procedural" if rng.random() < 0.7 else "chorales"
    if source == "procedural":
        return _procedural(rng, seconds)
    if source == "chorales":
        from stemlink.lab.data.chorales import compose_chorale

        return compose_chorale(rng, seconds, seed=seed, index=index)
    if source == "mma":
        from stemlink.lab.data.mma import compose_mma

        return compose_mma(rng, seconds)
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def _procedural(rng: np.random.Generator, seconds: float) -> SongPlan:
    from stemlink.lab.data.arrange import arrange

    song = arrange(rng, seconds)
    style = song.style
    bar = song.bar_seconds
    sections: list[SectionMeta] = []
    for s in song.sections:
        start = s.start_bar * bar
        if start >= seconds:
            break
        sections.append(
            {
                "name": s.name,
                "start": round(start, 4),
                "end": round(min(seconds, (s.start_bar + s.bars) * bar), 4),
                "bars": s.bars,
                "progression": s.progression,
                "active": list(s.active),
            }
        )
    chords = [{"bar": i, "time": round(i * bar, 4), "chord": c.name} for i, c in enumerate(song.chords[: song.bars]) if i * bar < seconds]
    tempo_tag = f"{int(round(song.tempo))} bpm"
    meta = {
        "style": style.name,
        "tempo": song.tempo,
        "meter": style.meter,
        "key": song.key,
        "key_root": song.key_root,
        "mode": song.mode,
        "sections": sections,
        "chords": chords,
        "figures": dict(song.figures),
    }
    tags = list(style.tags) + [song.key, style.meter, tempo_tag]
    stem_tags, stem_meta = {}, {}
    for cls, part in song.parts.items():
        figure = song.figures.get(cls, part.role)
        active = [s["name"] for s in sections if cls in s["active"]]
        stem_tags[cls] = [cls.replace("_", " "), part.instrument.lower()] + ([figure.replace("_", " ")] if figure else []) + [style.tags[0]]
        stem_meta[cls] = {"role": part.role or figure, "figure": figure, "active_sections": active}
    return SongPlan("procedural", song.parts, song.tempo, meta, tags, stem_tags, stem_meta)
