"""Chorale source: a Bach chorale from music21's bundled corpus, one voice per stem.

CocoChorales-like: the four voices (soprano, alto, tenor, bass) are played by an ensemble
drawn per track (strings, brass, woodwinds, or a random mix by register); the chorale is
transposed by -5..+6 semitones, played at 56-100 bpm with a held beat at each fermata, and
humanized (timing, velocity, phrase dynamics). Stems are keyed by class; a second voice of
the same class becomes "<class>_2" and so on (the same rule as the CocoChorales loader).

music21 is imported only here; the first parse of a chorale is slow (seconds), music21
caches parsed files after that.
"""

from __future__ import annotations

import numpy as np

from stemlink.lab.data.arrange import Note, Part
from stemlink.lab.data.classes import gm_class
from stemlink.lab.data.sources import SongPlan
from stemlink.lab.data.theory import NOTE_NAMES

VOICES = ("soprano", "alto", "tenor", "bass")
ENSEMBLES = {  # voice programs, soprano -> bass (GM)
    "string": (40, 40, 41, 42),  # violin, violin, viola, cello
    "brass": (56, 60, 57, 58),  # trumpet, french horn, trombone, tuba
    "woodwind": (73, 68, 71, 70),  # flute, oboe, clarinet, bassoon
}
RANDOM_BY_VOICE = (  # program options per voice for the "random" ensemble
    (40, 56, 73, 68, 71, 19, 52),  # soprano: violin, trumpet, flute, oboe, clarinet, organ, choir
    (40, 41, 68, 71, 60, 19, 52),
    (41, 42, 57, 60, 71, 70, 19),
    (42, 43, 58, 70, 57, 32, 19),  # bass: cello, contrabass, tuba, bassoon, trombone, acoustic bass, organ
)
_CHORALE_PATHS: list[str] | None = None


def chorale_paths() -> list[str]:
    """Sorted paths of music21's Bach chorale files (MusicXML)."""
    global _CHORALE_PATHS
    if _CHORALE_PATHS is None:
        try:
            from music21 import corpus
        except ImportError as exc:  # pragma: no cover - music21 is a project dependency
            from stemlink.errors import MissingDependency

            raise MissingDependency("the chorales source needs music21: pip install music21") from exc
        _CHORALE_PATHS = sorted(str(p) for p in corpus.getComposer("bach") if str(p).endswith(".mxl"))
    return _CHORALE_PATHS


def _satb(score) -> list | None:
    """The four SATB parts of a parsed chorale, or None when it has not exactly those."""
    by_name = {}
    for part in score.parts:
        name = (part.partName or "").strip().lower()
        for voice in VOICES:
            if name.startswith(voice) and voice not in by_name:
                by_name[voice] = part
    return [by_name[v] for v in VOICES] if len(by_name) == 4 else None


def _notes(part, transpose: int) -> tuple[list[tuple[float, float, int]], list[float]]:
    """(offset, quarter length, midi) per note, and fermata end offsets, in quarter notes."""
    notes, fermatas = [], []
    for n in part.stripTies().flatten().notes:
        pitches = [p.midi for p in n.pitches]
        if not pitches:
            continue
        start, length = float(n.offset), float(n.quarterLength)
        notes.append((start, length, max(pitches) + transpose))
        if any(e.name == "fermata" for e in getattr(n, "expressions", [])):
            fermatas.append(start + length)
    return notes, fermatas


