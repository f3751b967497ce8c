"""Separation of quiet input: the apply layer's level gain (`apply.SEPARATION_RMS`) on and off.

    python -m stemlink.apps.bench.quiet_separation [--seconds 6] [--model msdm-small] [--json OUT]

The demo song (`exports/demo-song`, true stems known), mono at the model's rate, separated
at 0, -20, -40 and -60 dB with the gain (as shipped) and without it (`SEPARATION_RMS = 0`).
Per stem: SI-SDR against the true stem at that level, and the stem's level relative to the
true stem (dB; far above 0 = loud cancelling noise instead of a separation).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

STEMS = ("bass", "drums", "guitar", "piano")


def load_song(rate: int, seconds: float) -> dict[str, np.ndarray]:
    from stemlink.audio.files import FileSource
    from stemlink.audio.resample import resample_span
    from stemlink.paths import exports_dir

    out = {}
    for name in STEMS:
        src = FileSource(Path(exports_dir()) / "demo-song" / f"{name}.flac")
        mono = src.read(0, src.frames).mean(axis=0, keepdims=True)[:, : int(src.sample_rate * seconds)]

        def read(start: int, n: int, x=mono) -> np.ndarray:
            block = np.zeros((1, n), np.float32)
            lo, hi = max(start, 0), min(start + n, x.shape[1])
            if hi > lo:
                block[:, lo - start : hi - start] = x[:, lo:hi]
            return block

        out[name] = resample_span(read, src.sample_rate, rate, 0, int(rate * seconds))[0].astype(np.float32)
    return out


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--model", default="msdm-small")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    from stemlink.contract import TaskRequest
    from stemlink.engine import apply
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task

    model = ModelRegistry().get(args.model)
    stems = load_song(model.sample_rate, args.seconds)
    mix = sum(stems.values())
    shipped = apply.SEPARATION_RMS
    rows = []
    for gain_on in (True, False):
        apply.SEPARATION_RMS = shipped if gain_on else 0.0
        for db in (0, -20, -40, -60):
            g = np.float32(10 ** (db / 20))
            started = time.perf_counter()
            result = run_task(model, TaskRequest(task="separate", sample_rate=model.sample_rate, inputs={"mix": np.asarray(mix * g)[None]}))
            sdr = {n: round(si_sdr(result.stems[n][0], stems[n] * g), 1) for n in STEMS}
            level = {n: round(float(10 * np.log10(np.mean(result.stems[n][0] ** 2) / np.mean((stems[n] * g) ** 2))), 1) for n in STEMS}
            rows.append(
                {
                    "gain": gain_on,
                    "level_db": db,
                    "mix_rms_dbfs": round(float(20 * np.log10(np.sqrt(np.mean((mix * g) ** 2)))), 1),
                    "si_sdr": sdr,
                    "si_sdr_avg": round(float(np.mean(list(sdr.values()))), 2),
                    "stem_level_vs_true_db": level,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    apply.SEPARATION_RMS = shipped
    if args.json:
        Path(args.json).write_text(
            json.dumps({"model": args.model, "seconds": args.seconds, "load_average": os.getloadavg(), "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
