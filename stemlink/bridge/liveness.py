"""How a client tells a busy engine from a dead one (the rule: `Client` docstring, PROTOCOL.md).

An engine under load (model loading, torch holding the GIL, a 20-deep run queue, SIGSTOP) can
be silent for many seconds while it is perfectly alive, so silence alone is a poor death test.
Two signals here do not depend on the engine's Python threads at all:

- `ProcessIdentity`: the engine reports its pid, the kernel's boot id and its process start
  time in `capabilities`. A client on the same kernel (same boot id, and /proc shows that pid
  with that start time) reads `/proc/PID/stat`: gone or zombie = dead at once; stopped ('T')
  or busy = alive. Different host, other pid namespace, no /proc: `process_state` says
  "unknown" and only the long silence limit applies.
- `ConnectionWatch`: the socket's ZeroMQ monitor events, produced by libzmq's own I/O thread:
  nothing accepting connections at the address, a connection dropped mid-job (the engine
  process exited, or the network reset it).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
ALIVE, STOPPED, GONE, UNKNOWN = "alive", "stopped", "gone", "unknown"


def _read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) of `pid`, None if no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces and ')'
    return rest[0], int(rest[19])


@functools.cache
def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessIdentity:
    """An engine process as it describes itself (all zero/empty when it cannot tell)."""

    pid: int = 0
    boot_id: str = ""
    start_ticks: int = 0

    @classmethod
    def of_this_process(cls) -> ProcessIdentity:
        try:
            stat = _read_stat(os.getpid())
        except (OSError, ValueError, IndexError):
            stat = None
        if stat is None:
            return cls(pid=os.getpid())
        return cls(pid=os.getpid(), boot_id=_boot_id(), start_ticks=stat[1])


def process_state(identity: ProcessIdentity) -> str:
    """ALIVE (running, sleeping, in I/O), STOPPED (SIGSTOP, traced), GONE (exited, zombie,
    pid reused by another process) or UNKNOWN (not on this kernel, or no /proc)."""
    if identity.pid <= 0 or not identity.boot_id or identity.boot_id != _boot_id():
        return UNKNOWN
    try:
        stat = _read_stat(identity.pid)
    except (OSError, ValueError, IndexError):
        return UNKNOWN
    if stat is None or stat[1] != identity.start_ticks or stat[0] in "ZXx":
        return GONE
    return STOPPED if stat[0] in "Tt" else ALIVE


CONNECTION_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED


class ConnectionWatch:
    """Follows the connection of one connecting socket from its monitor events, which
    `stemlink/bridge/auth.py` `HandshakeWatch` reads (a socket has one monitor) and passes to
    `on_event`; that watch also raises on a refused handshake.

    `drops` counts connections lost after a successful handshake; `problem()` names what
    keeps the socket from reaching an engine now (no connection for `connect_timeout`
    seconds), or None. inproc:// has no such events (the engine is a thread of this
    process): `watched=False`, never a problem.
    """

    def __init__(self, address: str, connect_timeout: float, *, watched: bool = True):
        self.address = address
        self.connect_timeout = connect_timeout
        self.watched = watched
        self.down_since: float | None = time.monotonic()  # None while a connection is up
        self.handshaken = False
        self.drops = 0

    def on_event(self, event: int) -> None:
        if event == zmq.EVENT_CONNECTED:
            self.down_since = None
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.handshaken = True
        elif event == zmq.EVENT_DISCONNECTED:
            self.drops += self.handshaken
            self.handshaken = False
            self.down_since = time.monotonic()

    def problem(self) -> str | None:
        if not self.watched or self.down_since is None or time.monotonic() - self.down_since <= self.connect_timeout:
            return None
        return f"nothing is listening at {self.address} (no connection for {self.connect_timeout:g} s)"
