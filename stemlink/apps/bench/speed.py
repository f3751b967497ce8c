"""Real-time factor of separation on an idle and on a busy machine (issue 10, item 11).

Each measurement runs in a fresh Python process, started the way the CLI starts the engine
(so OpenMP reads its environment before torch loads):

1. write a 44.1 kHz stereo WAV (tone + noise) of `--seconds`,
2. load the model through `ModelRegistry` (onnx or torchscript; thread count: the engine's
   default, i.e. the thread policy in new code, the runtime's default in old code),
3. separate 1 s as warm-up, then time `run_task("separate")` on the whole file.

RTF = processing seconds / audio seconds (lower is better; < 1 is faster than real time).
`--busy N` starts N CPU-bound `python -c "while True: pass"` processes beside the child and
kills them afterwards. `--code DIR` runs the measurement against another checkout (e.g. the
untouched starting commit) by putting DIR first on PYTHONPATH.

    python -m stemlink.apps.bench.speed --busy 0 2 --code /work/before --code . --out bench/x.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

RATE, CHANNELS = 44100, 2
BUSY_LOOP = "while True: pass"


def _write_input(path: Path, seconds: float) -> None:
    import numpy as np
    from pedalboard.io import AudioFile

    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    audio = 0.2 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * rng.standard_normal((CHANNELS, n))
    with AudioFile(str(path), "w", RATE, CHANNELS, bit_depth=32) as f:
        f.write(audio.astype(np.float32))


def run_child(seconds: float, model_name: str, fmt: str, exports: str, threads: int | None) -> dict:
    """One measurement in this process (which must be fresh)."""
    import stemlink

    root = Path(stemlink.__file__).resolve().parents[1]
    if (root / "engine" / "threads.py").exists():  # new code: what the CLI's main() does before torch loads
        from stemlink.engine.threads import configure_process  # (the editable install would find it in old code too)

        configure_process()
    import torch

    from stemlink.audio.files import FileSource
    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task

    with tempfile.TemporaryDirectory(prefix="stemlink-speed-") as tmp:
        path = Path(tmp) / "input.wav"
        _write_input(path, seconds)
        with FileSource(path) as src:
            mix = src.read(0, src.frames)
    model = ModelRegistry(exports, device="cpu", threads=threads).get(model_name, fmt)
    run_task(model, TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix[:, :RATE].copy()}))  # warm-up
    started = time.perf_counter()
    run_task(model, TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}))
    wall = time.perf_counter() - started
    return {
        "model": model_name,
        "format": fmt,
        "seconds": seconds,
        "wall": round(wall, 3),
        "rtf": round(wall / seconds, 3),
        "torch_threads": torch.get_num_threads(),
        "threads_arg": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "stemlink": str(Path(str(sys.modules["stemlink"].__file__)).parent),
    }


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def measure(code: str, busy: int, *, seconds: float, model: str, fmt: str, exports: str, threads: int | None) -> dict:
    """Run one child against checkout `code` with `busy` CPU-bound processes beside it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(code).resolve())
    for key in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OMP_NUM_THREADS", "STEMLINK_THREADS"):
        env.pop(key, None)  # the child decides, as the CLI would
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--seconds",
        str(seconds),
        "--model",
        model,
        "--format",
        fmt,
        "--exports",
        str(Path(exports).resolve()),
    ]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        time.sleep(2.0 if busy else 0.0)  # let the hogs reach full speed
        load_before = _uptime()
        out = subprocess.run(cmd, env=env, cwd=str(Path(code).resolve()), capture_output=True, text=True, timeout=1800)
        load_after = _uptime()
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
    if out.returncode != 0:
        raise RuntimeError(f"speed child failed ({out.returncode}): {out.stderr[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(code=code, busy=busy, uptime_before=load_before, uptime_after=load_after)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="msdm-small")
    parser.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    parser.add_argument("--exports", default="exports")
    parser.add_argument("--threads", type=int, default=None, help="force a thread count (default: the engine's own)")
    parser.add_argument("--busy", type=int, nargs="*", default=[0, 2], help="CPU-bound processes beside each run")
    parser.add_argument("--code", action="append", default=None, help="checkout(s) to measure (default: this one)")
    parser.add_argument("--out", help="append the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.seconds, args.model, args.format, args.exports, args.threads)))
        return 0
    rows = []
    for busy in args.busy:
        for code in args.code or [str(Path(__file__).resolve().parents[3])]:
            row = measure(code, busy, seconds=args.seconds, model=args.model, fmt=args.format, exports=args.exports, threads=args.threads)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        path = Path(args.out)
        data = json.loads(path.read_text()) if path.exists() else {"runs": []}
        data["runs"] += rows
        path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
