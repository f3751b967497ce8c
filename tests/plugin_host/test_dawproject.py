"""`--dawproject OUT.dawproject`: the stems as a DAWproject zip, re-read here with the standard
library: track names, clip positions and lengths exact to the sample, every referenced file
embedded, existing files never replaced silently, and a CLI run against a real engine.

The format's schema (Project.xsd, MetaData.xsd in github.com/bitwig/dawproject) is not shipped
with the project and no schema validator is a dependency: `test_the_project_validates_against_the_schema`
runs only where `xmlschema` is importable and $DAWPROJECT_XSD names a folder holding both files;
everywhere else the structure is checked by re-reading."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.cli import main
from stemlink.errors import InvalidInput, OutputExists
from stemlink.plugin_host.dawproject import StemClip, check_dawproject_path, write_dawproject

ODD = 48000 + 17  # 1 s + 17 samples at 48 kHz


def small_wav(path: Path, rate: int, channels: int, frames: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.arange(frames * channels, dtype="<i2").tobytes())
    return path


def read_project(path: Path) -> tuple[zipfile.ZipFile, ET.Element]:
    zf = zipfile.ZipFile(path)
    assert zf.testzip() is None
    assert {"project.xml", "metadata.xml"} <= set(zf.namelist())
    ET.fromstring(zf.read("metadata.xml"))  # well-formed
    return zf, ET.fromstring(zf.read("project.xml"))


def tracks_and_clips(root: ET.Element) -> dict[str, list[ET.Element]]:
    """Track name -> its Clip elements, following the arrangement's `track` references."""
    assert root.tag == "Project" and root.get("version") == "1.0"
    ids = [e.get("id") for e in root.iter() if e.get("id") is not None]
    assert len(ids) == len(set(ids))  # xs:ID values are unique
    names = {t.get("id"): t.get("name") for t in root.findall("./Structure/Track")}
    (top,) = root.findall("./Arrangement/Lanes")
    assert top.get("timeUnit") == "seconds"
    out: dict[str, list[ET.Element]] = {}
    for lane in top.findall("./Lanes"):
        out[names[lane.get("track")]] = lane.findall("./Clips/Clip")
    return out


def test_clips_sit_at_the_exact_sample_and_reference_embedded_files(tmp_path):
    a = small_wav(tmp_path / "stems" / "mix_bass.wav", 48000, 2, 12345)
    b = small_wav(tmp_path / "stems" / "mix_drums.wav", 48000, 2, 12345)
    c = small_wav(tmp_path / "other" / "mix_bass.wav", 44100, 1, 999)  # same file name, other folder
    clips = [
        StemClip("mix - bass", a, 48000, 2, 12345, ODD, 48000),
        StemClip("mix - drums", b, 48000, 2, 12345, ODD, 48000),
        StemClip("mix - bass", c, 44100, 1, 999, 3 * 48000 + 1, 48000, name="later"),  # a 44.1 kHz file on a 48 kHz timeline
    ]
    out = write_dawproject(tmp_path / "song.dawproject", clips)
    zf, root = read_project(out)
    assert root.find("Application").get("name") == "stemlink"
    tracks = tracks_and_clips(root)
    assert list(tracks) == ["mix - bass", "mix - drums"]  # one track per name, first-seen order
    assert [len(v) for v in tracks.values()] == [2, 1]
    entries = set()
    pairs = [(clips[0], tracks["mix - bass"][0]), (clips[1], tracks["mix - drums"][0]), (clips[2], tracks["mix - bass"][1])]
    for clip, element in pairs:
        time, duration = float(element.get("time")), float(element.get("duration"))
        assert time == clip.position / clip.position_rate and round(time * clip.position_rate) == clip.position  # exact to the sample
        assert duration == clip.frames / clip.sample_rate and round(duration * clip.sample_rate) == clip.frames
        (audio,) = element.findall("./Audio")
        assert (audio.get("timeUnit"), int(audio.get("sampleRate")), int(audio.get("channels"))) == (
            "seconds",
            clip.sample_rate,
            clip.channels,
        )
        assert round(float(audio.get("duration")) * clip.sample_rate) == clip.frames
        file = audio.find("File")
        assert file.get("external") is None  # inside the container
        entry = file.get("path")
        assert zf.read(entry) == clip.path.read_bytes()  # the written WAV, byte for byte
        entries.add(entry)
    assert len(entries) == 3 and all(e.startswith("audio/") for e in entries)
    assert tracks["mix - bass"][1].get("name") == "later"


def test_an_existing_file_is_never_replaced_silently(tmp_path):
    wav = small_wav(tmp_path / "a.wav", 48000, 2, 100)
    clips = [StemClip("t", wav, 48000, 2, 100, ODD, 48000)]
    out = write_dawproject(tmp_path / "x.dawproject", clips)
    before = out.read_bytes()
    with pytest.raises(OutputExists, match="already exists"):
        write_dawproject(out, [StemClip("t", wav, 48000, 2, 100, 0, 48000)])
    assert out.read_bytes() == before
    write_dawproject(out, [StemClip("t", wav, 48000, 2, 100, 0, 48000)], overwrite=True)
    assert float(tracks_and_clips(read_project(out)[1])["t"][0].get("time")) == 0.0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    with pytest.raises(InvalidInput, match="must end in .dawproject"):
        check_dawproject_path(tmp_path / "x.zip", overwrite=True)


