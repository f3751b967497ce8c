"""Hostile inputs to the host CLI (issue 10, items 4-6 and the host parts of 10), old vs new code.

    python -m stemlink.apps.bench.host_reliability --code /work/before --code /work/main \
        --json bench/reliability-host.json

Each case runs `python -m stemlink ...` in a fresh temporary folder with the code tree given by
`--code` first on PYTHONPATH (an embedded engine serving an echo export, or a fake engine for
the untrusted-result case), and records the exit code, the last stderr line, whether a
traceback was printed, the files left in the output folder, the child's peak RSS and its wall
time. Cases that need root (a read-only and a 64 KiB tmpfs) are skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STEMS = ("bass", "drums", "guitar", "piano")
V1_CAPABILITIES = ("engine_version", "protocol_version", "models", "limits", "workers", "defaults")
V1_LIMITS = ("max_frames", "max_channels", "max_inputs", "max_message_bytes", "max_header_bytes", "queue_size")


class FakeEngine:
    """A ROUTER on a random loopback port that answers hello, ping and submit like an engine,
    but returns 1 x 10 NaN "stems" whatever the region was."""

    def __init__(self):
        import zmq

        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.linger = 0
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from stemlink.bridge.protocol import (
            Accepted,
            Capabilities,
            Hello,
            Message,
            ModelInfo,
            Ping,
            Pong,
            Result,
            Submit,
            decode,
            encode,
        )
        from stemlink.contract import TaskResult

        class V1Capabilities(Capabilities):  # only the fields every v1 client knows (old clients refuse others)
            def body(self):
                body = {k: v for k, v in super().body().items() if k in V1_CAPABILITIES}
                body["limits"] = {k: body["limits"][k] for k in V1_LIMITS}
                return body

        info = ModelInfo(
            name="echo",
            version="1",
            family="echo",
            tasks=("separate", "accompany", "generate"),
            formats=("onnx",),
            sample_rate=44100,
            stems=STEMS,
            window=4096,
            delay=0,
            sha256="0" * 64,
        )
        while not self.stop.is_set():
            if not self.socket.poll(50):
                continue
            who, *frames = self.socket.recv_multipart()
            msg = decode(frames, "request")
            replies: list[Message]
            if isinstance(msg, Hello):
                replies = [V1Capabilities(id=msg.id, engine_version="fake", models=[info], defaults={"separate": "echo"})]
            elif isinstance(msg, Ping):
                replies = [Pong(id=msg.id)]
            elif isinstance(msg, Submit):
                nan = np.full((1, 10), np.nan, dtype=np.float32)
                replies = [
                    Accepted(id=msg.id),
                    Result(
                        id=msg.id,
                        result=TaskResult(
                            task=msg.request.task, model="echo", model_version="1", model_sha256="0" * 64, stems={s: nan for s in STEMS}
                        ),
                    ),
                ]
            else:
                continue
            for reply in replies:
                self.socket.send_multipart([who, *encode(reply)])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.socket.close(0)
        self.context.term()


def write_wav(path: Path, frames: int = 44100, channels: int = 2, rate: int = 44100, seed: int = 0) -> None:
    from pedalboard.io import AudioFile

    x = (0.1 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)
    with AudioFile(str(path), "w", rate, channels, bit_depth=16) as f:
        f.write(x)


def lying_wav(src: Path, dst: Path, data_bytes: int | None = None, keep_fraction: float = 1.0) -> None:
    """`src` with its data chunk size patched to `data_bytes` and/or its data cut to a fraction."""
    raw = bytearray(src.read_bytes())
    at = raw.find(b"data")
    size = struct.unpack("<I", raw[at + 4 : at + 8])[0]
    if data_bytes is not None:
        raw[at + 4 : at + 8] = struct.pack("<I", data_bytes)
        raw[4:8] = struct.pack("<I", min(data_bytes + at, 0xFFFFFFFF))
    dst.write_bytes(bytes(raw[: at + 8 + int(size * keep_fraction)]))


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/bin/mount").exists()


def setup(work: Path, code: Path) -> dict[str, str]:
    """Inputs and an echo export (built by `code`); returns the environment for the CLI."""
    exports = work / "exports"
    env = {**os.environ, "PYTHONPATH": str(code), "STEMLINK_EXPORTS": str(exports), "STEMLINK_PRESETS": str(work / "presets")}
    env.pop("STEMLINK_ENGINE", None)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from stemlink.lab.export.echo import build_echo_export as b; "
            "b(sys.argv[1], sample_rate=44100, window=8192, delay=0, formats=('torchscript',))",
            str(exports),
        ],
        env=env,
        check=True,
        cwd=work,
        capture_output=True,
    )
    write_wav(work / "mix.wav")
    write_wav(work / "a.wav", frames=3 * 44100)
    write_wav(work / "b.wav", frames=2 * 44100, seed=1)
    lying_wav(work / "mix.wav", work / "claims-512MiB.wav", data_bytes=512 * 2**20)
    lying_wav(work / "mix.wav", work / "claims-4GiB.wav", data_bytes=0xFFFFFFF0)
    lying_wav(work / "mix.wav", work / "ten-percent.wav", keep_fraction=0.1)
    (work / "a-file").write_text("not a folder\n")
    (work / "folder.wav").mkdir()
    os.mkfifo(work / "fifo.wav")
    (work / "presets").mkdir()
    (work / "presets" / "flat.toml").write_text('task = "separate"\nmodel = "echo"\nstems = ["bass"]\noutput = "{stem}.wav"\n')
    (work / "clash.toml").write_text('preset = "flat"\nout = "out"\n[[tracks]]\nfile = "mix.wav"\n[[tracks]]\nfile = "a.wav"\n')
    return env


def cases(work: Path, fake: str) -> list[tuple[str, str, list[str]]]:
    """(name, what it shows, argv after `python -m stemlink`)."""
    sep = ["separate", "--model", "echo", "--out", "out"]
    rows = [
        ("baseline", "a normal 1 s stereo WAV (reference for memory)", [*sep, "mix.wav"]),
        (
            "nan-result",
            "fake engine returns 1x10 NaN stems for a 2x44100 region",
            ["separate", "mix.wav", "--out", "out", "--engine", fake],
        ),
        ("header-512MiB", "176 KB WAV whose header claims 512 MiB", [*sep, "claims-512MiB.wav"]),
        ("header-4GiB", "176 KB WAV whose header claims 0xFFFFFFF0 bytes", [*sep, "claims-4GiB.wav"]),
        ("truncated-10pct", "WAV with 10 % of the header's data present", [*sep, "ten-percent.wav"]),
        ("region-past-data", "region past the data of a truncated WAV", [*sep, "ten-percent.wav", "--start", "0.5"]),
        ("out-under-file", "--out below a regular file", [*sep[:-1], "a-file/stems", "mix.wav"]),
        ("out-in-proc", "--out in /proc", [*sep[:-1], "/proc/stemlink-out", "mix.wav"]),
        ("input-fifo", "a FIFO as the input", [*sep, "fifo.wav"]),
        ("input-folder", "a folder as the input", [*sep, "folder.wav"]),
        ("accompany-no-context", "accompany without --context-stems", ["accompany", "mix.wav", "--model", "echo", "--out", "out"]),
        (
            "accompany-overlap",
            "--context-stems bass,drums --stems drums",
            ["accompany", "mix.wav", "--model", "echo", "--out", "out", "--context-stems", "bass,drums", "--stems", "drums"],
        ),
        ("score-lengths", "score a 3 s and a 2 s file", ["score", "a.wav", "b.wav", "--model", "echo"]),
        (
            "score-regions",
            "score with its own region per input",
            ["score", "a.wav", "b.wav", "--model", "echo", "--start-a", "1", "--end-a", "3", "--end-b", "2"],
        ),
        ("session-clash", "session whose 2nd job's output name clashes with the 1st's", ["run", "clash.toml"]),
        ("write-fails-midway", "a write fails mid-job (RLIMIT_FSIZE 200 KB: EFBIG on the first 353 KB WAV)", [*sep, "mix.wav"]),
    ]
    if can_mount():
        rows += [
            ("out-read-only-fs", "--out on a read-only tmpfs", [*sep[:-1], str(work / "ro" / "out"), "mix.wav"]),
            ("out-disk-full", "--out on a 64 KiB tmpfs (the outputs need ~1.4 MB)", [*sep[:-1], str(work / "small" / "out"), "mix.wav"]),
        ]
    return rows


FILE_SIZE_LIMITS = {"write-fails-midway": 200_000}  # bytes per file (Python ignores SIGXFSZ: writes fail with EFBIG)


def run_case(argv: list[str], env: dict[str, str], cwd: Path, timeout: float, file_limit: int | None = None) -> dict:
    import resource

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    out = cwd / "out"
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "stemlink", *argv], env=env, cwd=cwd, stdout=stdout, stderr=err, preexec_fn=limit)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        stdout.seek(0)
        printed = [line for line in stdout.read().decode("utf-8", "replace").splitlines() if line.strip()]
    rc = os.waitstatus_to_exitcode(status)
    lines = [line for line in text.splitlines() if line.strip()]
    messages = [line for line in lines if line.startswith(("error:", "warning:"))]
    written = sorted(str(p.relative_to(cwd)) for p in out.rglob("*")) if out.is_dir() else []  # temp files included
    return {
        "rc": rc,
        "timed_out": wall >= timeout,
        "wall_s": round(wall, 2),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "traceback": "Traceback" in text,
        "messages": messages[-3:],
        "last_line": lines[-1][:300] if lines else "",
        "written": written,
        "stdout_tail": printed[-1][:300] if printed else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", action="append", required=True, help="code tree to put first on PYTHONPATH (repeatable)")
    parser.add_argument("--case", action="append", help="only these cases")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    fake = FakeEngine()
    results: dict[str, dict] = {}
    try:
        for code in args.code:
            with tempfile.TemporaryDirectory(prefix="host-rel-") as tmp:
                work = Path(tmp)
                env = setup(work, Path(code))
                mounts = []
                if can_mount():
                    for name, opts in (("ro", "ro,size=64k"), ("small", "size=64k")):
                        (work / name).mkdir()
                        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(work / name)], check=True)
                        mounts.append(work / name)
                try:
                    for name, what, case_argv in cases(work, fake.address):
                        if args.case and name not in args.case:
                            continue
                        for leftover in ("out",):
                            subprocess.run(["rm", "-rf", str(work / leftover)], check=True)
                        row = run_case(case_argv, env, work, args.timeout, FILE_SIZE_LIMITS.get(name))
                        row.update(case=name, what=what, argv=" ".join(case_argv))
                        results.setdefault(name, {})[code] = row
                        print(json.dumps({"code": code, **row}), flush=True)
                finally:
                    for mount in mounts:
                        subprocess.run(["umount", str(mount)], check=False)
    finally:
        fake.close()
    if args.json:
        Path(args.json).write_text(json.dumps({"load": os.getloadavg(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
