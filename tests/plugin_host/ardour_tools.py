"""Driving Ardour 7 headless for the tests: `ardour7-lua` (create, inspect, mute, save) and
`ardour7-export` (render the session's master bus to a float WAV). Each call is one process."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

LUA = shutil.which("ardour7-lua")
EXPORT = shutil.which("ardour7-export")
MISSING = (
    "Ardour 7's headless tools (ardour7-lua, ardour7-export; Debian package ardour) are not installed: `bash setup.sh test` installs them"
)


def lua(script: str, timeout: float = 120) -> str:
    """Run a Lua script in `ardour7-lua` (Dummy backend); its stdout, or AssertionError with the log."""
    assert LUA is not None, MISSING
    done = subprocess.run([LUA], input=script, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Error" not in out and "error:" not in out, out[-3000:]
    return done.stdout


def create_session(folder: Path, name: str, rate: int) -> Path:
    """A new empty Ardour session saved at `folder/name.ardour`."""
    lua(
        f'local s = create_session("{folder}", "{name}", {rate})\nassert(s)\ns:save_state("", false, false, false, false, false)\nclose_session()\n'
    )
    return folder / f"{name}.ardour"


def list_regions(session: Path) -> list[tuple[str, str, int, int, int]]:
    """(track, region, position, length, start) for every region on every track, as Ardour loads them."""
    out = lua(
        f'local s = load_session("{session.parent}", "{session.stem}")\nassert(s)\n'
        "for t in s:get_tracks():iter() do\n"
        "  for r in t:to_track():playlist():region_list():iter() do\n"
        '    print(table.concat({"REGION", t:name(), r:name(), r:position():samples(), r:length():samples(), r:start():samples()}, "\\t"))\n'
        "  end\nend\nclose_session()\n"
    )
    rows = []
    for line in out.splitlines():
        if line.startswith("REGION\t"):
            _, track, region, pos, length, start = line.split("\t")
            rows.append((track, region, int(pos), int(length), int(start)))
    return rows


def mute_regions(session: Path, tracks: list[str]) -> None:
    """Mute every region of these tracks and save (to render the other tracks alone). Region mute
    is a property Ardour saves; a track's mute control is realtime and needs a running engine."""
    wanted = ", ".join(f'["{n}"] = true' for n in tracks)
    lua(
        f'local s = load_session("{session.parent}", "{session.stem}")\nassert(s)\nlocal mute = {{{wanted}}}\n'
        "for t in s:get_tracks():iter() do\n"
        "  if mute[t:name()] then for r in t:to_track():playlist():region_list():iter() do r:set_muted(true) end end\n"
        'end\ns:save_state("", false, false, false, false, false)\nclose_session()\n'
    )


def export(session: Path, out: Path, timeout: float = 180) -> tuple[np.ndarray, int]:
    """Render the session (master bus, session range) with `ardour7-export`: ((C, N) float64, rate)."""
    assert EXPORT is not None, MISSING
    for _ in range(3):  # ardour7-export 7.3 now and then aborts at the start with heap corruption (glibc
        # "free(): invalid next size"), on sessions it renders fine on the next call: retry a crash, never a failure
        done = subprocess.run(
            [EXPORT, "-b", "float", "-o", str(out), str(session.parent), session.stem], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode >= 0:
            break
    assert done.returncode == 0 and out.is_file(), (done.stdout + done.stderr)[-3000:]
    with AudioFile(str(out)) as f:
        return f.read(f.frames).astype(np.float64), int(f.samplerate)