def test_the_project_validates_against_the_schema(tmp_path):
    xsd = os.environ.get("DAWPROJECT_XSD")
    if not xsd:
        pytest.skip("set DAWPROJECT_XSD to a folder with the format's Project.xsd and MetaData.xsd to validate against them")
    xmlschema = pytest.importorskip("xmlschema", reason="validating against the DAWproject XSD needs the xmlschema package")
    wav = small_wav(tmp_path / "a.wav", 44100, 1, 441)
    zf, _ = read_project(write_dawproject(tmp_path / "v.dawproject", [StemClip("t - bass", wav, 44100, 1, 441, ODD, 48000)]))
    xmlschema.XMLSchema(str(Path(xsd) / "Project.xsd")).validate(zf.read("project.xml").decode("utf-8"))
    xmlschema.XMLSchema(str(Path(xsd) / "MetaData.xsd")).validate(zf.read("metadata.xml").decode("utf-8"))


def test_the_writer_loads_no_torch_or_numpy():
    code = "import sys, stemlink.plugin_host.dawproject; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert done.stdout.strip() == "[]"


@pytest.fixture
def engine(start_server, cli_workdir):
    x = (0.1 * np.random.default_rng(1).standard_normal((2, 3 * 48000))).astype(np.float32)
    with AudioFile(str(cli_workdir / "song.wav"), "w", 48000, 2, bit_depth=32) as f:
        f.write(x)
    return start_server("tcp").address


def test_separate_writes_a_dawproject_at_the_region_position(engine, cli_workdir, capsys):
    argv = ["separate", "song.wav", "--start", "0.5", "--end", "2.25", "--timeline-sample", str(ODD), "--session-rate", "48000"]
    argv += ["--model", "echo", "--engine", engine, "--out", "out", "--dawproject", "song.dawproject"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split()[-1] == "song.dawproject"  # printed after the stems
    zf, root = read_project(cli_workdir / "song.dawproject")
    tracks = tracks_and_clips(root)
    wavs = sorted((cli_workdir / "out").glob("*.wav"))
    assert sorted(tracks) == sorted(f"song - {p.stem.split('_')[1]}" for p in wavs) and len(wavs) >= 2
    for (clip,) in tracks.values():
        assert round(float(clip.get("time")) * 48000) == ODD and float(clip.get("time")) == ODD / 48000
        assert float(clip.get("duration")) == 84000 / 48000
        entry = clip.find("Audio/File").get("path")
        assert zf.read(entry) == (cli_workdir / "out" / Path(entry).name).read_bytes()
    # an existing project is refused before the engine works: no stems in the new folder
    stamp = (cli_workdir / "song.dawproject").stat().st_mtime_ns
    again = [a if a != "out" else "out2" for a in argv]
    assert main(again) == 2 and "already exists" in capsys.readouterr().err
    assert not (cli_workdir / "out2").exists() and (cli_workdir / "song.dawproject").stat().st_mtime_ns == stamp
    assert main(again + ["--overwrite"]) == 0


def test_a_session_run_puts_each_region_on_its_stem_track(engine, cli_workdir):
    (cli_workdir / "s.toml").write_text(
        'preset = "sep.toml"\nout = "stems"\n[[tracks]]\nname = "band"\nfile = "song.wav"\n'
        '[[tracks.regions]]\nname = "a"\nstart_sample = 0\nend_sample = 4800\ntimeline_sample = 17\n'
        '[[tracks.regions]]\nname = "b"\nstart_sample = 48000\nend_sample = 52801\ntimeline_sample = 96017\n'
    )
    (cli_workdir / "sep.toml").write_text('task = "separate"\nmodel = "echo"\n')
    assert main(["run", "s.toml", "--engine", engine, "--dawproject", "s.dawproject"]) == 0
    tracks = tracks_and_clips(read_project(cli_workdir / "s.dawproject")[1])
    assert tracks and all(name.startswith("band - ") for name in tracks)
    for clips in tracks.values():
        assert [round(float(c.get("time")) * 48000) for c in clips] == [17, 96017]
        assert [round(float(c.get("duration")) * 48000) for c in clips] == [4800, 4801]


def test_a_44k1_file_on_a_48k_timeline_keeps_the_session_sample(engine, cli_workdir):
    """The clip sits at the region's timeline sample at the session rate, not at the BWF stamp
    (which is rounded to the file's 44.1 kHz)."""
    argv = ["separate", "mix.wav", "--timeline-sample", str(ODD), "--session-rate", "48000", "--model", "echo", "--engine", engine]
    assert main([*argv, "--out", "out", "--dawproject", "mix.dawproject"]) == 0
    zf, root = read_project(cli_workdir / "mix.dawproject")
    for (clip,) in tracks_and_clips(root).values():
        assert float(clip.get("time")) == ODD / 48000
        assert float(clip.get("duration")) == 1.0 and clip.find("Audio").get("sampleRate") == "44100"
