"""The embedded engine: a client with no server address runs the engine itself.

`Engine.start_embedded(exports_dir, transport="inproc")` serves from a thread of this process
over `inproc://` (same ZeroMQ context as the client: no sockets, no copies);
`transport="process"` starts `python -m stemlink serve` as a child process bound to an
`ipc://` socket in a private temp folder (isolated from the caller's crashes and the GIL; on
Linux the child gets SIGTERM when its parent dies). Either way, users never have to start a
server to try stemlink.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import zmq

from stemlink.engine.server.server import Server, ServerConfig
from stemlink.errors import EngineUnavailable, InvalidInput

TRANSPORTS = ("inproc", "process")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Engine:
    """A running engine: `address`, the `context` clients must use for inproc, `stop()`."""

    def __init__(
        self,
        address: str,
        context: zmq.Context,
        *,
        server: Server | None = None,
        process: subprocess.Popen | None = None,
        folder: Path | None = None,
    ):
        self.address = address
        self.context = context
        self.server = server
        self.process = process
        self.folder = folder

    @classmethod
    def start_embedded(
        cls,
        exports_dir: str | os.PathLike | None = None,
        transport: str = "inproc",
        *,
        context: zmq.Context | None = None,
        workers: int = 1,
        queue_size: int = 8,
        heartbeat_interval: float = 0.5,
        startup_timeout: float = 60.0,
    ) -> Engine:
        if transport not in TRANSPORTS:
            raise InvalidInput(f"embedded transport {transport!r} is not supported; allowed: {', '.join(TRANSPORTS)}", field="transport")
        context = context or zmq.Context.instance()
        exports = Path(exports_dir) if exports_dir is not None else None
        if transport == "inproc":
            config = ServerConfig(
                bind=f"inproc://stemlink-engine-{uuid.uuid4().hex}",
                exports_dir=exports,
                workers=workers,
                queue_size=queue_size,
                heartbeat_interval=heartbeat_interval,
            )
            server = Server(config, context=context).start(startup_timeout)
            return cls(server.address or config.bind, context, server=server)
        return cls._start_process(exports, context, workers, queue_size, heartbeat_interval, startup_timeout)

    @classmethod
    def _start_process(
        cls, exports: Path | None, context: zmq.Context, workers: int, queue_size: int, heartbeat_interval: float, startup_timeout: float
    ) -> Engine:
        folder = Path(tempfile.mkdtemp(prefix="stemlink-engine-"))
        sock = folder / "engine.sock"
        address = f"ipc://{sock}"
        cmd = [
            sys.executable,
            "-m",
            "stemlink",
            "serve",
            "--bind",
            address,
            "--workers",
            str(workers),
            "--queue",
            str(queue_size),
            "--heartbeat",
            str(heartbeat_interval),
        ]
        if exports is not None:
            cmd += ["--exports", str(exports)]
        log = open(folder / "engine.log", "wb")
        try:
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            log.close()
        engine = cls(address, context, process=process, folder=folder)
        deadline = time.monotonic() + startup_timeout
        while not sock.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "engine.log").read_text(errors="replace")[-2000:]
                engine.stop()
                raise EngineUnavailable(f"embedded engine process did not start (exit code {process.returncode}): {tail.strip()}")
            time.sleep(0.02)
        return engine

    @property
    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.server is not None and self.server._thread is not None and self.server._thread.is_alive()

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a child process that is dying (e.g. SIGKILLed: the kernel
        tears it down for a while) so `exit_info` can name the signal; True once it ended."""
        if self.process is None:
            return not self.alive
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_info(self) -> str:
        """ ": exit code N" for a child process that ended, else ""."""
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            return f": exit code {code}" + (f" (signal {-code})" if code < 0 else "")
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the engine down (SIGTERM for a child process; kill after `timeout`)."""
        if self.server is not None:
            self.server.stop(timeout)
            self.server = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
