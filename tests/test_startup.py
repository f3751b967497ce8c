"""A fast start and a fast "no": commands that need no model never import torch or
onnxruntime, `status` answers without an engine, and `serve --background` keeps a warm one.

Every check is on modules, files and exit codes, never on seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

HEAVY = ("torch", "onnxruntime")
WAIT = 300  # seconds a subprocess may take on a loaded 2-core machine (a hang, not slowness, fails)

PROBE = """
import json, sys
from stemlink.cli import main
try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as exc:
    rc = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"rc": rc, "heavy": heavy}}))
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def cli(argv: list[str], env: dict[str, str] | None = None, cwd=None) -> tuple[dict, subprocess.CompletedProcess]:
    """Run `stemlink ARGV` in a fresh interpreter; returns its exit code and the heavy modules it loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No engine address, keys or state from the caller's environment."""
    for name in ("STEMLINK_ENGINE", "STEMLINK_CURVE", "STEMLINK_CLIENT", "STEMLINK_BIND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEMLINK_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize(
    "argv,rc",
    [
        (["--help"], 0),
        (["presets"], 0),
        (["status", "--engine", "tcp://127.0.0.1:{port}"], 2),
        (["status", "--engine", "ipc:///nonexistent/stemlink.sock"], 2),
        (["separate", "missing.wav", "--start", "0", "--end", "1"], 2),
        (["separate"], 2),  # argparse: a required argument is missing
        (["separate", "x.wav", "--start", "abc"], 2),
        (["generate", "--seconds", "-1"], 2),
        (["accompany", "missing.wav", "--context-stems", "bass"], 2),
        (["score", "missing-a.wav", "missing-b.wav"], 2),
        (["models", "--engine", "tcp://127.0.0.1:{port}", "--timeout", "1"], 2),
        (["serve", "--stop"], 0),
        (["serve", "--background", "--bind", "tcp://127.0.0.1:*"], 2),
        (["keys", "init", "{tmp}/keys", "--client", "studio-a"], 0),
    ],
)
def test_commands_without_a_model_never_import_torch(clean_env, argv, rc):
    port = closed_port()
    argv = [a.format(port=port, tmp=clean_env) for a in argv]
    result, proc = cli(argv, cwd=clean_env)
    assert result["heavy"] == [], f"{argv} imported {result['heavy']}; stderr: {proc.stderr[-2000:]}"
    assert result["rc"] == rc, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_status_without_engine_says_so_and_starts_none(clean_env):
    probe = PROBE.replace("{heavy!r}", repr(HEAVY + ("numpy", "stemlink.engine.server")))
    proc = subprocess.run(
        [sys.executable, "-c", probe.format(), json.dumps(["status", "--engine", f"tcp://127.0.0.1:{closed_port()}"])],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 2, "heavy": []}  # not even numpy: the answer is a TCP connect away
    assert proc.stderr.strip().startswith("error: no engine is running at tcp://127.0.0.1:")
    assert "stemlink serve --background" in proc.stderr
    result, proc = cli(["status"], env={"STEMLINK_ENGINE": "embedded"})
    assert result == {"rc": 2, "heavy": []} and "no engine is running" in proc.stderr


@pytest.mark.parametrize(
    "address,ok",
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.4.5.6:1", True),
        ("tcp://localhost:1", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///tmp/x", True),
        ("inproc://x", True),
        ("tcp://127.0.0.1.example.com:5555", False),
        ("tcp://127.evil:1", False),
        ("tcp://localhost.example.com:1", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://*:5555", False),
        ("tcp://10.1.2.3:5555", False),
        ("tcp://[::]:1", False),
        ("tcp://[bad:1", False),
        ("udp://127.0.0.1:1", False),
    ],
)
def test_loopback_is_an_ip_literal_or_localhost(address, ok):
    from stemlink.commands.serve import is_loopback

    assert is_loopback(address) is ok


def test_serve_refuses_a_lookalike_loopback_host_from_the_environment(clean_env):
    result, proc = cli(["serve"], env={"STEMLINK_BIND": "tcp://127.0.0.1.example.com:5999"})
    assert result["rc"] == 2 and "pass it explicitly with --bind" in proc.stderr


def test_serve_background_keeps_a_warm_engine(clean_env):
    from stemlink.lab.export.echo import build_echo_export

    exports = build_echo_export(clean_env / "exports", sample_rate=16000, window=4096)
    address = f"tcp://127.0.0.1:{closed_port()}"
    state = clean_env / "state"
    start = [sys.executable, "-m", "stemlink", "serve", "--background", "--bind", address, "--exports", str(exports)]
    pid = None
    try:
        proc = subprocess.run(start, capture_output=True, text=True, timeout=WAIT)
        assert proc.returncode == 0, proc.stderr
        assert f"engine running at {address}" in proc.stdout
        pid = int((state / "engine.pid").read_text().split()[0])
        assert (state / "engine.log").is_file()

        result, status = cli(["status", "--engine", address])
        assert result == {"rc": 0, "heavy": []} and f"engine at {address}" in status.stdout
        result, models = cli(["models", "--engine", address])
        assert result["rc"] == 0 and "echo" in models.stdout and result["heavy"] == []

        again = subprocess.run(start, capture_output=True, text=True, timeout=WAIT)
        assert again.returncode == 0 and "already running" in again.stdout

        stop = subprocess.run([sys.executable, "-m", "stemlink", "serve", "--stop"], capture_output=True, text=True, timeout=WAIT)
        assert stop.returncode == 0 and f"stopped the background engine at {address} (pid {pid})" in stop.stdout
        assert not (state / "engine.pid").exists()
        assert not os.path.exists(f"/proc/{pid}") or b"serve" not in open(f"/proc/{pid}/cmdline", "rb").read()
        pid = None
        assert "serving" in (state / "engine.log").read_text() and "stopped" in (state / "engine.log").read_text()
    finally:
        if pid is not None:  # the test failed half way: do not leave an engine behind
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def test_serve_background_reports_an_engine_that_cannot_start(clean_env):
    missing_keys = clean_env / "no-keys"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stemlink",
            "serve",
            "--background",
            "--bind",
            f"tcp://127.0.0.1:{closed_port()}",
            "--curve",
            str(missing_keys),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    if proc.returncode == 0:  # it should not have started: stop it before failing
        subprocess.run([sys.executable, "-m", "stemlink", "serve", "--stop"], timeout=WAIT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: the background engine exited with code 2") and "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr  # the engine's own one-line error, from its log
    assert not (clean_env / "state" / "engine.pid").exists()
