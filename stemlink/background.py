"""A warm engine in the background: `stemlink serve --background` and `stemlink serve --stop`.

`start` spawns a detached `stemlink serve --preload ...` (its own session: closing the terminal
or Ctrl-C there does not stop it), records it in the state folder and waits until it answers;
clients then find it by themselves on the default address (`stemlink/bridge/discovery.py`), so
every later command skips the torch import and the model loading. State folder:
`$STEMLINK_STATE_DIR`, else `$XDG_RUNTIME_DIR/stemlink`, else `~/.cache/stemlink`:

    engine.pid    the engine's pid, then its address (one per line)
    engine.log    its log (appended; one line per job, refused CURVE handshakes)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from stemlink.errors import EngineUnavailable, InvalidInput

ENV_STATE_DIR = "STEMLINK_STATE_DIR"
PID_FILE = "engine.pid"
LOG_FILE = "engine.log"
START_TIMEOUT = 600.0  # seconds; a loaded 2-core machine needs minutes for torch and every model


def state_dir() -> Path:
    """Where the background engine's pid file and log live (see module docstring)."""
    if os.environ.get(ENV_STATE_DIR):
        return Path(os.environ[ENV_STATE_DIR])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "stemlink"
    return Path.home() / ".cache" / "stemlink"


@dataclass(frozen=True)
class BackgroundEngine:
    pid: int
    address: str
    log: Path


def _is_engine(pid: int) -> bool:
    """True while `pid` is a live `stemlink serve` (not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else: the cmdline decides
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the signal probe
    except OSError:
        return False
    return b"stemlink" in b" ".join(cmdline) and b"serve" in cmdline


def running() -> BackgroundEngine | None:
    """The background engine recorded in the state folder, if it still runs (a stale pid
    file is removed)."""
    folder = state_dir()
    path = folder / PID_FILE
    try:
        pid_text, address = path.read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if not _is_engine(pid):
        path.unlink(missing_ok=True)
        return None
    return BackgroundEngine(pid, address.strip(), folder / LOG_FILE)


def _listening(address: str) -> bool:
    from stemlink.bridge.discovery import port_open

    scheme, _, rest = address.partition("://")
    if scheme == "ipc":
        return Path(rest).exists()
    parts = urlsplit(f"//{rest}")
    return port_open(parts.hostname or "127.0.0.1", int(parts.port or 0), timeout=0.2)


def _check_address(address: str) -> None:
    scheme, _, rest = address.partition("://")
    if scheme == "ipc":
        return
    if scheme != "tcp":
        raise InvalidInput(f"--background needs a tcp:// or ipc:// address, got {address!r}", field="bind")
    try:
        port = urlsplit(f"//{rest}").port
    except ValueError:
        port = None
    if not port:
        raise InvalidInput(f"--background needs a fixed port (clients must know where to find it), got {address!r}", field="bind")


def start(serve_argv: list[str], address: str, *, curve: bool = False, timeout: float = START_TIMEOUT) -> tuple[BackgroundEngine, bool]:
    """Start `stemlink serve *serve_argv` detached and wait until it answers at `address`.
    Returns (engine, started): started is False when it was already running there."""
    from stemlink.bridge.discovery import answers_ping

    _check_address(address)
    current = running()
    if current is not None:
        if current.address == address:
            return current, False
        raise InvalidInput(
            f"a background engine already runs at {current.address} (pid {current.pid}); stop it first with `stemlink serve --stop`",
            field="bind",
        )
    if _listening(address):
        raise EngineUnavailable(
            f"{address} is already in use (a foreground `stemlink serve`? `stemlink status --engine {address}` tells)", field="bind"
        )
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / LOG_FILE
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} stemlink serve {' '.join(serve_argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "stemlink", "serve", *serve_argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    pid_path = folder / PID_FILE
    tmp = pid_path.with_suffix(".tmp")
    tmp.write_text(f"{process.pid}\n{address}\n")
    tmp.replace(pid_path)
    engine = BackgroundEngine(process.pid, address, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pid_path.unlink(missing_ok=True)
            tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-1:]
            raise EngineUnavailable(
                f"the background engine exited with code {process.returncode} before answering"
                f"{': ' + tail[0] if tail else ''} (log: {log_path})",
                field="bind",
            )
        # A CURVE engine answers no plain ping; its bind (after preloading) is the sign it is ready.
        if _listening(address) and (curve or answers_ping(address, timeout=1.0)):
            return engine, True
        if time.monotonic() > deadline:
            raise EngineUnavailable(
                f"the background engine (pid {process.pid}) did not answer at {address} within {timeout:g} s; "
                f"it may still be loading (log: {log_path}); `stemlink serve --stop` stops it",
                field="bind",
            )
        time.sleep(0.1)


def stop(timeout: float = 30.0) -> BackgroundEngine | None:
    """SIGTERM the background engine and wait for it (SIGKILL after `timeout`); None when
    none was running."""
    engine = running()
    if engine is None:
        return None
    os.kill(engine.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_engine(engine.pid):
        if time.monotonic() > deadline:
            os.kill(engine.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    (state_dir() / PID_FILE).unlink(missing_ok=True)
    return engine
