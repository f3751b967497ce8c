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

DEMO = Path(__file__).resolve().parents[3] / "exports" / "demo-song"
RATE = 44100
POSITION = RATE + 17
OFFSET = 2 * RATE


def _read(path: Path) -> np.ndarray:
    with AudioFile(str(path)) as f:
        assert int(f.samplerate) == RATE, f"{path}: {f.samplerate} Hz"
        return f.read(f.frames).astype(np.float64)


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    est, ref = est.ravel(), ref.ravel()
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def _lag(a: np.ndarray, b: np.ndarray, span: int = 64) -> int:
    core = slice(span, a.shape[1] - span)
    return max(range(-span, span + 1), key=lambda k: float(np.sum(a[:, core] * np.roll(b, k, axis=1)[:, core])))


def bench_ardour(seconds: float = 10.0, *, exports: Path | None = None, log: Any = print) -> dict[str, Any]:
    from stemlink.plugin_host.daw.ardour.headless import EXPORT, LUA, MISSING, export, list_regions, mute_regions, session_with_region
    from stemlink.plugin_host.daw.ardour.session import read_session

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
    with tempfile.TemporaryDirectory(prefix="stemlink-bench-ardour-") as tmp:
        folder = Path(tmp)
        session, _ = session_with_region(
            folder, "bench", RATE, mix.astype(np.float32), RATE, position=POSITION, offset=OFFSET, length=length
        )
        before, _ = export(session, folder / "before.wav")
        command = [sys.executable, "-m", "stemlink", "daw", "ardour", str(session), "--regions", "mix.1"]
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"stemlink daw ardour failed (exit {done.returncode}): {done.stderr[-2000:]}")
        rows = list_regions(session)
        new = [r for r in rows if r[0] != "mix"]
        placed = all((pos, n, start) == (POSITION, length, 0) for _, _, pos, n, start in new)
        audio_dir = read_session(session).audio_dir
        stems = {}
        for track, *_ in new:
            stem = track.rsplit(" - ", 1)[-1]
            stems[stem] = _read(audio_dir / f"mix-mix.1-{stem}.wav")
        mute_regions(session, ["mix"])
        after, _ = export(session, folder / "stems.wav")
    span = slice(POSITION, POSITION + length)
    residual = float(10 * np.log10(np.sum((before - after) ** 2) / np.sum(before**2)))
    region_mix = mix[:, OFFSET : OFFSET + length]
    quality = {}
    for stem, est in stems.items():
        ref = truth[stem][:, OFFSET : OFFSET + length]
        sdr, base = _si_sdr(est, ref), _si_sdr(region_mix, ref)
        quality[stem] = {"si_sdr": round(sdr, 2), "si_sdri": round(sdr - base, 2)}
    result = {
        "region": {"seconds": seconds, "rate": RATE, "position": POSITION, "offset": OFFSET, "frames": length},
        "command": "stemlink daw ardour SESSION --regions mix.1 (default separate model, fresh process)",
        "wall_s": round(wall, 2),
        "wall_per_audio_second": round(wall / seconds, 3),
        "tracks": [r[0] for r in new],
        "placed_exactly": placed,
        "null_residual_db": round(residual, 1),
        "lag": _lag(before[:, span], after[:, span]),
        "lengths_equal": before.shape == after.shape,
        "stems": quality,
        "mean_si_sdri": round(float(np.mean([q["si_sdri"] for q in quality.values()])), 2) if quality else None,
    }
    scores = ", ".join(f"{k} {v['si_sdri']:.1f}" for k, v in quality.items())
    log(
        f"  {seconds:g} s region: stemlink daw ardour {wall:.1f} s wall ({result['wall_per_audio_second']:.2f} s per audio second, "
        f"cold start included); {len(new)} tracks placed exactly: {placed}; null {residual:.1f} dB, lag {result['lag']}; "
        f"SI-SDRi {scores} dB"
    )
    return result
