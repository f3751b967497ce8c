"""The renderer: a tiny render (2 tracks x 4 s), determinism, mix = sum of stems, metadata,
splits, the missing-dependency error, and musical invariants of the arranger."""

from __future__ import annotations

import filecmp
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from stemlink.audio.files import read_audio
from stemlink.errors import InvalidInput, MissingDependency
from stemlink.lab.data.arrange import arrange
from stemlink.lab.data.render import RenderConfig, assign_splits, render_corpus
from stemlink.lab.data.styles import STYLES

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists(),
    reason="fluidsynth + fluid-soundfont-gm not installed (bash setup.sh install)",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    outs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(name) / "corpus"
        render_corpus(RenderConfig(out=str(out), tracks=2, seconds=4, sample_rate=16000, seed=7, jobs=2), progress=lambda s: None)
        outs.append(out)
    return outs


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts)


@needs_fluidsynth
def test_render_is_byte_identical(tiny):
    a, b = tiny
    files = _all_files(a)
    assert files == _all_files(b)
    assert {"READY", "corpus.json", "track_00000/mix.flac", "track_00000/metadata.json"} <= set(files)
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors


@needs_fluidsynth
def test_stems_sum_to_mix_and_have_exact_length(tiny):
    root = tiny[0]
    for meta_path in sorted(root.glob("track_*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        mix, rate = read_audio(meta_path.parent / "mix.flac")
        assert rate == 16000 and mix.shape == (2, 4 * 16000)
        total = np.zeros_like(mix, dtype=np.float64)
        for info in meta["stems"].values():
            stem, _ = read_audio(meta_path.parent / info["file"])
            assert stem.shape == mix.shape
            total += stem
        # the mix is the sum of the 24-bit stems; float32 read-back differs by <= 2 LSB
        assert np.abs(total - mix).max() <= 2.0**-22
        assert np.abs(mix).max() > 0.05  # not silent


@needs_fluidsynth
def test_metadata_is_complete(tiny):
    root = tiny[0]
    index = json.loads((root / "corpus.json").read_text())
    assert index["layout"] == "stemlink" and len(index["tracks"]) == 2
    for meta_path in sorted(root.glob("track_*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        for key in (
            "id",
            "split",
            "source",
            "style",
            "tempo",
            "key",
            "meter",
            "sections",
            "chords",
            "tags",
            "stems",
            "sample_rate",
            "num_samples",
        ):
            assert key in meta, key
        assert meta["split"] in ("train", "valid", "test")
        assert {"bass", "drums"} <= set(meta["stems"])
        for cls, info in meta["stems"].items():
            for key in ("class", "program", "instrument", "tags", "file", "is_drum"):
                assert key in info, (cls, key)
            assert info["class"] == cls and info["tags"] and (meta_path.parent / info["midi"]).exists()


def test_splits_are_disjoint_seeded_and_sized():
    labels = assign_splits(100, seed=3)
    assert Counter(labels) == {"train": 80, "valid": 10, "test": 10}
    assert assign_splits(100, seed=3) == labels and assign_splits(100, seed=4) != labels
    assert Counter(assign_splits(5, seed=0)) == {"train": 3, "valid": 1, "test": 1}


def test_missing_fluidsynth_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("STEMLINK_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(MissingDependency, match="fluid-soundfont-gm"):
        render_corpus(RenderConfig(out=str(tmp_path / "x"), tracks=1, seconds=2))
    with pytest.raises(MissingDependency, match="fluid-soundfont-gm"):
        render_corpus(RenderConfig(out=str(tmp_path / "x"), tracks=1, seconds=2, synth="cli"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependency, match="`fluidsynth` is not on PATH"):
        render_corpus(RenderConfig(out=str(tmp_path / "x"), tracks=1, seconds=2, synth="cli"))


def test_bad_config_names_the_option(tmp_path):
    with pytest.raises(InvalidInput, match="--source"):
        render_corpus(RenderConfig(out=str(tmp_path), tracks=1, seconds=2, source="nope"))
    with pytest.raises(InvalidInput, match="--tracks"):
        render_corpus(RenderConfig(out=str(tmp_path), tracks=0, seconds=2))


def test_arranger_variety_and_coherence():
    songs = [arrange(np.random.default_rng([11, i]), 20.0) for i in range(120)]
    assert len({s.style.name for s in songs}) >= 8
    assert {s.style.meter for s in songs} == {"3/4", "4/4", "6/8"}
    assert len({s.key_root for s in songs}) == 12
    assert min(s.tempo for s in songs) >= 60 and max(s.tempo for s in songs) <= 180
    programs = Counter(s.parts["bass"].program for s in songs)
    assert len(programs) >= 4  # timbre varies within a class
    on_root = total = 0
    for s in songs:
        for style_name in [s.style.name]:
            assert style_name in STYLES
        # bass plays the chord root on (near) the downbeat of most bars it plays
        for note in s.parts["bass"].notes:
            bar = note.start / s.bar_seconds
            if abs(bar - round(bar)) * s.bar_seconds < 0.04 and round(bar) < len(s.chords):
                total += 1
                on_root += note.pitch % 12 == s.chords[int(round(bar))].root
        # every stem is silent in some section for at least a few songs (dropouts), never in all
        for cls in s.parts:
            assert any(cls in sec.active for sec in s.sections)
    assert total > 500 and on_root / total > 0.85
    dropouts = sum(any(cls not in sec.active for sec in s.sections for cls in s.parts) for s in songs)
    assert dropouts > 60


@needs_fluidsynth
def test_in_process_synth_matches_the_cli():
    from scipy.signal import welch

    from stemlink.lab.data.fluidlib import FluidRenderer
    from stemlink.lab.data.synth import render_part

    song = arrange(np.random.default_rng([0, 7]), 6.0)
    renderer = FluidRenderer(16000)
    for part in song.parts.values():
        lib = renderer.render(part, 6 * 16000)
        assert np.array_equal(lib, renderer.render(part, 6 * 16000))  # deterministic
        cli = render_part(part, song.tempo, 16000, 6 * 16000)
        rms_lib, rms_cli = np.sqrt(np.mean(lib**2)), np.sqrt(np.mean(cli**2))
        assert abs(20 * np.log10(rms_lib / rms_cli)) < 1.0, part.cls
        spec = [10 * np.log10(welch(x[0], 16000, nperseg=1024)[1][:256] + 1e-12) for x in (lib, cli)]
        assert np.median(np.abs(spec[0] - spec[1])) < 1.5, part.cls
