"""Real-dataset loaders on fixture trees built in each published layout."""

from __future__ import annotations

import numpy as np
import torch

from stemlink.lab.data import StemWindows, SubmixPairs, open_corpus
from stemlink.lab.data.classes import CLASSES, MOISESDB_CLASS, SLAKH_CLASS, gm_class, map_label


def test_slakh(slakh_tree):
    corpus = open_corpus(slakh_tree)
    assert corpus.layout == "slakh"
    assert corpus.splits() == ["train", "valid", "test"]  # "omitted" is skipped
    assert [t.id for t in corpus.tracks("train")] == ["Track00001", "Track00002"]
    track = corpus.tracks("valid")[0]
    assert sorted(track.stems) == ["bass", "drums", "guitar"]  # pad not rendered -> skipped
    assert [p.name for p in track.stems["guitar"]] == ["S00.flac", "S03.flac"]
    # the two guitar stems are summed into one class
    w = StemWindows(corpus, "valid", stems=("guitar", "piano"), sample_rate=8000, length=8000, jitter=False, silence_rule=False)
    t = np.arange(8000) / 8000
    expected = 0.2 * np.sin(2 * np.pi * 100 * t) + 0.2 * np.sin(2 * np.pi * 400 * t)
    assert np.abs(w[0][0].numpy() - expected).max() < 1e-5
    assert torch.count_nonzero(w[0][1]) == 0


def test_musdb(musdb_tree):
    corpus = open_corpus(musdb_tree)
    assert corpus.layout == "musdb"
    assert [t.id for t in corpus.tracks("valid")] == ["Actions - One Minute Smile"]
    assert [t.id for t in corpus.tracks("test")] == ["Z Band - Test Song"]
    track = corpus.tracks("train")[0]
    assert sorted(track.stems) == ["bass", "drums", "other", "vocals"] and track.mix.name == "mixture.wav"
    w = StemWindows(corpus, "test", stems=("bass", "drums", "vocals", "other"), sample_rate=16000, length=16000, mono=False, jitter=False)
    assert w[0].shape == (4, 2, 16000)


def test_moisesdb(moisesdb_tree):
    corpus = open_corpus(moisesdb_tree)
    assert corpus.layout == "moisesdb"
    counts = {s: len(corpus.tracks(s)) for s in corpus.splits()}
    assert counts == {"train": 8, "valid": 1, "test": 1}
    track = corpus.tracks("train")[0]
    assert sorted(track.stems) == ["bass", "drums", "guitar", "strings"]
    assert len(track.stems["drums"]) == 2  # kick + snare sources summed into drums
    assert track.meta["labels"]["drums"] == ["kick drum", "snare drum"]
    again = open_corpus(moisesdb_tree)
    assert [t.id for t in again.tracks("test")] == [t.id for t in corpus.tracks("test")]


def test_cocochorales_keeps_every_part(coco_tree):
    corpus = open_corpus(coco_tree)
    assert corpus.layout == "cocochorales"
    string = [t for t in corpus.tracks("train") if t.id.startswith("string")][0]
    assert sorted(string.stems) == ["strings", "strings_2", "strings_3", "strings_4"]
    brass = [t for t in corpus.tracks("train") if t.id.startswith("brass")][0]
    assert sorted(brass.stems) == ["brass", "brass_2", "brass_3", "brass_4"]
    assert string.tags("strings_2")[0] == "violin"
    pairs = SubmixPairs(corpus, "train", sample_rate=16000, length=8000, jitter=False)
    a, b = pairs[0]
    assert a.shape == b.shape == (8000,)


def test_cocochorales_split_from_track_number(coco_tree, tmp_path):
    import shutil

    flat = tmp_path / "flat"
    src = next((coco_tree / "main_dataset" / "train").iterdir())
    for name in ("string_track000007", "brass_track200000", "woodwind_track230000"):
        shutil.copytree(src, flat / name)
    corpus = open_corpus(flat)
    assert corpus.layout == "cocochorales"
    assert {t.id: t.split for t in corpus.tracks()} == {
        "brass_track200000": "valid",
        "string_track000007": "train",
        "woodwind_track230000": "test",
    }


def test_class_table():
    assert gm_class(0) == "piano" and gm_class(30) == "guitar" and gm_class(33) == "bass"
    assert gm_class(0, is_drum=True) == "drums"
    assert map_label("slakh", "Synth Pad") == "synth_pad" and map_label("slakh", "Unknown thing") == "other"
    assert map_label("cocochorales", "French Horn") == "brass"
    for table in (SLAKH_CLASS, MOISESDB_CLASS):
        assert set(table.values()) <= set(CLASSES)


def test_unfinished_render_warns(gated_corpus):
    import warnings

    import pytest

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_corpus(gated_corpus)  # finished render: no warning
    (gated_corpus / "READY").unlink()
    with pytest.warns(UserWarning, match="no READY"):
        open_corpus(gated_corpus)
