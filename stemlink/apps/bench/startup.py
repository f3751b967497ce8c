"""Cold start and fast "no" of the CLI, old code against new (issue 10, item 8).

Measures, each in a fresh process started like a user would (`python -m stemlink ...`):

- wall time of `stemlink --help`, `stemlink status` (no engine running) and `stemlink presets`;
- cold start of `stemlink separate FILE` on a 10 s 44.1 kHz stereo WAV with the embedded engine
  and the shipped models: seconds from launch to the first progress line on stderr (the
  process is then stopped: only the start is measured);
- the same with a warm engine: `stemlink serve --background` (new code) on a private port,
  found through `$STEMLINK_ENGINE`.

`--busy N` runs the set beside N CPU-bound `python -c "while True: pass"` processes (killed
afterwards); `--pause-trainer` sends SIGSTOP to the pid in /tmp/trainer.pid for the run and
SIGCONT afterwards, even on failure. `--code DIR` selects a checkout (first on PYTHONPATH, run
from DIR); the load average is recorded around every measurement.

    python -m stemlink.apps.bench.startup --code /work/before --code . --busy 0 2 --out bench/reliability-startup.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BUSY_LOOP = "while True: pass"
TRAINER_PID = Path("/tmp/trainer.pid")
PROGRESS = re.compile(r"\d+%")
SMALL_COMMANDS = (("--help",), ("status",), ("presets",))


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _env(code: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """No STEMLINK_* settings of the caller; another checkout goes first on PYTHONPATH (this
    one is the editable install, which maps the package folders itself)."""
    import stemlink

    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMLINK_") and k != "PYTHONPATH"}
    if code != Path(stemlink.__file__).resolve().parents[1]:
        env["PYTHONPATH"] = str(code)
    env.update(extra or {})
    return env


def time_command(code: Path, argv: tuple[str, ...], env: dict[str, str] | None = None) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stemlink", *argv], cwd=code, env=_env(code, env), capture_output=True, text=True)
    return {
        "argv": list(argv),
        "wall": round(time.perf_counter() - started, 3),
        "rc": proc.returncode,
        "last_line": (proc.stdout + proc.stderr).strip().splitlines()[-1][:200] if (proc.stdout + proc.stderr).strip() else "",
    }


def first_progress(code: Path, wav: Path, out: Path, env: dict[str, str] | None = None, limit: float = 600.0) -> dict:
    """Seconds from launch to the first progress line of `stemlink separate`, then stop it."""
    argv = [sys.executable, "-m", "stemlink", "separate", str(wav), "--start", "0", "--end", "10", "--out", str(out), "--overwrite"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=code, env=_env(code, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stderr is not None  # stderr=PIPE
    first: float | None = None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line.rstrip())
            if PROGRESS.search(line):
                first = time.perf_counter() - started
                break
            if time.perf_counter() - started > limit:
                break
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return {"first_progress": None if first is None else round(first, 3), "line": lines[-1][:200] if lines else ""}


@contextlib.contextmanager
def busy(n: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        time.sleep(2.0 if n else 0.0)  # let the scheduler see them
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextlib.contextmanager
def paused_trainer(enabled: bool) -> Iterator[str]:
    """SIGSTOP the trainer for the block, SIGCONT after it whatever happens (also on SIGTERM)."""
    pid = int(TRAINER_PID.read_text().split()[0]) if enabled and TRAINER_PID.is_file() else None
    if pid is None:
        yield "not paused (no /tmp/trainer.pid)" if enabled else "not paused"
        return

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield f"paused pid {pid}"
    finally:
        os.kill(pid, signal.SIGCONT)
        signal.signal(signal.SIGTERM, previous)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm_runs(code: Path, wav: Path, out: Path, repeats: int) -> dict:
    """First-progress times with `serve --background` running on a private port (new code)."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    state = Path(tempfile.mkdtemp(prefix="stemlink-state-"))
    env = {"STEMLINK_STATE_DIR": str(state)}
    started = time.perf_counter()
    start = subprocess.run(
        [sys.executable, "-m", "stemlink", "serve", "--background", "--bind", address],
        cwd=code,
        env=_env(code, env),
        capture_output=True,
        text=True,
    )
    runs: list[dict] = []
    result: dict[str, object] = {
        "address": address,
        "serve_background_wall": round(time.perf_counter() - started, 3),
        "rc": start.returncode,
        "output": (start.stdout + start.stderr).strip()[-300:],
        "runs": runs,
    }
    try:
        if start.returncode == 0:
            for _ in range(repeats):
                load = load_average()
                run = first_progress(code, wav, out, env={**env, "STEMLINK_ENGINE": address})
                runs.append({**run, "load_before": load})
            result["status"] = time_command(code, ("status", "--engine", address), env)
    finally:
        subprocess.run([sys.executable, "-m", "stemlink", "serve", "--stop"], cwd=code, env=_env(code, env), capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
    return result


def measure(code: Path, wav: Path, out: Path, repeats: int, cold_repeats: int, warm: bool) -> dict:
    record: dict = {"code": str(code), "commands": {}, "cold_separate": []}
    for argv in SMALL_COMMANDS:
        runs = []
        for _ in range(repeats):
            load = load_average()
            runs.append({**time_command(code, argv), "load_before": load})
        record["commands"][" ".join(argv)] = {"median_wall": statistics.median(r["wall"] for r in runs), "runs": runs}
    for _ in range(cold_repeats):
        load = load_average()
        record["cold_separate"].append({**first_progress(code, wav, out), "load_before": load})
    times = [r["first_progress"] for r in record["cold_separate"] if r["first_progress"] is not None]
    record["cold_separate_median"] = statistics.median(times) if times else None
    if warm:
        record["warm_separate"] = warm_runs(code, wav, out, cold_repeats)
        times = [r["first_progress"] for r in record["warm_separate"]["runs"] if r["first_progress"] is not None]
        record["warm_separate_median"] = statistics.median(times) if times else None
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", action="append", default=[], help="checkout to measure (repeatable; default: this one)")
    parser.add_argument("--busy", type=int, nargs="+", default=[0], help="CPU-bound processes beside the run (one set per value)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each small command")
    parser.add_argument("--cold-repeats", type=int, default=2, help="runs of the separate cold start (and of the warm one)")
    parser.add_argument("--pause-trainer", action="store_true", help="SIGSTOP /tmp/trainer.pid during the busy=0 set")
    parser.add_argument("--out", default=None, help="write the JSON results here")
    args = parser.parse_args(argv)
    from stemlink.apps.bench.speed import _write_input

    codes = [Path(c).resolve() for c in (args.code or ["."])]
    sets: list[dict] = []
    results = {
        "command": "python -m stemlink.apps.bench.startup " + " ".join(sys.argv[1:] if argv is None else argv),
        "cpus": os.cpu_count(),
        "sets": sets,
    }
    with tempfile.TemporaryDirectory(prefix="stemlink-startup-") as tmp:
        wav = Path(tmp) / "ten-seconds.wav"
        _write_input(wav, 10.0)
        for n in args.busy:
            with paused_trainer(args.pause_trainer and n == 0) as trainer, busy(n):
                measured: list[dict] = []
                entry: dict[str, object] = {"busy": n, "trainer": trainer, "load_start": load_average(), "codes": measured}
                for code in codes:
                    warm = (code / "stemlink" / "background.py").exists()
                    measured.append(measure(code, wav, Path(tmp) / "out", args.repeats, args.cold_repeats, warm))
                    print(json.dumps(measured[-1]), flush=True)
                entry["load_end"] = load_average()
            sets.append(entry)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
