"""Fixture trees for the data tests: a synthetic stemlink corpus with known silence, and
tiny copies of the Slakh2100, MUSDB18-HQ, MoisesDB and CocoChorales published layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stemlink.audio.files import write_flac
from tests.lab.data.corpus_builders import RATE, make_stemlink, tone, write_wav


@pytest.fixture
def gated_corpus(tmp_path: Path) -> Path:
    """Two 4 s tracks at 8 kHz. train_a: bass+drums play 0-2 s, only piano 2-3 s, silence 3-4 s.
    valid_a: all four stems throughout."""
    n = 4 * RATE
    gate = lambda a, b: np.r_[np.zeros(int(a * RATE)), np.ones(int((b - a) * RATE)), np.zeros(n - int(b * RATE))].astype(np.float32)  # noqa: E731
    plan = {
        "train_a": {"bass": tone(4, 55) * gate(0, 2), "drums": tone(4, 200) * gate(0, 2), "piano": tone(4, 440) * gate(2, 3)},
        "valid_a": {c: tone(4, f) for c, f in (("bass", 55), ("drums", 200), ("guitar", 330), ("piano", 440))},
    }
    return make_stemlink(tmp_path / "gated", plan, {"train_a": "train", "valid_a": "valid"})


@pytest.fixture
def slakh_tree(tmp_path: Path) -> Path:
    root = tmp_path / "slakh2100_flac_redux"
    layout = {"train": ["Track00001", "Track00002"], "validation": ["Track01501"], "test": ["Track01876"], "omitted": ["Track00003"]}
    for split, ids in layout.items():
        for k, tid in enumerate(ids):
            folder = root / split / tid
            (folder / "stems").mkdir(parents=True)
            stems = {
                "S00": {
                    "inst_class": "Guitar",
                    "is_drum": False,
                    "program_num": 30,
                    "midi_program_name": "Distortion Guitar",
                    "audio_rendered": True,
                },
                "S01": {
                    "inst_class": "Bass",
                    "is_drum": False,
                    "program_num": 33,
                    "midi_program_name": "Electric Bass (finger)",
                    "audio_rendered": True,
                },
                "S02": {"inst_class": "Drums", "is_drum": True, "program_num": 0, "midi_program_name": "Drums", "audio_rendered": True},
                "S03": {
                    "inst_class": "Guitar",
                    "is_drum": False,
                    "program_num": 25,
                    "midi_program_name": "Acoustic Guitar (steel)",
                    "audio_rendered": True,
                },
                "S04": {
                    "inst_class": "Synth Pad",
                    "is_drum": False,
                    "program_num": 89,
                    "midi_program_name": "Pad 2 (warm)",
                    "audio_rendered": False,
                },
            }
            for j, sid in enumerate(["S00", "S01", "S02", "S03"]):
                write_flac(folder / "stems" / f"{sid}.flac", tone(2, 100 * (j + 1), channels=1), RATE)
            write_flac(folder / "mix.flac", tone(2, 100, channels=1), RATE)
            import yaml

            (folder / "metadata.yaml").write_text(
                yaml.safe_dump({"UUID": f"uuid{k}", "audio_dir": "stems", "midi_dir": "MIDI", "stems": stems})
            )
    return root


@pytest.fixture
def musdb_tree(tmp_path: Path) -> Path:
    root = tmp_path / "musdb18hq"
    for split, names in {"train": ["A Band - Song", "Actions - One Minute Smile"], "test": ["Z Band - Test Song"]}.items():
        for name in names:
            for j, stem in enumerate(["mixture", "bass", "drums", "other", "vocals"]):
                write_wav(root / split / name / f"{stem}.wav", tone(2, 100 * (j + 1), rate=44100))
    return root


@pytest.fixture
def moisesdb_tree(tmp_path: Path) -> Path:
    root = tmp_path / "moisesdb" / "moisesdb_v0.1" / "provider_a"  # <data path>/<provider>/<track id>/
    for k in range(10):
        tid = f"{k:08d}-aaaa-bbbb-cccc-000000000000"
        stems = []
        for j, (name, types) in enumerate(
            {
                "bass": ["bass guitar"],
                "drums": ["kick drum", "snare drum"],
                "guitar": ["electric guitar"],
                "bowed_strings": ["violin"],
            }.items()
        ):
            tracks = []
            for m, tt in enumerate(types):
                sid = f"src{k}{j}{m}"
                write_wav(root / tid / name / f"{sid}.wav", tone(1, 100 * (j + 1 + m), rate=44100))
                tracks.append({"id": sid, "trackType": tt, "extension": "wav", "has_bleed": False})
            stems.append({"stemName": name, "id": f"stem{k}{j}", "tracks": tracks})
        (root / tid / "data.json").write_text(json.dumps({"song": f"song {k}", "artist": "artist", "genre": "rock", "stems": stems}))
    return root.parent.parent


@pytest.fixture
def coco_tree(tmp_path: Path) -> Path:
    root = tmp_path / "cocochorales_tiny_v1_output" / "main_dataset"
    ensembles = {"string": ["violin", "violin", "viola", "cello"], "brass": ["trumpet", "horn", "trombone", "tuba"]}
    for split in ("train", "valid", "test"):
        for e, instruments in ensembles.items():
            folder = root / split / f"{e}_track{1 if split == 'train' else 2}{split[:2]}"
            for j, inst in enumerate(instruments):
                write_wav(folder / "stems_audio" / f"{j}_{inst}.wav", tone(1, 200 * (j + 1), rate=16000, channels=1))
            write_wav(folder / "mix.wav", tone(1, 200, rate=16000, channels=1))
            import yaml

            (folder / "metadata.yaml").write_text(yaml.safe_dump({"ensemble": e, "instrument_name": dict(enumerate(instruments))}))
    return root.parent
