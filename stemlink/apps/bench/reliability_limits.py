"""Issue 10 items 2 and 10: what the engine answers to unbounded and tiny requests.

    python -m stemlink.apps.bench.reliability_limits [--json OUT] [--skip-cli] [--skip-msdm]

Starts an in-process engine on a random loopback port over a tiny echo export (16 kHz,
window 4096, every task), sends each hostile or edge-case request as raw frames from a
DEALER socket and records the first decisive reply (`error` code + message, or `result`),
whether an `accepted` came first, and how much this process grew meanwhile (the engine runs
in it). A job still running after `--wait` seconds is cancelled and reported as such. Then:
the CLI's `generate --seconds 100000` (a subprocess: exit code and last stderr line),
separation of digital silence by the shipped msdm-small (stem RMS/peak in dBFS), duplicate
msgpack keys, and a symlink in the exports folder.

Runs unchanged against an older tree (only public APIs of `stemlink.bridge.protocol`,
`stemlink.engine.server`, `stemlink.engine.registry` and `stemlink.engine.tasks`):

    cd /work/before && PYTHONPATH=/work/before python /work/main/engine/bench/reliability_limits.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _case(name: str, **fields: Any) -> dict[str, Any]:
    return {"case": name, **fields}


class Probe:
    """A raw DEALER next to an in-process engine."""

    def __init__(self, exports: Path, wait: float):
        from stemlink.engine.server import Server, ServerConfig

        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.server = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=exports), context=context).start()
        self.sock = context.socket(zmq.DEALER)
        self.sock.linger = 0
        assert self.server.address is not None  # start() returns once bound
        self.sock.connect(self.server.address)
        self.wait = wait

    def close(self) -> None:
        self.sock.close(0)
        self.server.stop()

    def send(self, frames: list[Any]) -> dict[str, Any]:
        from stemlink.bridge.protocol import Cancel, Error, Result, decode, encode

        before = rss_mb()
        peak = before
        started = time.monotonic()
        self.sock.send_multipart(frames, copy=False)
        accepted, job = False, None
        deadline = started + self.wait
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb())
            if not self.sock.poll(100):
                continue
            msg = decode(self.sock.recv_multipart(), "reply")
            if msg.TYPE == "accepted":
                accepted, job = True, msg.id
            elif isinstance(msg, (Error, Result)):
                out = {
                    "accepted": accepted,
                    "reply": msg.TYPE,
                    "seconds": round(time.monotonic() - started, 2),
                    "rss_growth_mb": round(peak - before),
                }
                if isinstance(msg, Error):
                    out.update(code=msg.code, message=msg.message, field=msg.field)
                else:
                    out.update(stems={k: list(v.shape) for k, v in msg.result.stems.items()}, scores=msg.result.scores)
                return out
        out = {
            "accepted": accepted,
            "reply": "none",
            "seconds": self.wait,
            "rss_growth_mb": round(peak - before),
            "message": f"still running after {self.wait:.0f} s",
        }
        if job is not None:
            self.sock.send_multipart(encode(Cancel(id="c-" + job[:60], job=job)))
            end = time.monotonic() + 30
            while time.monotonic() < end and self.sock.poll(200):
                if decode(self.sock.recv_multipart(), "reply").TYPE == "error":
                    break
        return out


def submit(msg_id: str, task: str, rate: int = 16000, inputs: dict[str, np.ndarray] | None = None, **fields: Any) -> list[Any]:
    from stemlink.bridge.protocol import Submit, encode
    from stemlink.contract import TaskRequest

    return encode(Submit(id=msg_id, request=TaskRequest(task=task, sample_rate=rate, model="echo", inputs=inputs or {}, **fields)))


def noise(channels: int, frames: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal((channels, frames))).astype(np.float32)


def wire_cases(probe: Probe) -> list[dict[str, Any]]:
    out = []
    two = noise(2, 16000)
    cases = [
        ("generate frames=2^27 (stereo)", submit("g27", "generate", frames=2**27, channels=2)),
        ("generate frames=2^33, channels=16", submit("g33", "generate", frames=2**33, channels=16)),
        ("separate at 4000 Hz", submit("r4k", "separate", 4000, {"mix": noise(2, 4000)})),
        ("separate at 1000 Hz", submit("r1k", "separate", 1000, {"mix": noise(2, 1000)})),
        ("separate at 999 Hz", submit("r999", "separate", 999, {"mix": noise(2, 999)})),
        ("accompany candidates=17", submit("c17", "accompany", inputs={"context": two}, candidates=17)),
        ("accompany candidates=64", submit("c64", "accompany", inputs={"context": two}, candidates=64)),
        ("generate channels=17", submit("ch17", "generate", frames=16000, channels=17)),
        ("generate channels=1024", submit("ch1024", "generate", frames=16000, channels=1024)),
        ("separate params.steps=10^6", submit("s6", "separate", inputs={"mix": two}, params={"steps": 10**6})),
        ("separate 1-sample region", submit("one", "separate", inputs={"mix": noise(2, 1)})),
        ("score 1-sample candidate", submit("sc1", "score", inputs={"a": two, "b": noise(2, 1)})),
    ]
    for name, frames in cases:
        out.append(_case(name, **probe.send(frames)))
        print(json.dumps(out[-1]), flush=True)
    dup = b"\x84\xa1v\x01\xa4type\xa4ping\xa2id\xa2d1\xa4type\xa6submit"  # {"v", "type": "ping", "id", "type": "submit"}
    out.append(_case("duplicate msgpack key 'type'", **probe.send([dup])))
    print(json.dumps(out[-1]), flush=True)
    return out


def cli_case(seconds: float = 100000) -> dict[str, Any]:
    out_dir = tempfile.mkdtemp(prefix="gen-")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "stemlink", "generate", "--seconds", str(int(seconds)), "--out", out_dir],
        capture_output=True,
        text=True,
        timeout=600,
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return _case(
        f"CLI generate --seconds {int(seconds)}",
        exit_code=proc.returncode,
        seconds=round(time.monotonic() - started, 1),
        stderr_lines=len(lines),
        traceback="Traceback" in proc.stderr,
        last_line=lines[-1] if lines else "",
    )


def dbfs(x: np.ndarray) -> tuple[float, float]:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    peak = float(np.max(np.abs(x)))
    rms_db, peak_db = (round(20 * np.log10(v), 1) if v > 0 else float("-inf") for v in (rms, peak))
    return rms_db, peak_db


def silence_case(seconds: float = 2.0, level_db: float | None = None) -> dict[str, Any]:
    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task

    model = ModelRegistry().get("msdm-small")
    frames = int(44100 * seconds)
    mix = np.zeros((2, frames), np.float32)
    label = "digital silence"
    if level_db is not None:
        mix = (10 ** (level_db / 20) * np.random.default_rng(0).standard_normal((2, frames))).astype(np.float32)
        label = f"noise at {level_db:.0f} dBFS RMS"
    started = time.monotonic()
    result = run_task(model, TaskRequest(task="separate", sample_rate=44100, inputs={"mix": mix}))
    stems = {k: dbfs(v) for k, v in result.stems.items()}
    total = sum(result.stems.values())
    return _case(
        f"msdm-small separate, {seconds:g} s stereo {label}",
        seconds=round(time.monotonic() - started, 1),
        stems_rms_peak_dbfs=stems,
        sum_minus_mix_peak=float(np.max(np.abs(total - mix))),
        all_zero=all(not v.any() for v in result.stems.values()),
    )


def symlink_case() -> dict[str, Any]:
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.export.echo import build_echo_export

    root = Path(tempfile.mkdtemp(prefix="symlink-"))
    exports = build_echo_export(root / "exports", formats=("torchscript",), window=1024)
    outside = root / "elsewhere.pt"
    shutil.move(exports / "echo.pt", outside)
    os.symlink(outside, exports / "echo.pt")
    try:
        ModelRegistry(exports).get("echo")
        out = _case("model file is a symlink to outside the exports folder", outcome="loaded")
    except Exception as exc:
        out = _case(
            "model file is a symlink to outside the exports folder", outcome=f"{type(exc).__name__} {getattr(exc, 'code', '')}: {exc}"
        )
    shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write all cases to this JSON file")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a job's outcome")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-msdm", action="store_true")
    args = parser.parse_args(argv)
    import stemlink.bridge

    print("# stemlink from", Path(stemlink.bridge.__file__).resolve().parents[2], "| load", os.getloadavg(), flush=True)
    from stemlink.lab.export.echo import build_echo_export

    tmp = Path(tempfile.mkdtemp(prefix="limits-"))
    exports = build_echo_export(tmp / "exports", sample_rate=16000, window=4096, formats=("torchscript",))
    probe = Probe(exports, args.wait)
    try:
        cases = wire_cases(probe)
    finally:
        probe.close()
    cases.append(symlink_case())
    print(json.dumps(cases[-1]), flush=True)
    if not args.skip_msdm:
        for level in (None, -90.0, -60.0):
            cases.append(silence_case(level_db=level))
            print(json.dumps(cases[-1]), flush=True)
    if not args.skip_cli:
        cases.append(cli_case())
        print(json.dumps(cases[-1]), flush=True)
    report = {"load_average": os.getloadavg(), "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "cases": cases}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
