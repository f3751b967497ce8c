"""Ardour 7 without its GUI, for the tests and the bench: `ardour7-lua` (create a session, list
its regions as Ardour loads them, mute regions, save) and `ardour7-export` (render the master
bus over the session range to a float WAV). Each call is one process (Dummy backend, ~2-3 s).
A tool that is missing or fails raises `ArdourToolError` with the tool's log."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

LUA = shutil.which("ardour7-lua")
EXPORT = shutil.which("ardour7-export")


class ArdourToolError(RuntimeError):
    """`ardour7-lua` / `ardour7-export` is missing, failed or printed an error."""


MISSING = (
    "Ardour 7's headless tools (ardour7-lua, ardour7-export; Debian package ardour) are not installed: `bash setup.sh test` installs them"
)


DONE = "stemlink-lua-script-done"


def lua(script: str, timeout: float = 120) -> str:
    """Run a Lua script in `ardour7-lua` (Dummy backend); its stdout. Success is the script
    reaching its end (a marker printed last): Ardour's own log lines, such as an `[ERROR]` for
    one of its MIDI patch files that now and then fails to parse, do not count."""
    if LUA is None:
        raise ArdourToolError(MISSING)
    done = subprocess.run([LUA], input=script + f'\nprint("{DONE}")\n', capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or DONE not in done.stdout:
        raise ArdourToolError(f"ardour7-lua failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
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
    if EXPORT is None:
        raise ArdourToolError(MISSING)
    for _ in range(3):  # ardour7-export 7.3 now and then aborts at the start with heap corruption (glibc
        # "free(): invalid next size"), on sessions it renders fine on the next call: retry a crash, never a failure
        done = subprocess.run(
            [EXPORT, "-b", "float", "-o", str(out), str(session.parent), session.stem], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode >= 0:
            break
    if done.returncode != 0 or not out.is_file():
        raise ArdourToolError(f"ardour7-export failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    with AudioFile(str(out)) as f:
        return f.read(f.frames).astype(np.float64), int(f.samplerate)


def session_with_region(
    folder: Path, name: str, rate: int, source: np.ndarray, source_rate: int, *, position: int, offset: int, length: int
) -> tuple[Path, Path]:
    """A session created by Ardour (`folder/name/name.ardour`) with one track "mix" holding region
    "mix.1": `length` samples of `source` ((C, N) float32, written as a float WAV at
    `source_rate` into the session's audiofiles) from `offset`, at timeline `position`.
    Returns (session file, source file)."""
    from stemlink.plugin_host.daw.ardour.session import StemTrack, add_stem_tracks, read_session, write_session

    path = create_session(folder / name, name, rate)
    session = read_session(path)
    session.audio_dir.mkdir(parents=True, exist_ok=True)
    file = session.audio_dir / "src.wav"
    with AudioFile(str(file), "w", source_rate, source.shape[0], bit_depth=32) as f:
        f.write(np.ascontiguousarray(source, dtype=np.float32))
    track = StemTrack("mix", file, source.shape[0], length, position, "mix.1", start=offset, file_frames=source.shape[1])
    add_stem_tracks(session, [track])
    write_session(session, path)
    return path, file
