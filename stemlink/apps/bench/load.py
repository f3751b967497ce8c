"""Reliability under load: N clients x M jobs against a COLD `stemlink serve`, and the SIGSTOP test.

`load` (default): the script starts `python -m stemlink serve` (no --preload: the first jobs
pay the model load while every client is already waiting), then N client threads, each its own
`Client`, submit M `separate` jobs of a short region each, all starting together. BUSY is
retried with exponential backoff (50 ms doubling to 2 s, jittered); every other error is
counted (by code) and the client moves on. Every result is verified: the stems are exactly the
model's, each has the input's shape, and they sum to the input (`--atol`).

    python -m stemlink.apps.bench.load --clients 16 --jobs 50 --model msdm-small --seconds 0.5
    python -m stemlink.apps.bench.load --clients 16 --jobs 50 --echo          # the debug model

`sigstop`: one client runs a slow echo job; the engine process is SIGSTOPped for
`--stop-seconds` mid-job, then continued. Records what the client saw, whether the job kept
running on the engine after the client gave up, and how long the client's next job took.

    python -m stemlink.apps.bench.load sigstop --stop-seconds 3

Only the public `Client` API is used, so old code can be measured too: copy this file out of
the tree and run it with the old checkout first on PYTHONPATH. `--out FILE --label NAME`
merge the result into a JSON file under that label.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ECHO_SLOW = {"steps": 40, "sleep": 0.05}  # echo debug params: 40 steps x 50 ms per window


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _echo_exports(folder: Path) -> Path:
    from stemlink.lab.export.echo import build_echo_export

    return build_echo_export(folder, sample_rate=16000, window=4096, formats=("onnx", "torchscript"))


class Engine:
    """A cold `stemlink serve` child on a free loopback port; samples its RSS."""

    def __init__(self, exports: Path, extra: list[str], log: Path):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "stemlink", "serve", "--bind", self.address, "--exports", str(exports), *extra]
        self.started = time.monotonic()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.proc.pid)
            while self._sampling:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
                time.sleep(0.25)
        except psutil.Error:
            pass

    def wait_listening(self, timeout: float = 300.0) -> float:
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stemlink serve did not start (exit code {self.proc.poll()})")
            time.sleep(0.05)
        return time.monotonic() - self.started

    def stop(self) -> None:
        self._sampling = False
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _code_root() -> str:
    """The checkout the stemlink package was imported from."""
    import stemlink

    return str(Path(stemlink.__file__).parent.parent)


def _verify(result: Any, mix: np.ndarray, stems: tuple[str, ...], atol: float) -> str | None:
    if tuple(sorted(result.stems)) != tuple(sorted(stems)):
        return f"stems {sorted(result.stems)} != {sorted(stems)}"
    for name, stem in result.stems.items():
        if stem.shape != mix.shape:
            return f"stem {name} shape {stem.shape} != {mix.shape}"
        if not np.isfinite(stem).all():
            return f"stem {name} has NaN/inf"
    err = float(np.max(np.abs(np.sum(list(result.stems.values()), axis=0) - mix)))
    return None if err <= atol else f"stems sum to the input within {err:.2e} > atol {atol:g}"


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    from stemlink.bridge import Client
    from stemlink.errors import Busy, StemlinkError

    work = Path(tempfile.mkdtemp(prefix="stemlink-load-"))
    exports = _echo_exports(work / "exports") if args.echo else Path(args.exports)
    model = "echo" if args.echo else args.model
    rate = 44100
    rng = np.random.default_rng(0)
    frames = int(args.seconds * rate)
    mixes = [(0.1 * rng.standard_normal((2, frames))).astype(np.float32) for _ in range(8)]
    params = {"steps": args.echo_steps} if args.echo else {}

    engine = Engine(exports, args.serve_arg, work / "engine.log")
    lock = threading.Lock()
    counts: Counter = Counter()
    errors: Counter = Counter()
    samples: dict[str, str] = {}
    latencies: list[float] = []
    retries_per_job: list[int] = []
    go = threading.Event()
    load_start = _loadavg()
    try:
        listening_after = engine.wait_listening()

        def client_thread(index: int) -> None:
            try:
                client = Client(engine.address, timeout=args.timeout)
            except StemlinkError as exc:
                with lock:
                    errors[f"connect:{exc.code}"] += args.jobs
                return
            with client:
                go.wait()
                stems: tuple[str, ...] | None = None
                for job in range(args.jobs):
                    mix = mixes[(index + job) % len(mixes)]
                    tries, t0 = 0, time.monotonic()
                    while True:
                        try:
                            if stems is None:
                                info = next(m for m in client.models() if m.name == model)
                                stems = tuple(info.stems)
                            result = client.separate(mix, rate, model=model, params=params)
                        except Busy:
                            tries += 1
                            time.sleep(min(2.0, 0.05 * 2 ** min(tries, 6)) * random.uniform(0.5, 1.0))
                            continue
                        except StemlinkError as exc:
                            with lock:
                                errors[exc.code] += 1
                                samples.setdefault(exc.code, exc.message[:300])
                            break
                        bad = _verify(result, mix, stems, args.atol)
                        with lock:
                            if bad is None:
                                counts["completed"] += 1
                                latencies.append(time.monotonic() - t0)
                            else:
                                counts["bad_result"] += 1
                                samples.setdefault("bad_result", bad)
                        break
                    with lock:
                        retries_per_job.append(tries)

        threads = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        go.set()
        for t in threads:
            t.join(max(1.0, args.deadline - (time.monotonic() - t0)))
        wall = time.monotonic() - t0
        hung = sum(t.is_alive() for t in threads)
    finally:
        engine.stop()
    lat = sorted(latencies)
    return {
        "mode": "load",
        "clients": args.clients,
        "jobs_per_client": args.jobs,
        "total_jobs": args.clients * args.jobs,
        "model": model,
        "region_seconds": args.seconds,
        "sample_rate": rate,
        "params": params,
        "engine_cold": True,
        "serve_args": args.serve_arg,
        "engine_listening_after_s": round(listening_after, 2),
        "completed": counts["completed"],
        "bad_results": counts["bad_result"],
        "errors": dict(errors),
        "error_samples": samples,
        "busy_retries": int(sum(retries_per_job)),
        "max_retries_one_job": max(retries_per_job, default=0),
        "hung_clients": hung,
        "wall_s": round(wall, 1),
        "jobs_per_s": round(counts["completed"] / wall, 2) if wall else None,
        "latency_s": {"p50": round(lat[len(lat) // 2], 2), "p95": round(lat[int(len(lat) * 0.95)], 2), "max": round(lat[-1], 2)}
        if lat
        else None,
        "engine_peak_rss_mb": round(engine.peak_rss / 2**20, 1),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "cpus": os.cpu_count(),
        "code": _code_root(),
    }


def run_sigstop(args: argparse.Namespace) -> dict[str, Any]:
    from stemlink.bridge import Client
    from stemlink.errors import StemlinkError

    work = Path(tempfile.mkdtemp(prefix="stemlink-sigstop-"))
    engine = Engine(_echo_exports(work / "exports"), args.serve_arg, work / "engine.log")
    rng = np.random.default_rng(0)
    mix = (0.1 * rng.standard_normal((2, 44100))).astype(np.float32)  # 1 s: 2 echo windows x 40 x 50 ms
    out: dict[str, Any] = {
        "mode": "sigstop",
        "stop_seconds": args.stop_seconds,
        "loadavg_start": _loadavg(),
        "code": _code_root(),
    }
    timers: list[threading.Timer] = []
    try:
        engine.wait_listening()
        with Client(engine.address, timeout=args.timeout) as client:
            client.separate(mix[:, :4410], 44100, model="echo")  # warm: the model is loaded

            def progress(done: int, total: int, stage: str) -> None:
                if stage == "run" and not timers:
                    os.kill(engine.proc.pid, signal.SIGSTOP)
                    out["stopped_at_step"] = done
                    timers.append(threading.Timer(args.stop_seconds, os.kill, (engine.proc.pid, signal.SIGCONT)))
                    timers[0].start()

            t0 = time.monotonic()
            try:
                result = client.separate(mix, 44100, model="echo", params=ECHO_SLOW, progress=progress)
                out["job"] = "completed"
                out["job_stems_sum_to_input"] = bool(np.allclose(sum(result.stems.values()), mix, atol=1e-5))
            except StemlinkError as exc:
                out["job"] = f"{exc.code}: {exc.message}"
            out["job_outcome_after_s"] = round(time.monotonic() - t0, 2)
            for timer in timers:
                timer.join()
            status = client.status()
            out["engine_running_after_outcome"] = [r.get("job") for r in status.running]
            t1 = time.monotonic()
            try:
                client.separate(mix[:, :4410], 44100, model="echo")
                out["next_job"] = "completed"
            except StemlinkError as exc:
                out["next_job"] = f"{exc.code}: {exc.message}"
            out["next_job_s"] = round(time.monotonic() - t1, 2)
            status = client.status()
            out["engine_jobs_done"], out["engine_jobs_failed"] = status.jobs_done, status.jobs_failed
    finally:
        for timer in timers:
            timer.join()
        engine.stop()
    out["loadavg_end"] = _loadavg()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="load", choices=("load", "sigstop"))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=50, help="jobs per client")
    parser.add_argument("--model", default="msdm-small")
    parser.add_argument("--exports", default="exports", help="exports folder (shipped models)")
    parser.add_argument("--echo", action="store_true", help="use the echo debug model (built in a temp folder)")
    parser.add_argument("--echo-steps", type=int, default=1, help="echo: network calls per window")
    parser.add_argument("--seconds", type=float, default=0.5, help="region length per job (stereo 44.1 kHz)")
    parser.add_argument("--atol", type=float, default=1e-4, help="stems must sum to the input within this")
    parser.add_argument("--timeout", type=float, default=30.0, help="Client(timeout=...)")
    parser.add_argument("--deadline", type=float, default=3600.0, help="give up waiting for the clients after this many seconds")
    parser.add_argument("--stop-seconds", type=float, default=3.0)
    parser.add_argument("--serve-arg", action="append", default=[], help="extra `stemlink serve` argument (repeatable)")
    parser.add_argument("--out", default=None, help="merge the result into this JSON file")
    parser.add_argument("--label", default=None, help="key of the result in --out")
    args = parser.parse_args(argv)
    result = run_load(args) if args.mode == "load" else run_sigstop(args)
    print(json.dumps(result, indent=2))
    if args.out:
        path = Path(args.out)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[args.label or f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"] = result
        path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
