"""Tier 1 of the Ardour round trip, headless: a session built by Ardour's own `ardour7-lua`,
`stemlink daw ardour` on it, then Ardour reloads the result and `ardour7-export` renders it.

The fixture session is what the issue asks for: 48 kHz, a stereo track "mix" whose region
"mix.1" sits at 1 s + 17 samples, starts 4,800 samples into its source, lasts 2 s (longer than
one window of the echo model: 8,192 samples at 16 kHz) and reads a 44.1 kHz file (which Ardour
plays sample for sample at the session rate). The null test renders the session before the job
(the original region alone) and after it with the original region muted (the stems alone).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import numpy as np
import pytest
from pedalboard.io import AudioFile

from stemlink.cli import main
from stemlink.lab.export.echo import build_echo_export
from stemlink.lab.nn.echo import ECHO_STEMS
from stemlink.plugin_host.daw.ardour.guard import SessionBusy, SessionGuard
from stemlink.plugin_host.daw.ardour.headless import EXPORT, LUA, MISSING, export, list_regions, mute_regions, session_with_region
from stemlink.plugin_host.daw.ardour.session import StemTrack, add_stem_tracks, read_session, write_session

pytestmark = pytest.mark.skipif(LUA is None or EXPORT is None, reason=MISSING)

POSITION = 48000 + 17
OFFSET = 4800
LENGTH = 96000


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("exports"), sample_rate=16000, window=8192, delay=3, formats=("torchscript",))


@pytest.fixture
def env(echo, tmp_path, monkeypatch):
    monkeypatch.setenv("STEMLINK_EXPORTS", str(echo))
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.setenv("STEMLINK_PRESETS", str(tmp_path / "presets"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def build_session(folder, rate=48000, source_rate=44100, position=POSITION, offset=OFFSET, length=LENGTH, name="song"):
    """An Ardour-created session with one stereo track "mix" holding region "mix.1"."""
    x = (0.1 * np.random.default_rng(1).standard_normal((2, offset + length + 1000))).astype(np.float32)
    x[1] *= -0.5
    return session_with_region(folder, name, rate, x, source_rate, position=position, offset=offset, length=length)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lag(a, b, span=64):
    """The shift of b against a (in samples) with the largest correlation, within +-span."""
    best = max(range(-span, span + 1), key=lambda k: float(np.sum(a[:, span:-span] * np.roll(b, k, axis=1)[:, span:-span])))
    return best


def test_separate_writes_one_track_per_stem_that_null_against_the_region(env):
    session, source = build_session(env)
    assert list_regions(session) == [("mix", "mix.1", POSITION, LENGTH, OFFSET)]  # Ardour reads the fixture as meant
    before, rate = export(session, env / "before.wav")
    original, source_hash = session.read_bytes(), digest(source)

    assert main(["daw", "ardour", str(session), "--regions", "mix.1", "--model", "echo"]) == 0

    rows = list_regions(session)
    assert rows[0] == ("mix", "mix.1", POSITION, LENGTH, OFFSET)
    assert sorted(rows[1:]) == sorted((f"mix.1 - {stem}", f"mix.1 - {stem}", POSITION, LENGTH, 0) for stem in ECHO_STEMS)
    backups = list(session.parent.glob("song.ardour.stemlink-backup-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert digest(source) == source_hash  # the user's audio is never touched
    assert not (session.parent / ".stemlink.lock").exists()
    for stem in ECHO_STEMS:  # the stems are at the session rate, with the region's length
        with AudioFile(str(read_session(session).audio_dir / f"mix-mix.1-{stem}.wav")) as f:
            assert (f.samplerate, f.num_channels, f.frames) == (48000, 2, LENGTH)

    mute_regions(session, ["mix"])
    stems, rate_after = export(session, env / "stems.wav")
    assert rate == rate_after == 48000 and stems.shape == before.shape
    assert np.abs(before[:, :POSITION]).max() == 0 and np.abs(before[:, POSITION : POSITION + LENGTH]).min(axis=1).max() >= 0
    residual = 10 * np.log10(np.sum((before - stems) ** 2) / np.sum(before**2))
    assert residual <= -60, residual
    assert lag(before[:, POSITION : POSITION + LENGTH], stems[:, POSITION : POSITION + LENGTH]) == 0


def test_accompany_in_a_44k_session(env):
    session, _ = build_session(env, rate=44100, source_rate=44100, position=44100 + 17)
    assert main(["daw", "ardour", str(session), "--all", "--task", "accompany", "--model", "echo", "--context-stems", "bass,drums"]) == 0
    rows = list_regions(session)
    assert sorted(rows[1:]) == [
        ("mix.1 - guitar", "mix.1 - guitar", 44100 + 17, LENGTH, 0),
        ("mix.1 - piano", "mix.1 - piano", 44100 + 17, LENGTH, 0),
    ]
    mute_regions(session, ["mix"])
    audio, rate = export(session, env / "acc.wav")
    assert rate == 44100
    assert np.abs(audio[:, : 44100 + 17]).max() == 0 and np.abs(audio[:, 44100 + 17 + 100 : 44100 + 17 + LENGTH - 100]).max() > 0.01


def test_a_second_run_adds_new_files_and_tracks_never_overwrites(env):
    session, _ = build_session(env)
    assert main(["daw", "ardour", str(session), "--regions", "mix.1", "--model", "echo", "--stems", "bass"]) == 0
    first = read_session(session).audio_dir / "mix-mix.1-bass.wav"
    first_hash = digest(first)
    assert main(["daw", "ardour", str(session), "--regions", "mix.1", "--model", "echo", "--stems", "bass"]) == 0
    assert digest(first) == first_hash
    names = [row[0] for row in list_regions(session)]
    assert names == ["mix", "mix.1 - bass", "mix.1 - bass 2"]


def test_refuses_a_session_open_in_ardour(env, capsys):
    session, _ = build_session(env)
    script = f'local s = load_session("{session.parent}", "song")\nos.execute("sleep 30")\nclose_session()\n'
    holder = subprocess.Popen([LUA], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdin is not None
    holder.stdin.write(script)
    holder.stdin.close()
    try:
        original = session.read_bytes()
        deadline = time.monotonic() + 60
        while True:  # wait until Ardour has loaded the session (it opens the sources)
            from stemlink.plugin_host.daw.ardour.guard import ardour_holders

            if ardour_holders(session.parent) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert main(["daw", "ardour", str(session), "--all", "--model", "echo"]) == 2
        assert "open in Ardour" in capsys.readouterr().err
        assert session.read_bytes() == original
        assert not list(session.parent.glob("*.stemlink-backup-*"))
    finally:
        holder.kill()
        holder.wait()


def test_refusals_leave_the_session_alone(env, capsys):
    session, _ = build_session(env)
    original = session.read_bytes()

    assert main(["daw", "ardour", str(session), "--model", "echo"]) == 2  # no selection: the choices are listed
    assert "'mix.1' (id" in capsys.readouterr().err
    assert main(["daw", "ardour", str(session), "--regions", "nope", "--model", "echo"]) == 2
    assert "no audio region named" in capsys.readouterr().err
    assert main(["daw", "ardour", str(session), "--selected", "--model", "echo"]) == 2  # Ardour saved no selection
    assert "no audio region was selected" in capsys.readouterr().err

    pending = session.with_suffix(".pending")
    pending.write_text("")
    assert main(["daw", "ardour", str(session), "--all", "--model", "echo"]) == 2
    assert "song.pending exists" in capsys.readouterr().err
    pending.unlink()

    lock = session.parent / ".stemlink.lock"
    lock.write_text(f"{os.getppid()}\n")  # a live process holds it
    assert main(["daw", "ardour", str(session), "--all", "--model", "echo"]) == 2
    assert "another stemlink job" in capsys.readouterr().err
    lock.write_text("999999999\n")  # a stale lock is taken over
    assert main(["daw", "ardour", str(session), "--all", "--model", "echo", "--stems", "bass"]) == 0
    assert not lock.exists()
    capsys.readouterr()

    future = session.with_name("future.ardour")
    future.write_text(original.decode().replace('version="7002"', 'version="9001"'))
    assert main(["daw", "ardour", str(future), "--all", "--model", "echo"]) == 2
    assert "version 9001 is unknown" in capsys.readouterr().err


def test_a_region_with_a_missing_file_stops_only_a_job_that_chooses_it(env, capsys):
    session, _ = build_session(env)
    s = read_session(session)
    lost = s.audio_dir / "lost.wav"
    with AudioFile(str(lost), "w", 48000, 1, bit_depth=32) as f:
        f.write(np.zeros((1, 48000), np.float32))
    add_stem_tracks(s, [StemTrack("other", lost, 1, 48000, 0, "lost.1")])
    write_session(s, session)
    lost.unlink()

    assert main(["daw", "ardour", str(session), "--list"]) == 0
    assert "unreadable" in capsys.readouterr().out
    assert main(["daw", "ardour", str(session), "--regions", "lost.1", "--model", "echo"]) == 2
    assert "'lost.wav' not found" in capsys.readouterr().err
    assert main(["daw", "ardour", str(session), "--all", "--model", "echo", "--stems", "bass"]) == 0
    assert "warning: skipped: region 'lost.1'" in capsys.readouterr().err
    assert [row[0] for row in list_regions(session) if row[0] != "other"] == ["mix", "mix.1 - bass"]


def test_a_session_saved_during_the_job_is_not_overwritten(env):
    session, _ = build_session(env)
    with SessionGuard(session) as guard:
        session.write_text(session.read_text().replace("</Session>", "<!-- saved by Ardour meanwhile --></Session>"))
        changed = session.read_bytes()
        with pytest.raises(SessionBusy, match="was saved while stemlink worked"):
            guard.commit(lambda path: path.write_text("stemlink's version"))
    assert session.read_bytes() == changed
    assert not list(session.parent.glob("*.stemlink-backup-*")) and not list(session.parent.glob(".*stemlink-tmp*"))


def test_stems_only_prints_a_manifest_and_leaves_the_session(env, capsys):
    session, _ = build_session(env)
    original = session.read_bytes()
    out = env / "stems"
    assert main(["daw", "ardour", str(session), "--regions", "mix.1", "--model", "echo", "--stems-only", str(out)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines() if "\t" in line]
    assert [(int(p), int(n), t) for p, n, t, _ in lines] == [(POSITION, LENGTH, f"mix.1 - {s}") for s in ECHO_STEMS]
    assert all(os.path.dirname(f) == str(out) and os.path.isfile(f) for *_, f in lines)
    assert session.read_bytes() == original
