"""No traceback, ever, about where files go: the output folder is checked before the engine
works (a directory, writable, not in /proc, with room), a later I/O failure is one line with
exit code 2 and leaves no file or temp file, and an input that is a folder or FIFO says so."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

import stemlink.plugin_host.jobs as jobs_module
import stemlink.plugin_host.outputs as outputs_module
from stemlink.bridge.client import Client
from stemlink.cli import main
from stemlink.errors import OutputError
from stemlink.lab.export.echo import build_echo_export
from stemlink.plugin_host.outputs import check_out_dir


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return build_echo_export(tmp_path_factory.mktemp("exports"), sample_rate=44100, window=8192, formats=("torchscript",))


@pytest.fixture
def env(exports, cli_workdir, monkeypatch):
    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))
    return cli_workdir


@pytest.fixture
def submits(monkeypatch):
    """Counts jobs sent to the engine (a check "before computing" must leave it at 0)."""
    calls = []
    real = Client.submit

    def spy(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", spy)
    return calls


def one_error(capsys, code) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def nothing_in(folder) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


def oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_out_below_a_regular_file(env, capsys, submits):
    (env / "notes.txt").write_text("keep me\n")
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "notes.txt/stems"]))
    assert "notes.txt/stems is inside" in line and "not a directory (a regular file)" in line
    assert (env / "notes.txt").read_text() == "keep me\n" and submits == []


def test_out_is_a_regular_file(env, capsys):
    (env / "out").write_text("")
    assert "output folder out is not a directory (a regular file)" in one_error(capsys, main(["separate", "mix.wav", "--out", "out"]))


def test_out_in_proc(env, capsys, submits):
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "/proc/stemlink-out"]))
    assert "is under /proc, a virtual filesystem" in line and submits == []


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a chmod 555 folder anyway; see the simulated EACCES/EROFS tests"
)
def test_out_in_an_unwritable_folder(env, capsys, submits):
    (env / "locked").mkdir(mode=0o555)
    try:
        line = one_error(capsys, main(["separate", "mix.wav", "--out", "locked/out"]))
    finally:
        (env / "locked").chmod(0o755)
    assert "not writable: Permission denied" in line and submits == []


@pytest.mark.parametrize("exists", [True, False])
@pytest.mark.parametrize("code,text", [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")])
def test_out_not_writable_is_found_before_computing(env, capsys, submits, monkeypatch, code, text, exists):
    def refuse(*args, **kwargs):
        raise oserror(code)

    if exists:
        (env / "out").mkdir()
    monkeypatch.setattr(outputs_module.tempfile, "mkstemp", refuse)
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "out"]))
    where = "" if exists else f" (cannot be created in {os.path.realpath(env)})"
    assert line == f"error: output folder out is not writable{where}: {text}" and submits == []


def test_not_enough_space_is_found_before_computing(env, capsys, submits, monkeypatch):
    usage = shutil.disk_usage(env)
    monkeypatch.setattr(outputs_module.shutil, "disk_usage", lambda path: usage._replace(free=100_000))
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "out"]))
    need = outputs_module.expected_bytes(44100, 2, 4)  # 4 float32 stereo stems + margin
    assert f"not enough space in out: the outputs need about {need / 1e6:.1f} MB, 0.1 MB free" in line
    assert submits == [] and nothing_in(env / "out")


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(env, capsys, monkeypatch):
    real, calls = jobs_module.BwfWriter.write, []

    def write(self, block):
        calls.append(1)
        if len(calls) == 3:  # the third stem: two WAVs (and their sidecars) are already in temp files
            raise oserror(errno.ENOSPC)
        real(self, block)

    monkeypatch.setattr(jobs_module.BwfWriter, "write", write)
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "out"]))
    assert line == "error: cannot write out/mix_guitar_0.wav: No space left on device"
    assert nothing_in(env / "out")  # no WAV, no sidecar, no .part temp file


def test_failure_while_placing_files_removes_the_ones_placed(env, capsys, monkeypatch):
    real, calls = os.link, []

    def link(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 5:
            raise oserror(errno.EROFS)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(outputs_module.os, "link", link)
    line = one_error(capsys, main(["separate", "mix.wav", "--out", "out"]))
    assert "cannot write out/mix_guitar_0.wav: Read-only file system" in line
    assert nothing_in(env / "out")


def test_session_space_is_checked_for_all_jobs_before_the_first(env, capsys, submits, monkeypatch):
    (env / "s.toml").write_text(
        'preset = "p.toml"\nout = "out"\n[[tracks]]\nname = "a"\nfile = "mix.wav"\n[[tracks]]\nname = "b"\nfile = "mix.wav"\n'
    )
    (env / "p.toml").write_text('task = "separate"\nmodel = "echo"\nstems = ["bass"]\n')
    one_job = outputs_module.expected_bytes(44100, 2, 1)
    usage = shutil.disk_usage(env)
    monkeypatch.setattr(outputs_module.shutil, "disk_usage", lambda path: usage._replace(free=one_job + 1000))
    assert "not enough space in" in one_error(capsys, main(["run", "s.toml"]))
    assert submits == [] and nothing_in(env / "out")


def test_fifo_input_says_fifo(env, capsys):
    os.mkfifo(env / "pipe.wav")  # never opened: opening a FIFO would block
    assert "pipe.wav is not a regular file (FIFO)" in one_error(capsys, main(["separate", "pipe.wav", "--out", "out"]))


def test_folder_input_says_folder(env, capsys):
    (env / "takes.wav").mkdir()
    assert "takes.wav is a directory, not an audio file" in one_error(capsys, main(["separate", "takes.wav", "--out", "out"]))


def test_check_out_dir_probes_without_creating(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_out_dir(target, 10) == target and not (tmp_path / "a").exists() and not any(tmp_path.iterdir())
    target.mkdir(parents=True)
    assert check_out_dir(target, 10) == target and not any(target.iterdir())  # the probe file is gone
    with pytest.raises(OutputError, match="not enough space"):
        check_out_dir(target, 2**62)
