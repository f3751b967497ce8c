"""The common stem vocabulary and the one table mapping every source's labels onto it.

Classes: the MSDM/Slakh four (bass, drums, guitar, piano) plus finer classes used by
tag-conditioned models. Every loader maps its native labels with `map_label(source, label)`;
anything unknown becomes "other".
"""

from __future__ import annotations

MSDM_STEMS = ("bass", "drums", "guitar", "piano")
CLASSES = (
    "bass",
    "drums",
    "guitar",
    "piano",
    "organ",
    "strings",
    "brass",
    "woodwind",
    "synth_lead",
    "synth_pad",
    "percussion",
    "vocals",
    "other",
)

#: GM program family (program // 8) -> class
GM_FAMILY_CLASS = (
    "piano",  # 0-7 pianos and electric pianos, clavinet
    "other",  # 8-15 chromatic percussion (celesta, vibraphone, marimba...)
    "organ",  # 16-23
    "guitar",  # 24-31
    "bass",  # 32-39
    "strings",  # 40-47 solo strings, harp, timpani
    "strings",  # 48-55 ensembles, choir (ensemble family)
    "brass",  # 56-63
    "woodwind",  # 64-71 reed
    "woodwind",  # 72-79 pipe
    "synth_lead",  # 80-87
    "synth_pad",  # 88-95
    "other",  # 96-103 synth effects
    "other",  # 104-111 ethnic
    "percussion",  # 112-119 percussive
    "other",  # 120-127 sound effects
)

#: GM drum kits available in FluidR3_GM (bank 128): program -> name
GM_DRUM_KITS = {0: "Standard Kit", 8: "Room Kit", 16: "Power Kit", 24: "Electronic Kit", 25: "TR-808 Kit", 32: "Jazz Kit", 40: "Brush Kit"}

# Native labels of the real datasets -> class (lower-cased keys).
SLAKH_CLASS = {  # Slakh metadata.yaml `inst_class` (GM family names as Slakh spells them)
    "piano": "piano",
    "chromatic percussion": "other",
    "organ": "organ",
    "guitar": "guitar",
    "bass": "bass",
    "strings": "strings",
    "strings (continued)": "strings",
    "ensemble": "strings",
    "brass": "brass",
    "reed": "woodwind",
    "pipe": "woodwind",
    "synth lead": "synth_lead",
    "synth pad": "synth_pad",
    "synth effects": "other",
    "sound effects": "other",
    "ethnic": "other",
    "percussive": "percussion",
    "drums": "drums",
}
MUSDB_CLASS = {"bass": "bass", "drums": "drums", "vocals": "vocals", "other": "other"}
MOISESDB_CLASS = {  # MoisesDB top-level stem names
    "bass": "bass",
    "drums": "drums",
    "guitar": "guitar",
    "piano": "piano",
    "vocals": "vocals",
    "percussion": "percussion",
    "bowed_strings": "strings",
    "wind": "brass",
    "other_keys": "organ",
    "other_plucked": "other",
    "other": "other",
}
COCOCHORALES_CLASS = {  # CocoChorales instrument names (stems_audio/<n>_<name>.wav)
    "violin": "strings",
    "viola": "strings",
    "cello": "strings",
    "double_bass": "bass",
    "flute": "woodwind",
    "oboe": "woodwind",
    "clarinet": "woodwind",
    "bassoon": "woodwind",
    "french_horn": "brass",
    "horn": "brass",
    "trumpet": "brass",
    "trombone": "brass",
    "tuba": "brass",
    "contrabass": "bass",
    "saxophone": "woodwind",
}
TABLES = {"slakh": SLAKH_CLASS, "musdb": MUSDB_CLASS, "moisesdb": MOISESDB_CLASS, "cocochorales": COCOCHORALES_CLASS}


def gm_class(program: int, is_drum: bool = False) -> str:
    """Class of a General MIDI program (0-127); drum channel -> "drums"."""
    if is_drum:
        return "drums"
    if not 0 <= program <= 127:
        raise ValueError(f"GM program must be in 0..127, got {program}")
    return GM_FAMILY_CLASS[program // 8]


def map_label(source: str, label: str) -> str:
    """Map a dataset's native stem label to the common vocabulary ("other" when unknown)."""
    table = TABLES[source]
    key = label.strip().lower().replace(" ", "_") if source == "cocochorales" else label.strip().lower()
    return table.get(key, "other")


def gm_name(program: int, is_drum: bool = False) -> str:
    """Human name of a GM program (or drum kit)."""
    if is_drum:
        return GM_DRUM_KITS.get(program, f"Drum Kit {program}")
    import pretty_midi

    return pretty_midi.program_to_instrument_name(program)
