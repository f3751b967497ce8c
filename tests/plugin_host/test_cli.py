"""End to end: `stemlink separate/accompany/generate/run` with the embedded engine and an echo
export in a temporary STEMLINK_EXPORTS; outputs are spotted, exact, atomic and never clobbered."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.cli import main
from stemlink.errors import EngineUnavailable
from stemlink.lab.export.echo import build_echo_export
from stemlink.lab.nn.echo import ECHO_STEMS
from stemlink.plugin_host.jobs import Job, run_job
from stemlink.plugin_host.presets import parse_preset
from stemlink.plugin_host.region import Region


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("exports"), sample_rate=16000, window=8192, delay=3, formats=("torchscript",))


@pytest.fixture
def env(exports, tmp_path, monkeypatch):
    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))  # -> the client starts an embedded engine
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.setenv("STEMLINK_PRESETS", str(tmp_path / "presets"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def wav(path, rate=48000, channels=2, seconds=3.0):
    x = (0.1 * np.random.default_rng(0).standard_normal((channels, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels, bit_depth=32) as f:
        f.write(x)
    return x


def read(path):
    with AudioFile(str(path)) as f:
        return f.read(f.frames), f.samplerate


def time_reference(path) -> int:
    data = path.read_bytes()
    pos = 12
    while data[pos : pos + 4] != b"bext":
        pos += 8 + struct.unpack("<I", data[pos + 4 : pos + 8])[0]
    low, high = struct.unpack("<II", data[pos + 8 + 338 : pos + 8 + 346])
    return low | high << 32


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_separate_end_to_end(env, capsys):
    x = wav(env / "mix.wav")
    before = sha(env / "mix.wav")
    argv = ["separate", "mix.wav", "--start", "0.5", "--end", "2.25", "--timeline", "12", "--out", "out", "--model", "echo"]
    assert main(argv) == 0
    outs = sorted((env / "out").glob("*.wav"))
    assert [p.name for p in outs] == [f"mix_{s}_24000.wav" for s in sorted(ECHO_STEMS)]
    stems = [read(p)[0] for p in outs]
    assert all(s.shape == (2, 84000) for s in stems) and read(outs[0])[1] == 48000
    np.testing.assert_allclose(sum(stems), x[:, 24000:108000], atol=1e-6)  # stems sum to the region
    assert all(time_reference(p) == 12 * 48000 for p in outs)
    side = json.loads((env / "out" / "mix_drums_24000.json").read_text())
    assert side["model"]["name"] == "echo" and len(side["model"]["sha256"]) == 64
    assert (side["task"], side["seed"], side["time_reference"], side["region"]["start"]) == ("separate", 0, 576000, 24000)
    assert sha(env / "mix.wav") == before  # input untouched
    stamps = {p: p.stat().st_mtime_ns for p in outs}
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err  # never clobbered silently
    assert {p: p.stat().st_mtime_ns for p in outs} == stamps
    assert main(argv + ["--overwrite", "--seed", "1"]) == 0
    assert not list((env / "out").glob(".*"))  # no temp files left


@pytest.mark.parametrize(
    "argv,message",
    [
        (["separate", "mix.wav", "--start", "2", "--end", "9"], "past the end"),
        (["separate", "mix.wav", "--start", "1", "--end", "1"], "empty"),
        (["separate", "nope.wav"], "not found"),
        (["separate", "mix.wav", "--model", "kazoo"], "kazoo"),
        (["separate", "mix.wav", "--param", "steps=0"], "steps"),
    ],
)
def test_cli_errors_are_one_line(env, capsys, argv, message):
    wav(env / "mix.wav", seconds=3.0)
    assert main(argv + ["--out", "out"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (env / "out").exists() or not any((env / "out").iterdir())


@pytest.mark.parametrize(
    "argv,message",
    [
        (["export", "gmsdi", "--checkpoint", "none.pt", "--defaults", "{bad"], "--defaults is not JSON"),
        (["export", "msdm", "--checkpoint", "none.pt", "--defaults", "[1]"], "--defaults must be a JSON object"),
        (["eval", "riff", "--model", "riff-small", "--data", "none", "--params", "3"], "--params must be a JSON object"),
    ],
)
def test_json_options_are_refused_in_one_line_before_any_work(tmp_path, capsys, argv, message):
    assert main([*argv, "--exports" if argv[0] == "eval" else "--out", str(tmp_path / "exports")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "exports").exists()


def test_accompany_and_generate(env):
    wav(env / "ctx.wav", rate=44100, channels=1, seconds=1.0)
    assert main(["accompany", "ctx.wav", "--context-stems", "bass,drums", "--out", "acc"]) == 0
    assert sorted(p.name for p in (env / "acc").glob("*.wav")) == ["ctx_guitar_0.wav", "ctx_piano_0.wav"]
    assert read(env / "acc" / "ctx_piano_0.wav")[0].shape == (1, 44100)
    assert (
        main(["generate", "--seconds", "0.5", "--sr", "22050", "--stems", "piano", "--out", "gen", "--timeline", "1", "--seed", "4"]) == 0
    )
    (path,) = (env / "gen").glob("*.wav")
    audio, rate = read(path)
    assert (audio.shape, rate, time_reference(path)) == ((2, 11025), 22050, 22050)
    np.testing.assert_array_equal(audio[0], audio[1])  # dual mono


def test_preset_with_fx_and_numbered_outputs(env):
    (env / "presets").mkdir()
    (env / "presets" / "quiet.toml").write_text(
        'task = "separate"\nmodel = "echo"\nstems = ["piano"]\noutput = "{track}_{stem}.wav"\non_exists = "number"\nformat = "pcm24"\n'
        '[[fx]]\ntype = "Gain"\ngain_db = -20.0\n'
    )
    x = wav(env / "mix.wav", rate=16000, seconds=1.0)  # the model's rate: no band is lost
    assert main(["separate", "mix.wav", "--preset", "quiet", "--out", "o"]) == 0
    assert main(["separate", "mix.wav", "--preset", "quiet", "--out", "o"]) == 0
    assert sorted(p.name for p in (env / "o").glob("*.wav")) == ["mix_piano-2.wav", "mix_piano.wav"]
    piano, _ = read(env / "o" / "mix_piano.wav")
    ratio = np.sum(piano * x) / np.sum(x * x)
    assert ratio == pytest.approx(0.375 * 10 ** (-20 / 20), rel=0.02)  # echo piano gain x -20 dB


def test_session_file_runs_every_region(env):
    wav(env / "a.wav", rate=44100)
    wav(env / "b.wav", rate=96000, channels=1, seconds=1.0)
    (env / "s.toml").write_text(
        'session_rate = 48000\npreset = "s.toml-preset.toml"\nout = "stems"\n'
        '[[tracks]]\nname = "band"\nfile = "a.wav"\n'
        '[[tracks.regions]]\nname = "verse"\nstart = 0.5\nend = 1.0\ntimeline = 10.0\n'
        '[[tracks.regions]]\nname = "chorus"\nstart_sample = 0\nend_sample = 4410\n'
        '[[tracks]]\nfile = "b.wav"\n'
    )
    (env / "s.toml-preset.toml").write_text('task = "separate"\nstems = ["bass"]\n')
    assert main(["run", "s.toml"]) == 0
    names = sorted(p.name for p in (env / "stems").glob("*.wav"))
    assert names == ["b_bass_0.wav", "band_bass_chorus.wav", "band_bass_verse.wav"]
    assert time_reference(env / "stems" / "band_bass_verse.wav") == 441000  # 10 s at the file's 44.1 kHz
    assert read(env / "stems" / "b_bass_0.wav")[0].shape == (1, 96000)


def test_bad_session_names_field(env, capsys):
    wav(env / "a.wav", seconds=1.0)
    (env / "s.toml").write_text('preset = "x"\n[[tracks]]\nfile = "a.wav"\n[[tracks.regions]]\nstrat = 1.0\n')
    assert main(["run", "s.toml"]) == 2
    assert "tracks[0].regions[0]: unknown key 'strat'" in capsys.readouterr().err


def test_play_without_audio_device_is_a_warning(env, capsys):
    wav(env / "mix.wav", seconds=0.5)
    assert main(["separate", "mix.wav", "--out", "o", "--play"]) == 0
    assert "--play skipped" in capsys.readouterr().err


def test_engine_death_mid_job_leaves_no_output(env):
    """The engine process is killed while the job runs: typed error, no file, no temp file."""
    import threading

    from stemlink.launcher import connect

    wav(env / "mix.wav", seconds=2.0)
    preset = parse_preset({"task": "separate", "params": {"steps": 50, "sleep": 0.05}})
    job = Job(preset=preset, out_dir=env / "out", region=Region(env / "mix.wav"))
    with connect(None, embedded="process", heartbeat_timeout=2.0) as client:
        process = client.engine.process
        threading.Timer(1.0, process.kill).start()
        with pytest.raises(EngineUnavailable):
            run_job(client, job)
    assert not (env / "out").exists() or not any((env / "out").iterdir())


def test_progress_bar_redraws_on_a_terminal_and_writes_lines_to_a_log():
    import io

    from stemlink.plugin_host.cli import ProgressBar

    log = io.StringIO()  # not a terminal: one line per tenth, no carriage returns
    bar = ProgressBar("separate", stream=log)
    for done in range(101):
        bar(done, 100)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines == [f"separate {p:3d}%" for p in range(0, 101, 10)]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar("separate", stream=tty)
    bar(0, 4)
    bar(4, 4)
    bar.close()
    assert tty.getvalue().startswith("\rseparate [") and tty.getvalue().endswith("100%\n")


@pytest.mark.parametrize(
    "extra,message",
    [
        ([], "accompany needs --context-stems: which stems of model 'echo' (bass, drums, guitar, piano) the region holds"),
        (
            ["--context-stems", "bass,drums", "--stems", "drums"],
            "stem(s) drums in both --stems and --context-stems: the region already holds them; generate guitar, piano instead",
        ),
        (["--context-stems", "bass,drums,guitar,piano"], "nothing to accompany"),
        (["--context-stems", "bass,kazoo"], "stem 'kazoo' is not a stem of model 'echo'"),
    ],
)
def test_accompany_stems_are_checked_before_the_engine_works(env, capsys, extra, message):
    wav(env / "ctx.wav", seconds=0.5)
    assert main(["accompany", "ctx.wav", "--model", "echo", "--out", "acc", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (env / "acc").exists() or not any((env / "acc").iterdir())


def test_score_gives_each_input_its_own_region(env, capsys):
    x = wav(env / "a.wav", rate=16000, channels=1, seconds=3.0)
    with AudioFile(str(env / "b.wav"), "w", 16000, 1, bit_depth=32) as f:
        f.write(x[:, 16000:32000])  # b = second 1..2 of a
    assert main(["score", "a.wav", "b.wav", "--model", "echo", "--json", "--start-a", "1", "--end-a", "2"]) == 0
    out, err = capsys.readouterr()
    same = json.loads(out)["score"]
    assert "warning" not in err  # equal spans
    assert main(["score", "a.wav", "b.wav", "--model", "echo", "--json"]) == 0  # 3 s against 1 s: padded, and said so
    out, err = capsys.readouterr()
    assert "warning: A's region is 3.000 s and B's 1.000 s: the engine zero-pads the shorter" in err
    assert json.loads(out)["score"] < same
    assert (
        main(["score", "a.wav", "b.wav", "--model", "echo", "--json", "--start", "0", "--seconds", "1"]) == 0
    )  # shared options still work
    assert "warning" not in capsys.readouterr().err
    assert main(["score", "a.wav", "b.wav", "--model", "echo", "--start-b", "2"]) == 2
    assert "B (b.wav): region starts at sample 32000, past the end" in capsys.readouterr().err


def test_session_output_names_are_checked_before_any_job(env, capsys):
    """Two tracks whose outputs would both be bass.wav: refused before the first job wrote anything."""
    wav(env / "a.wav", seconds=0.5)
    wav(env / "b.wav", seconds=0.5)
    (env / "s.toml").write_text('preset = "p.toml"\nout = "stems"\n[[tracks]]\nfile = "a.wav"\n[[tracks]]\nfile = "b.wav"\n')
    (env / "p.toml").write_text('task = "separate"\nmodel = "echo"\nstems = ["bass"]\noutput = "{stem}.wav"\n')
    assert main(["run", "s.toml"]) == 2
    assert "two outputs of this run would both be named stems/bass.wav" in capsys.readouterr().err
    assert not (env / "stems").exists() or not any((env / "stems").iterdir())


def test_an_engine_warning_is_printed_as_one_line(exports, env, tmp_path_factory, monkeypatch, capsys):
    """accompany --candidates 4 on an engine with no score model: the stems are written and
    stderr says, in one line, that the candidates were not ranked."""
    unranked = build_echo_export(
        tmp_path_factory.mktemp("unranked"), sample_rate=16000, window=8192, tasks=("separate", "accompany"), formats=("torchscript",)
    )
    monkeypatch.setenv("STEMLINK_EXPORTS", str(unranked))
    wav(env / "ctx.wav", seconds=1.0)
    assert main(["accompany", "ctx.wav", "--context-stems", "bass,drums", "--candidates", "4", "--out", "acc"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "candidates=4" in lines[0] and "not ranked" in lines[0]
    assert sorted(p.name for p in (env / "acc").glob("*.wav")) == ["ctx_guitar_0.wav", "ctx_piano_0.wav"]
