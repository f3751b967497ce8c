"""Apply-layer scaling: wall time and peak RSS vs region length (echo model, file in, files out).

Each duration runs in a fresh Python process (so VmHWM is that run's peak):
1. write a stereo 44.1 kHz float WAV of the duration in 10 s chunks (never whole in memory),
2. load the echo debug model through the registry from a temporary export (ONNX),
3. warm up on 1 s, note RSS, then time `separate_stream` from a `FileSource` with every
   block written straight to 4 stem WAVs (pedalboard writers).

    from stemlink.apps.bench.scale import bench_scale
    bench_scale((10, 60, 600))   # -> {"runs": [{"seconds": 60, "wall": ..., "peak_rss_mb": ...}, ...], ...}

or `python -m stemlink.apps.bench.scale 10 60 600` (prints JSON). This default mode measures the
streaming apply layer alone (blocks go straight from `separate_stream` to the WAV writers), which
is not what a request does: there, flat memory means the 600 s peak stays within ~1.2x of the
60 s peak; time linear means wall/second is about constant.

The product path is not flat: the engine holds the region as one array and assembles the
returned stems whole (`stemlink/engine/tasks.py` `_fill`), the host writes them after the result
arrives, so a request peaks at ~= input bytes x (1 + stems returned) + the model (25 min stereo
44.1 kHz into 4 stems: 5.05x the input, `bench/reliability-memory.json`).

`--engine` measures the product path instead: a `stemlink serve` process (the engine) gets a
stereo 44.1 kHz region as one `separate` request from a `Client` in the measuring process,
runs it, and returns the stems; its peak RSS (VmHWM, read from /proc/PID/status after the
result arrived) minus its RSS after a 1 s warm-up job is the job's peak, also given as a
multiple of the input's bytes. `--code DIR` runs both processes from another checkout (old
code: put it first on PYTHONPATH). Echo model by default, `--model NAME --exports DIR` for a
shipped one:

    python -m stemlink.apps.bench.scale --engine 60 600 1500
    python -m stemlink.apps.bench.scale --engine 60 --model msdm-small --exports exports --code /work/before
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RATE, CHANNELS, CHUNK_SECONDS = 44100, 2, 10


def _write_input(path: Path, seconds: float) -> None:
    import numpy as np
    from pedalboard.io import AudioFile

    rng = np.random.default_rng(0)
    total = int(seconds * RATE)
    with AudioFile(str(path), "w", RATE, CHANNELS, bit_depth=32) as f:
        for start in range(0, total, CHUNK_SECONDS * RATE):
            n = min(CHUNK_SECONDS * RATE, total - start)
            t = (start + np.arange(n)) / RATE
            tone = 0.2 * np.sin(2 * np.pi * 220.0 * t)
            f.write((tone + 0.05 * rng.standard_normal((CHANNELS, n))).astype(np.float32))


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not `ru_maxrss`: Linux carries that over fork/exec
    from the parent, so a child of a big process would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # non-Linux fallback (KiB on Linux, bytes on macOS)


def run_one(seconds: float, folder: Path, threads: int = 1) -> dict:
    """One measurement in this process (call in a fresh process for a clean peak)."""
    import torch
    from pedalboard.io import AudioFile

    from stemlink.audio.files import FileSource
    from stemlink.engine.apply import ApplyConfig, separate_stream
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.export.echo import build_echo_export

    torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)
    source_path = folder / "input.wav"
    _write_input(source_path, seconds)
    build_echo_export(folder / "exports", sample_rate=16000, window=16384, delay=7, formats=("onnx",))
    model = ModelRegistry(folder / "exports", threads=threads).get("echo")
    config = ApplyConfig()
    with FileSource(source_path, frames=RATE) as warm:  # warm-up: runtime, filters, allocator
        for _ in separate_stream(model, warm, config=config):
            pass
    rss_before = _rss_mb()
    writers = [AudioFile(str(folder / f"{stem}.wav"), "w", RATE, CHANNELS, bit_depth=32) for stem in model.stems]
    started = time.perf_counter()
    frames = 0
    with FileSource(source_path) as source:
        for block in separate_stream(model, source, config=config):
            for writer, stem in zip(writers, block, strict=True):
                writer.write(stem)
            frames += block.shape[-1]
    for writer in writers:
        writer.close()
    wall = time.perf_counter() - started
    assert frames == int(seconds * RATE), (frames, seconds)
    return {
        "seconds": seconds,
        "frames": frames,
        "wall": round(wall, 3),
        "wall_per_audio_second": round(wall / seconds, 5),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(_rss_mb(), 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "apply_peak_delta_mb": round(_peak_rss_mb() - rss_before, 1),
        "threads": threads,
        "model_rate": model.sample_rate,
        "window": model.window,
        "overlap": config.overlap,
        "batch": config.batch,
    }


def bench_scale(durations: Sequence[float] = (10, 60, 600), threads: int = 1) -> dict:
    """Measure every duration in its own subprocess; returns runs plus time/RSS ratios."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="stemlink-scale-") as tmp:
        for seconds in durations:
            cmd = [
                sys.executable,
                "-m",
                "stemlink.apps.bench.scale",
                "--child",
                str(seconds),
                "--dir",
                str(Path(tmp) / f"run{seconds}"),
                "--threads",
                str(threads),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, last = runs[0], runs[-1]
    return {
        "runs": runs,
        "time_ratio_per_second": round(last["wall_per_audio_second"] / first["wall_per_audio_second"], 3),
        "peak_rss_ratio": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
        "command": f"python -m stemlink.apps.bench.scale {' '.join(str(d) for d in durations)}",
    }


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM of process `pid` in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024
    return out


def _noise(seconds: float) -> np.ndarray:
    import numpy as np

    frames = int(seconds * RATE)
    rng = np.random.default_rng(0)
    mix = np.empty((CHANNELS, frames), dtype=np.float32)
    step = CHUNK_SECONDS * RATE
    for start in range(0, frames, step):
        n = min(step, frames - start)
        mix[:, start : start + n] = 0.1 * rng.standard_normal((CHANNELS, n), dtype=np.float32)
    return mix


def run_engine_one(seconds: float, folder: Path, model: str | None, exports: str | None, threads: int, task: str = "separate") -> dict:
    """One product-path measurement: a fresh `stemlink serve` child, one request (`task`:
    separate, or extract / remove of the model's first stem)."""
    from stemlink.bridge.client import Client
    from stemlink.contract import TaskRequest

    folder.mkdir(parents=True, exist_ok=True)
    if exports is None:
        from stemlink.lab.export.echo import build_echo_export

        exports, model = str(build_echo_export(folder / "exports", sample_rate=16000, window=16384, delay=7, formats=("onnx",))), "echo"
    sock = folder / "engine.sock"
    cmd = [sys.executable, "-m", "stemlink", "serve", "--bind", f"ipc://{sock}", "--exports", str(exports), "--threads", str(threads)]
    with open(folder / "engine.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engine did not start: {(folder / 'engine.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        mix = _noise(seconds)
        with Client(f"ipc://{sock}", timeout=300, heartbeat_timeout=600) as client:
            stems = () if task == "separate" else (next(m for m in client.models() if m.name == model).stems[0],)

            def request(audio):
                return TaskRequest(task=task, sample_rate=RATE, inputs={"mix": audio}, model=model, stems=stems)

            client.submit(request(mix[:, :RATE].copy()))  # warm-up: model load, runtime, allocator
            base = _proc_status(proc.pid)
            started = time.perf_counter()
            result = client.submit(request(mix))
            wall = time.perf_counter() - started
            after = _proc_status(proc.pid)
            shapes = {name: tuple(a.shape) for name, a in result.stems.items()}
            del result
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    input_mb = mix.nbytes / 2**20
    delta = after["VmHWM"] - base["VmRSS"]
    return {
        "seconds": seconds,
        "task": task,
        "model": model,
        "input_mb": round(input_mb, 1),
        "wall": round(wall, 2),
        "engine_rss_before_mb": round(base["VmRSS"], 1),
        "engine_peak_mb": round(after["VmHWM"], 1),
        "job_peak_delta_mb": round(delta, 1),
        "job_peak_x_input": round(delta / input_mb, 2),
        "stems": shapes,
        "threads": threads,
    }


def bench_engine(
    durations: Sequence[float],
    *,
    code: str | None = None,
    model: str | None = None,
    exports: str | None = None,
    threads: int = 1,
    task: str = "separate",
) -> dict:
    """Product-path peak per duration, each in a fresh pair of processes (client + engine)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(Path(code).resolve())
    runs = []
    with tempfile.TemporaryDirectory(prefix="stemlink-engine-mem-") as tmp:
        for seconds in durations:
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--engine-child",
                str(seconds),
                "--dir",
                str(Path(tmp) / f"run{seconds}"),
                "--threads",
                str(threads),
                "--task",
                task,
            ]
            if exports is not None:
                cmd += ["--exports", str(Path(exports).resolve()), "--model", model or "msdm-small"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=code or None)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["code"] = code or str(Path(__file__).resolve().parents[3])
            row["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
            print(json.dumps(row), file=sys.stderr, flush=True)
            runs.append(row)
    return {"runs": runs, "command": f"python -m stemlink.apps.bench.scale --engine --task {task} " + " ".join(str(d) for d in durations)}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("durations", nargs="*", type=float, default=[10, 60, 600])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--engine", action="store_true", help="product path: peak RSS of a `stemlink serve` process per request")
    parser.add_argument("--code", help="--engine: run client and engine from this checkout")
    parser.add_argument("--model", help="--engine: model name (with --exports; default: the echo debug model)")
    parser.add_argument("--exports", help="--engine: exports folder holding --model")
    parser.add_argument("--task", default="separate", choices=("separate", "extract", "remove"), help="--engine: the request")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--engine-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_one(args.child, Path(args.dir), args.threads)))
        return 0
    if args.engine_child is not None:
        print(json.dumps(run_engine_one(args.engine_child, Path(args.dir), args.model, args.exports, args.threads, args.task)))
        return 0
    if args.engine:
        print(
            json.dumps(
                bench_engine(args.durations, code=args.code, model=args.model, exports=args.exports, threads=args.threads, task=args.task),
                indent=2,
            )
        )
        return 0
    print(json.dumps(bench_scale(args.durations, args.threads), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
