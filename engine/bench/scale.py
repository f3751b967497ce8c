"""Apply-layer scaling: wall time and peak RSS vs region length (echo model, file in, files out).

Each duration runs in a fresh Python process (so VmHWM is that run's peak):
1. write a stereo 44.1 kHz float WAV of the duration in 10 s chunks (never whole in memory),
2. load the echo debug model through the registry from a temporary export (ONNX),
3. warm up on 1 s, note RSS, then time `separate_stream` from a `FileSource` with every
   block written straight to 4 stem WAVs (pedalboard writers).

    from stemlink.engine.bench.scale import bench_scale
    bench_scale((10, 60, 600))   # -> {"runs": [{"seconds": 60, "wall": ..., "peak_rss_mb": ...}, ...], ...}

or `python -m stemlink.engine.bench.scale 10 60 600` (prints JSON). Memory flat in region length
means the 600 s peak stays within ~1.2x of the 60 s peak; time linear means wall/second is
about constant.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

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

    from stemlink.engine.apply import ApplyConfig, separate_stream
    from stemlink.engine.audio_io import FileSource
    from stemlink.engine.models.echo import build_echo_export
    from stemlink.engine.registry import ModelRegistry

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
            for writer, stem in zip(writers, block):
                writer.write(stem)
            frames += block.shape[-1]
    for writer in writers:
        writer.close()
    wall = time.perf_counter() - started
    assert frames == int(seconds * RATE), (frames, seconds)
    return {
        "seconds": seconds, "frames": frames, "wall": round(wall, 3), "wall_per_audio_second": round(wall / seconds, 5),
        "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(_rss_mb(), 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1), "apply_peak_delta_mb": round(_peak_rss_mb() - rss_before, 1), "threads": threads, "model_rate": model.sample_rate,
        "window": model.window, "overlap": config.overlap, "batch": config.batch,
    }


def bench_scale(durations: Sequence[float] = (10, 60, 600), threads: int = 1) -> dict:
    """Measure every duration in its own subprocess; returns runs plus time/RSS ratios."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="stemlink-scale-") as tmp:
        for seconds in durations:
            cmd = [sys.executable, "-m", "stemlink.engine.bench.scale", "--child", str(seconds), "--dir", str(Path(tmp) / f"run{seconds}"), "--threads", str(threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, last = runs[0], runs[-1]
    return {
        "runs": runs,
        "time_ratio_per_second": round(last["wall_per_audio_second"] / first["wall_per_audio_second"], 3),
        "peak_rss_ratio": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
        "command": f"python -m stemlink.engine.bench.scale {' '.join(str(d) for d in durations)}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("durations", nargs="*", type=float, default=[10, 60, 600])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_one(args.child, Path(args.dir), args.threads)))
        return 0
    print(json.dumps(bench_scale(args.durations, args.threads), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