def compose_chorale(rng: np.random.Generator, seconds: float, *, seed: int = 0, index: int = 0) -> SongPlan:
    """Chorale for track `index`, then a seeded ensemble, key and tempo; four voices as parts.

    Track i takes the i-th chorale of a permutation fixed by `seed` (the next SATB one when
    that file has other parts), so tracks of one corpus share no chorale until the corpus
    runs out of chorales (no piece in two splits).
    """
    from music21 import corpus

    paths = chorale_paths()
    perm = np.random.default_rng([seed, 7919]).permutation(len(paths))
    order = [perm[(index + k) % len(paths)] for k in range(40)]
    for k in order:
        score = corpus.parse(paths[int(k)])
        parts = _satb(score)
        if parts is not None:
            path = paths[int(k)]
            break
    else:  # pragma: no cover - the corpus has hundreds of SATB chorales
        raise RuntimeError("no four-part chorale found in music21's corpus")
    transpose = int(rng.integers(-5, 7))
    tempo = float(int(rng.integers(56, 101)))
    beat = 60.0 / tempo
    ensemble = str(rng.choice(["string", "brass", "woodwind", "random"]))
    if ensemble == "random":
        programs = tuple(int(rng.choice(opts)) for opts in RANDOM_BY_VOICE)
    else:
        programs = ENSEMBLES[ensemble]

    voice_notes = [_notes(p, transpose) for p in parts]
    fermatas = sorted(set(voice_notes[0][1]))
    length_q = max((s + d for s, d, _ in voice_notes[-1][0]), default=4.0)
    hold = 1.0  # quarter notes added after each fermata

    def to_seconds(q: float, rep: int) -> float:
        extra = hold * (sum(1 for f in fermatas if f < q + 1e-6) + rep * len(fermatas))
        return (rep * length_q + q + extra) * beat

    song_seconds = to_seconds(length_q, 0)
    repeats = int(np.ceil((seconds + 1.0) / max(song_seconds, 1e-3)))
    out_parts: dict[str, Part] = {}
    stem_tags: dict[str, list[str]] = {}
    stem_meta: dict[str, dict] = {}
    phrase = rng.uniform(-10, 10, size=len(fermatas) + 1)
    for v, (voice, program) in enumerate(zip(VOICES, programs, strict=False)):
        cls = gm_class(program)
        key, n = cls, 1
        while key in out_parts:
            n += 1
            key = f"{cls}_{n}"
        part = Part(
            key,
            program,
            False,
            f"{voice} voice",
            pan=int(np.clip(24 + 26 * v + rng.normal(0, 8), 10, 118)),
            reverb=int(rng.integers(40, 90)),
        )
        for rep in range(repeats):
            for start, length, pitch in voice_notes[v][0]:
                t0 = to_seconds(start, rep) + float(rng.normal(0, 0.008))
                t1 = to_seconds(start + length, rep) - 0.02
                if t0 >= seconds + 1.0:
                    break
                section = sum(1 for f in fermatas if f <= start)
                vel = int(np.clip(78 + phrase[section] - 4 * v + rng.normal(0, 5), 30, 120))
                part.notes.append(Note(int(np.clip(pitch, 0, 127)), max(0.0, t0), max(t0 + 0.05, t1), vel))
        out_parts[key] = part
        stem_tags[key] = [cls.replace("_", " "), part.instrument.lower(), f"{voice} voice", "chorale"]
        stem_meta[key] = {"role": f"{voice} voice", "voice": voice, "figure": "chorale voice"}
    try:
        analyzed = score.analyze("key")
        key_root = (analyzed.tonic.pitchClass + transpose) % 12
        mode = str(analyzed.mode)
    except (AttributeError, ValueError, IndexError):  # key analysis is best-effort metadata
        key_root, mode = transpose % 12, "major"
    ts = score.recurse().getElementsByClass("TimeSignature")
    meter = ts[0].ratioString if ts else "4/4"
    key_name = f"{NOTE_NAMES[key_root]} {mode}"
    meta = {
        "style": "chorale",
        "tempo": tempo,
        "meter": meter,
        "key": key_name,
        "key_root": key_root,
        "mode": mode,
        "chorale": path.rsplit("/", 1)[-1],
        "transpose": transpose,
        "ensemble": ensemble,
        "fermatas": len(fermatas),
        "sections": [],
        "chords": [],
    }
    tags = ["chorale", "bach", f"{ensemble} ensemble", key_name, meter, f"{int(tempo)} bpm"]
    return SongPlan("chorales", out_parts, tempo, meta, tags, stem_tags, stem_meta)
