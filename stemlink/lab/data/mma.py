"""MMA source: accompaniment grooves from Debian's `mma` (Musical MIDI Accompaniment).

A seeded chord chart (progressions from `theory.py`, any of the 12 keys, verse/chorus) is
written as an .mma file with one of MMA's library grooves and a seeded `RndSeed`; `mma`
turns it into a multi-track MIDI file whose tracks become stems: every drum track merges
into "drums", other tracks are keyed by their GM class ("piano", "guitar"; tracks of one
class and program merge, a different program of a class already present becomes
"<class>_2", ...). Section dropouts (4-bar sections, same rules as the procedural
arranger) are applied to the parsed notes. Requires the `mma` program (apt: mma).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from stemlink.errors import MissingDependency
from stemlink.lab.data.arrange import FORM, Note, Part, Section, active_set, ensure_everyone_plays
from stemlink.lab.data.classes import gm_class
from stemlink.lab.data.sources import SectionMeta, SongPlan
from stemlink.lab.data.theory import PROGRESSIONS, key_name, realize

GROOVES = (
    "50sRock",
    "60sRock",
    "8Beat",
    "Ballad",
    "BasicRock",
    "BigBand",
    "BlueGrass",
    "Blues",
    "BoggieWoggie",
    "BossaNova",
    "Broadway",
    "BubbleRock",
    "BVFunk",
    "Calypso",
    "ChaCha",
    "CountryBlues",
    "CountrySwing",
    "CountryWaltz",
    "DSoul",
    "EasySwing",
    "FastSwing",
    "Folk",
    "FolkRock",
    "Foxtrot",
    "GuitarBallad",
    "JazzCombo",
    "JazzGuitar",
    "JazzRock",
    "JazzWaltz",
    "Jive",
    "LFusion",
    "Mambo",
    "ModernJazz",
    "PianoBallad",
    "Polka",
    "PopBallad",
    "R&B",
    "RockBallad",
    "RockWaltz",
    "Salsa",
    "Samba",
    "ShuffleBoggie",
    "Ska",
    "SlowBlues",
    "SoftRock",
    "Swing",
    "Tango",
    "Twist",
    "Waltz",
    "68Swing",
    "Blues68",
    "Ballad68",
    "Zydeco",
    "WesternSwing",
)
JAZZY = ("Jazz", "Swing", "Bossa", "Bebop", "BigBand", "Foxtrot", "Blues", "Boggie")
APT_HINT = "install it with: sudo apt-get install -y mma (or run `bash setup.sh install`)"


def _chart(chords: list, groove: str, tempo: int, seed: int) -> str:
    lines = [f"Tempo {tempo}", f"Groove {groove}", f"RndSeed {seed}"]
    for bar, chord in enumerate(chords, 1):
        lines.append(f"{bar} {chord.name}")
    return "\n".join(lines) + "\n"


def run_mma(text: str, workdir: Path) -> Path:
    """Run `mma` on a chart; returns the MIDI path. MissingDependency when mma is absent."""
    exe = shutil.which("mma")
    if exe is None:
        raise MissingDependency(f"the mma source needs the `mma` program; {APT_HINT}")
    src, out = workdir / "song.mma", workdir / "song.mid"
    src.write_text(text)
    proc = subprocess.run([exe, str(src), "-f", str(out)], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"mma failed ({proc.returncode}): {(proc.stdout + proc.stderr).strip()[-500:]}")
    return out


def compose_mma(rng: np.random.Generator, seconds: float) -> SongPlan:
    """Draw groove, key, tempo and chart; return MMA's tracks as stems with dropouts."""
    import pretty_midi

    groove = str(rng.choice(GROOVES))
    mode = str(rng.choice(["major", "minor"]))
    key_root = int(rng.integers(12))
    tempo = int(rng.integers(70, 161))
    names = list(PROGRESSIONS[mode])
    verse, chorus = (str(x) for x in rng.choice(names, size=2, replace=False))
    sevenths = any(j in groove for j in JAZZY)
    n_bars = int(np.ceil(seconds * tempo / 60.0 / 2)) + 2  # enough even for 2-beat bars
    chords = []
    for bar in range(n_bars):
        prog = verse if (bar // 4) % 2 == 0 else chorus
        cycle = realize(PROGRESSIONS[mode][prog], key_root, sevenths)
        chords.append(cycle[bar % 4])
    with tempfile.TemporaryDirectory() as tmp:
        midi = run_mma(_chart(chords, groove, tempo, int(rng.integers(1, 2**31 - 1))), Path(tmp))
        pm = pretty_midi.PrettyMIDI(str(midi))
    downbeats = [float(t) for t in pm.get_downbeats()]
    ts = pm.time_signature_changes[0] if pm.time_signature_changes else None
    meter = f"{ts.numerator}/{ts.denominator}" if ts else "4/4"

    parts: dict[str, Part] = {}
    drum_kit = int(rng.choice([0, 8, 16, 24, 32, 40]))
    for inst in pm.instruments:
        if not inst.notes:
            continue
        if inst.is_drum:
            key = "drums"
            if key not in parts:
                parts[key] = Part("drums", drum_kit, True, "groove", pan=64, reverb=int(rng.integers(15, 60)))
        else:
            cls = gm_class(inst.program)
            key, n = cls, 1
            while key in parts and parts[key].program != inst.program:
                n += 1
                key = f"{cls}_{n}"
        if key not in parts:  # a new stem; a track with the class and program of one is merged into it
            parts[key] = Part(
                key,
                int(inst.program),
                False,
                (inst.name or "").strip().lower() or cls,
                pan=int(np.clip(64 + rng.normal(0, 22), 20, 108)),
                reverb=int(rng.integers(15, 70)),
            )
        parts[key].notes += [
            Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity)) for n in inst.notes if n.start < seconds + 1.0
        ]

    # 4-bar sections with dropouts, as the procedural arranger does
    keys = list(parts)
    bar_starts = downbeats[::4] + [1e9]
    sections = []
    for k in range(len(bar_starts) - 1):
        if bar_starts[k] >= seconds:
            break
        name = "intro" if k == 0 else FORM[(k - 1) % len(FORM)]
        sections.append(Section(name, 4 * k, 4, verse if name != "chorus" else chorus, active_set(name, keys, rng)))
    ensure_everyone_plays(sections, keys, rng)
    for key, part in parts.items():
        part.notes = [
            n for n in part.notes if any(key in s.active and bar_starts[i] <= n.start < bar_starts[i + 1] for i, s in enumerate(sections))
        ]
    sec_meta: list[SectionMeta] = [
        {
            "name": s.name,
            "start": round(bar_starts[i], 4),
            "end": round(min(seconds, bar_starts[i + 1]), 4),
            "bars": 4,
            "progression": s.progression,
            "active": list(s.active),
        }
        for i, s in enumerate(sections)
    ]
    chord_meta = [
        {"bar": i, "time": round(t, 4), "chord": chords[i].name} for i, t in enumerate(downbeats) if t < seconds and i < len(chords)
    ]
    key = key_name(key_root, mode)
    meta = {
        "style": f"mma-{groove}",
        "groove": groove,
        "tempo": float(tempo),
        "meter": meter,
        "key": key,
        "key_root": key_root,
        "mode": mode,
        "sections": sec_meta,
        "chords": chord_meta,
    }
    tags = [groove.lower(), "mma groove", key, meter, f"{tempo} bpm"]
    stem_tags = {k: [k.split("_")[0].replace("_", " "), p.instrument.lower(), groove.lower()] for k, p in parts.items()}
    stem_meta = {
        k: {"role": p.role, "figure": f"mma {groove}", "active_sections": [s["name"] for s in sec_meta if k in s["active"]]}
        for k, p in parts.items()
    }
    return SongPlan("mma", parts, float(tempo), meta, tags, stem_tags, stem_meta)
