"""Rewriting an Ardour session file safely: refuse while Ardour has it, keep a backup, never
lose an edit.

`SessionGuard(path)` is used as a context manager around the whole job:

- on entry it refuses (`SessionBusy`, one line saying what to do) when
  * `NAME.pending` exists (Ardour writes it while recording and leaves it after a crash),
  * a running Ardour process holds files of the session folder open or names it on its
    command line (Linux: `/proc/*/fd` and `/proc/*/cmdline`; the GUI and `ardour7-lua` both
    keep every source file open while a session is loaded),
  * another stemlink job holds `.stemlink.lock` in the session folder (created O_EXCL, holding
    our pid; a lock whose process is gone is taken over);
  and records the session file's bytes;
- `commit(text)` checks the file still has those bytes (else `SessionBusy`: it was saved while
  the job ran, and nothing is written), copies it to `NAME.ardour.stemlink-backup-<UTC time>`
  and replaces it atomically (temp file in the same folder, fsync, `os.replace`);
- on exit the lock is removed.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path

from stemlink.errors import StemlinkError

LOCK_NAME = ".stemlink.lock"
BACKUP_SUFFIX = ".stemlink-backup-"


class SessionBusy(StemlinkError):
    """The session is open in Ardour, being written, or changed while stemlink worked on it."""

    code = "SESSION_BUSY"


def _is_ardour(pid: str) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip().lower()
    except OSError:
        return False
    return comm.startswith("ardour") or comm == "luasession"


def ardour_holders(folder: Path) -> list[int]:
    """Pids of running Ardour processes that have files of `folder` open or name it in their arguments."""
    folder = folder.resolve()
    prefix = str(folder) + os.sep
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or not _is_ardour(entry.name):
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            named = any(
                str(Path(os.fsdecode(a)).resolve()).startswith(prefix) or Path(os.fsdecode(a)).resolve() == folder for a in args if a
            )
            held = named or any(os.readlink(fd).startswith(prefix) for fd in (entry / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to look at
        if held:
            found.append(int(entry.name))
    return found


def _lock_owner(lock: Path) -> int | None:
    try:
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class SessionGuard:
    def __init__(self, path: Path):
        self.path = path
        self.lock = path.parent / LOCK_NAME
        self.original: bytes = b""
        self._locked = False

    def __enter__(self) -> SessionGuard:
        pending = self.path.with_suffix(".pending")
        if pending.exists():
            raise SessionBusy(
                f"{pending} exists: Ardour is recording into this session or crashed while it was open; "
                "open the session in Ardour (let it recover), save and quit, then run stemlink again",
                field="session",
            )
        holders = ardour_holders(self.path.parent)
        if holders:
            raise SessionBusy(
                f"the session is open in Ardour (pid {', '.join(map(str, holders))}): save and close it first, "
                "or run the stemlink Lua script from inside Ardour (stemlink/plugin_host/daw/ardour/stemlink.lua)",
                field="session",
            )
        self._take_lock()
        try:
            self.original = self.path.read_bytes()
        except OSError:
            self._release()
            raise
        return self

    def _take_lock(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _lock_owner(self.lock)
                if owner is not None:
                    raise SessionBusy(
                        f"another stemlink job (pid {owner}) is writing this session ({self.lock})", field="session"
                    ) from None
                self.lock.unlink(missing_ok=True)  # a stale lock: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise SessionBusy(f"could not take {self.lock}", field="session")

    def _release(self) -> None:
        if self._locked:
            self.lock.unlink(missing_ok=True)
            self._locked = False

    def __exit__(self, *exc: object) -> None:
        self._release()

    def check_unchanged(self) -> None:
        try:
            now = self.path.read_bytes()
        except OSError as exc:
            raise SessionBusy(f"{self.path} can no longer be read ({exc}); nothing was written", field="session") from exc
        if now != self.original:
            raise SessionBusy(
                f"{self.path} was saved while stemlink worked on it; nothing was written to it "
                "(the stem files are in the session's audiofiles folder): run stemlink again",
                field="session",
            )

    def commit(self, write) -> Path:
        """`write(temp_path)` writes the new session; it replaces the file after a backup. Returns the backup's path."""
        self.check_unchanged()
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = self.path.with_name(f"{self.path.name}{BACKUP_SUFFIX}{stamp}")
        shutil.copy2(self.path, backup)
        temp = self.path.with_name(f".{self.path.name}.stemlink-tmp-{os.getpid()}")
        try:
            write(temp)
            with open(temp, "rb+") as f:
                os.fsync(f.fileno())
            shutil.copymode(self.path, temp)
            self.check_unchanged()
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)
        return backup
