"""The Ardour round trip, measured (`stemlink bench --only daw`): a real session, the shipped
default separator, Ardour's own tools to check the result.

A 44.1 kHz session is created with `ardour7-lua`; its track "mix" holds a region of the shipped
demo song's mix (`exports/demo-song/`: an arrangement rendered with another seed than the
training corpus, same renderer and soundfont): `seconds` long, 2 s into the file, at timeline
sample 44,100 + 17. Then `stemlink daw ardour SESSION --regions mix.1` runs as
a user would run it (a fresh process: engine start, model load, separation, session rewrite),
timed by wall clock. Ardour reloads the session (new tracks, positions, lengths) and
`ardour7-export` renders it twice: the original region alone and the stems alone (the original
region muted); the null residual is their difference relative to the original, with the
cross-correlation lag. The stems are also scored against the demo song's true stems (SI-SDR and
SI-SDRi over the whole region, per stem).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pedalboard.io import AudioFile

from stemlink.apps.bench.quiet_separation import si_sdr

DEMO = Path(__file__).resolve().parents[3] / "exports" / "demo-song"
RATE = 44100
OFFSET = 2 * RATE


def _read(path: Path, rate: int = RATE) -> np.ndarray:
    with AudioFile(str(path)) as f:
        assert int(f.samplerate) == rate, f"{path}: {f.samplerate} Hz"
        return f.read(f.frames).astype(np.float64)


def _lag(a: np.ndarray, b: np.ndarray, span: int = 64) -> int:
    core = slice(span, a.shape[1] - span)
    return max(range(-span, span + 1), key=lambda k: float(np.sum(a[:, core] * np.roll(b, k, axis=1)[:, core])))


CASES = (
    # (name, session rate, how the job runs)
    ("cli, 44.1 kHz session", 44100, "cli"),
    ("cli, 48 kHz session, 44.1 kHz source", 48000, "cli"),
    ("Lua script in the Ardour GUI, 48 kHz session, 44.1 kHz source", 48000, "gui"),
)


def _run_cli(session: Path, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "stemlink", "daw", "ardour", str(session), "--regions", "mix.1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"stemlink daw ardour failed (exit {done.returncode}): {done.stderr[-2000:]}")


def _run_gui(session: Path, env: dict[str, str], folder: Path) -> None:
    from stemlink.plugin_host.daw.ardour.gui import lua_string, run_in_gui

    script = Path(__file__).resolve().parents[2] / "plugin_host" / "daw" / "ardour" / "stemlink.lua"
    command = f"{sys.executable} -m stemlink"
    code = f"""
    local sl = ArdourUI.SelectionList ()
    for t in Session:get_tracks ():iter () do
      for r in t:to_track ():playlist ():region_list ():iter () do sl:push_back (Editor:regionview_from_region (r)) end
    end
    Editor:set_selection (sl, ArdourUI.SelectionOp.Set)
    function ardour (info) end
    assert (loadfile ({lua_string(str(script))})) ()
    factory ({{ command = {lua_string(command)}, task = "separate", options = "" }}) ()
    Session:save_state ("", false, false, false, false, false)
    """
    log = folder / "hook.log"
    run_in_gui(session, code, log=log, env={**env, "STEMLINK_NO_DIALOG": "1"}, timeout=600)
    if "ok true" not in log.read_text():
        raise RuntimeError(f"the Lua script failed in the Ardour GUI: {log.read_text()}")


def _case(
    name: str, rate: int, how: str, mix: np.ndarray, truth: dict[str, np.ndarray], length: int, env: dict[str, str]
) -> dict[str, Any]:
    from stemlink.plugin_host.daw.ardour.headless import export, list_regions, mute_regions, session_with_region
    from stemlink.plugin_host.daw.ardour.session import read_session

    position = rate + 17
    with tempfile.TemporaryDirectory(prefix="stemlink-bench-ardour-") as tmp:
        folder = Path(tmp)
        session, _ = session_with_region(
            folder, "bench", rate, mix.astype(np.float32), RATE, position=position, offset=OFFSET, length=length
        )
        before, _ = export(session, folder / "before.wav")
        t0 = time.perf_counter()
        _run_cli(session, env) if how == "cli" else _run_gui(session, env, folder)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = list_regions(session)
        reload = time.perf_counter() - t0
        new = [r for r in rows if r[0] != "mix"]
        placed = len(new) > 0 and all((pos, n, start) == (position, length, 0) for _, _, pos, n, start in new)
        stems = {}
        if how == "cli":  # the GUI's import splits each stem into mono files of its own
            audio_dir = read_session(session).audio_dir
            stems = {t.rsplit(" - ", 1)[-1]: _read(audio_dir / f"mix-mix.1-{t.rsplit(' - ', 1)[-1]}.wav", rate) for t, *_ in new}
        mute_regions(session, ["mix"])
        after, _ = export(session, folder / "stems.wav")
    span = slice(position, position + length)
    region_mix = mix[:, OFFSET : OFFSET + length]
    quality = {}
    for stem, est in stems.items():
        ref = truth[stem][:, OFFSET : OFFSET + length]
        sdr, base = si_sdr(est.ravel(), ref.ravel()), si_sdr(region_mix.ravel(), ref.ravel())
        quality[stem] = {"si_sdr": round(sdr, 2), "si_sdri": round(sdr - base, 2)}
    return {
        "case": name,
        "session_rate": rate,
        "position": position,
        "wall_s": round(wall, 2),
        "reload_s": round(reload, 2),
        "tracks": [r[0] for r in new],
        "placed_exactly": placed,
        "null_residual_db": round(float(10 * np.log10(np.sum((before - after) ** 2) / np.sum(before**2))), 1),
        "lag": _lag(before[:, span], after[:, span]),
        "lengths_equal": before.shape == after.shape,
        "stems": quality,
        "mean_si_sdri": round(float(np.mean([q["si_sdri"] for q in quality.values()])), 2) if quality else None,
    }


def bench_ardour(seconds: float = 10.0, *, exports: Path | None = None, log: Any = print) -> dict[str, Any]:
    from stemlink.plugin_host.daw.ardour import gui
    from stemlink.plugin_host.daw.ardour.headless import EXPORT, LUA, MISSING

    if LUA is None or EXPORT is None:
        log(f"  skipped: {MISSING}")
        return {"skipped": MISSING}
    length = int(round(seconds * RATE))
    mix = _read(DEMO / "mix.flac")
    truth = {p.stem: _read(p) for p in sorted(DEMO.glob("*.flac")) if p.stem != "mix"}
    env = dict(os.environ)
    if exports is not None:
        env["STEMLINK_EXPORTS"] = str(exports)
    env.pop("STEMLINK_ENGINE", None)
    cases = []
    for name, rate, how in CASES:
        if how == "gui" and (gui.ARDOUR is None or gui.XVFB_RUN is None):
            log(f"  {name}: skipped ({gui.MISSING})")
            continue
        case = _case(name, rate, how, mix, truth, length, env)
        cases.append(case)
        scores = ", ".join(f"{k} {v['si_sdri']:.1f}" for k, v in case["stems"].items())
        log(
            f"  {name}: {case['wall_s']:.1f} s wall (cold start included), reload {case['reload_s']:.1f} s; "
            f"{len(case['tracks'])} tracks placed exactly: {case['placed_exactly']}; null {case['null_residual_db']:.1f} dB, "
            f"lag {case['lag']}" + (f"; SI-SDRi {scores} dB" if scores else "")
        )
    return {
        "region": {"seconds": seconds, "source_rate": RATE, "offset": OFFSET, "frames": length},
        "command": "stemlink daw ardour SESSION --regions mix.1, or stemlink.lua in the GUI (default separate model, fresh process)",
        "cases": cases,
    }
