"""Groove/style table for the procedural arranger.

A style fixes the meter and the step grid of one bar, a tempo range, the drum groove (one
pattern string per drum voice, one character per grid step: ``X`` accent, ``x`` hit,
``g`` ghost, ``.`` rest), the bass figure, the piano/guitar comping figures, and which GM
programs each class draws from. Tempo is in beats per minute where the beat is a quarter
note (3/4, 4/4) or a dotted quarter (6/8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: GM percussion key numbers for the drum voices used in patterns
DRUM_NOTES = {
    "kick": 36,
    "snare": 38,
    "side": 37,
    "clap": 39,
    "hat": 42,
    "pedal": 44,
    "open": 46,
    "ride": 51,
    "bell": 53,
    "crash": 49,
    "tom_hi": 50,
    "tom_mid": 47,
    "tom_lo": 45,
    "floor": 41,
    "shaker": 70,
    "tamb": 54,
    "cowbell": 56,
    "conga": 63,
    "bongo": 60,
}


@dataclass(frozen=True)
class Style:
    name: str
    meter: str  # "4/4", "3/4" or "6/8"
    beats: int  # beats per bar (6/8 -> 2 dotted-quarter beats)
    steps_per_beat: int  # grid resolution
    tempo: tuple[int, int]  # bpm range
    drums: dict[str, str]  # voice -> pattern (len = beats * steps_per_beat)
    bass: tuple[str, ...]  # bass figure names (one drawn per track)
    piano: tuple[str, ...]  # piano comping figures
    guitar: tuple[str, ...]  # guitar figures
    programs: dict[str, tuple[int, ...]]  # class -> GM programs to draw from
    kits: tuple[int, ...] = (0, 8, 16)
    swing: float = 0.0  # delay of off-grid steps, fraction of a step
    sevenths: bool = False  # colour triads as seventh chords
    modes: tuple[str, ...] = ("major", "minor")
    progressions: tuple[str, ...] = ()  # restrict progressions (empty: any of the mode)
    looseness_ms: float = 8.0  # humanize timing sd
    extras: tuple[str, ...] = ("strings", "synth_pad", "organ", "brass", "synth_lead")
    tags: tuple[str, ...] = field(default=())

    @property
    def steps(self) -> int:
        return self.beats * self.steps_per_beat


_PIANOS = (0, 1, 2, 4, 5)
_ROCK_GTR = (29, 30, 27, 25)
_CLEAN_GTR = (27, 26, 25, 28, 24)
_BASSES = (33, 34, 32, 35)

STYLES: dict[str, Style] = {
    s.name: s
    for s in [
        Style(
            "rock",
            "4/4",
            4,
            4,
            (90, 150),
            {"kick": "x.......x.x.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."},
            ("root8", "pop"),
            ("quarters", "pad", "syncop"),
            ("power8", "strum"),
            {"bass": (33, 34, 35), "guitar": _ROCK_GTR, "piano": (0, 1, 2)},
            kits=(0, 8, 16),
            tags=("rock", "driving", "energetic"),
        ),
        Style(
            "pop",
            "4/4",
            4,
            4,
            (80, 128),
            {"kick": "x......x..x.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x.", "shaker": "..x...x...x...x."},
            ("pop", "root_fifth"),
            ("syncop", "arpeggio", "pad"),
            ("strum", "arpeggio"),
            {"bass": (33, 34, 38, 39), "guitar": (25, 27, 24), "piano": _PIANOS},
            kits=(0, 8, 24),
            tags=("pop", "catchy", "bright"),
        ),
        Style(
            "funk",
            "4/4",
            4,
            4,
            (90, 116),
            {"kick": "x..x..x...x..x..", "snare": "....X..g.g..X..g", "hat": "XxxxXxxxXxxxXxxx"},
            ("funk",),
            ("stabs", "syncop"),
            ("scratch", "stabs"),
            {"bass": (33, 36, 37, 38), "guitar": (27, 28, 26), "piano": (4, 5, 7, 2)},
            kits=(0, 8, 24),
            sevenths=True,
            looseness_ms=5.0,
            swing=0.1,
            tags=("funk", "groovy", "syncopated"),
        ),
        Style(
            "disco",
            "4/4",
            4,
            4,
            (110, 130),
            {"kick": "x...x...x...x...", "snare": "....X.......X...", "hat": "x...x...x...x...", "open": "..x...x...x...x."},
            ("octave",),
            ("offbeat", "quarters"),
            ("scratch", "offbeat"),
            {"bass": (33, 38, 39, 34), "guitar": (27, 28), "piano": (4, 5, 0, 1)},
            kits=(0, 24, 25),
            sevenths=True,
            tags=("disco", "dance", "four on the floor"),
        ),
        Style(
            "swing",
            "4/4",
            4,
            3,
            (100, 180),
            {"ride": "x..x.xx..x.x", "pedal": "...x.....x..", "kick": "g..g..g..g.."},
            ("walking",),
            ("charleston", "quarters"),
            ("quarters", "charleston"),
            {"bass": (32, 33, 35), "guitar": (26, 24, 27), "piano": (0, 1, 4)},
            kits=(32, 40),
            sevenths=True,
            progressions=("ii-V-I-vi", "I-IV-ii-V", "ii-V-i-i", "i-VI-iv-V"),
            looseness_ms=10.0,
            tags=("jazz", "swing", "walking bass"),
        ),
        Style(
            "shuffle",
            "4/4",
            4,
            3,
            (70, 130),
            {"kick": "x.....x.....", "snare": "...X.....X..", "hat": "x.xx.xx.xx.x"},
            ("boogie",),
            ("shuffle", "quarters"),
            ("shuffle", "strum"),
            {"bass": (33, 34, 32), "guitar": (29, 27, 26), "piano": (0, 1, 3, 4)},
            kits=(0, 8),
            modes=("major",),
            tags=("blues", "shuffle", "twelve bar"),
        ),
        Style(
            "bossa",
            "4/4",
            4,
            4,
            (110, 150),
            {"kick": "x..xx..xx..xx..x", "side": "x..x..x...x..x..", "hat": "gggggggggggggggg"},
            ("bossa",),
            ("bossa", "pad"),
            ("bossa", "arpeggio"),
            {"bass": (32, 33, 35), "guitar": (24, 25, 26), "piano": (0, 4, 5)},
            kits=(0, 40, 32),
            sevenths=True,
            looseness_ms=6.0,
            extras=("strings", "synth_pad", "woodwind"),
            tags=("bossa nova", "latin", "laid back"),
        ),
        Style(
            "reggae",
            "4/4",
            4,
            4,
            (60, 90),
            {"kick": "........X.......", "side": "........X.......", "hat": "x.x.x.x.x.x.x.x."},
            ("reggae",),
            ("offbeat",),
            ("offbeat",),
            {"bass": (33, 34, 38), "guitar": (27, 28, 26), "piano": (0, 16, 4)},
            kits=(0, 8),
            swing=0.15,
            tags=("reggae", "one drop", "offbeat skank"),
        ),
        Style(
            "hiphop",
            "4/4",
            4,
            4,
            (70, 100),
            {"kick": "x......x.xx.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."},
            ("long",),
            ("pad", "syncop"),
            ("arpeggio", "stabs"),
            {"bass": (38, 39, 33, 35), "guitar": (27, 26, 24), "piano": (4, 5, 0)},
            kits=(25, 24, 0),
            swing=0.2,
            sevenths=True,
            tags=("hip hop", "boom bap", "laid back"),
        ),
        Style(
            "waltz",
            "3/4",
            3,
            2,
            (80, 180),
            {"kick": "x.....", "snare": "..x.x.", "hat": "x.x.x."},
            ("waltz",),
            ("waltz", "arpeggio"),
            ("waltz", "arpeggio"),
            {"bass": (32, 33, 35), "guitar": (24, 25, 26), "piano": (0, 1, 2)},
            kits=(0, 40, 32),
            extras=("strings", "woodwind", "brass"),
            tags=("waltz", "three four"),
        ),
        Style(
            "jazzwaltz",
            "3/4",
            3,
            3,
            (100, 170),
            {"ride": "x..x.xx..", "pedal": "...x..x..", "kick": "g........"},
            ("walking",),
            ("charleston", "waltz"),
            ("quarters",),
            {"bass": (32, 33, 35), "guitar": (26, 24), "piano": (0, 1, 4)},
            kits=(32, 40),
            sevenths=True,
            looseness_ms=10.0,
            progressions=("ii-V-I-vi", "I-IV-ii-V", "ii-V-i-i"),
            tags=("jazz", "jazz waltz", "three four"),
        ),
        Style(
            "ballad68",
            "6/8",
            2,
            3,
            (60, 90),
            {"kick": "x.....", "snare": "...X..", "hat": "xxxxxx"},
            ("long", "root_fifth"),
            ("arpeggio", "pad"),
            ("arpeggio", "strum"),
            {"bass": (33, 35, 32), "guitar": (25, 24, 27), "piano": (0, 1, 4)},
            kits=(0, 40, 8),
            looseness_ms=10.0,
            tags=("ballad", "six eight", "slow"),
        ),
        Style(
            "jig68",
            "6/8",
            2,
            3,
            (100, 140),
            {"kick": "x..x..", "snare": "...X..", "hat": "x.xx.x", "tamb": "..x..x"},
            ("root_fifth",),
            ("quarters", "arpeggio"),
            ("strum",),
            {"bass": (32, 33), "guitar": (25, 24), "piano": (0, 1, 6)},
            kits=(0, 8),
            extras=("strings", "woodwind", "organ"),
            tags=("folk", "jig", "six eight"),
        ),
        Style(
            "punk",
            "4/4",
            4,
            2,
            (150, 180),
            {"kick": "x...x.x.", "snare": "..X...X.", "hat": "xxxxxxxx"},
            ("root8",),
            ("quarters", "pad"),
            ("power8",),
            {"bass": (34, 33), "guitar": (30, 29), "piano": (0, 1)},
            kits=(16, 0),
            looseness_ms=5.0,
            modes=("major", "minor"),
            extras=("organ", "synth_lead"),
            tags=("punk", "fast", "distorted"),
        ),
        Style(
            "country",
            "4/4",
            4,
            4,
            (100, 160),
            {"kick": "x.......x.......", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."},
            ("root_fifth",),
            ("quarters", "arpeggio"),
            ("strum", "train"),
            {"bass": (32, 33, 34), "guitar": (25, 24, 27), "piano": (0, 1, 3)},
            kits=(0, 40, 8),
            modes=("major",),
            extras=("strings", "organ", "brass"),
            tags=("country", "twang", "train beat"),
        ),
    ]
}
