"""Bridge round trip: what the wire costs next to the job and next to a plain memory copy.

For a stereo 44.1 kHz region (10 s by default, 3.53 MB of float32), in one run, median of `n`:

- `copy_ms`: `np.copy` of the region (the bytes sent), and of the region plus 4 stems of the
  same size (all bytes a separation moves);
- `direct_ms`: `run_task` on the echo model in this process (no bridge at all);
- `job_ms[transport]`: `Client.separate` through a real engine (server thread + client in this
  process) over inproc, ipc and tcp loopback; `overhead_ms` = job - direct;
- `transport_ms[transport]`: protocol + sockets only: a reflector engine decodes the submit
  and answers a 4-stem result made of views of the input (same bytes as a separation, no
  model), so it is the bridge's own cost.

The echo export is made at 44.1 kHz so nothing is resampled.

    from stemlink.engine.bench.bridge import bench_bridge
    bench_bridge(n=50)            # -> dict
    python -m stemlink.engine.bench.bridge [N]     # prints a table and the JSON
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

RATE, CHANNELS = 44100, 2
STEMS = ("bass", "drums", "guitar", "piano")
TRANSPORTS = ("inproc", "ipc", "tcp")


def _median_ms(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _address(transport: str, folder: Path) -> str:
    return {"inproc": f"inproc://bench-{uuid.uuid4().hex}", "ipc": f"ipc://{folder}/bench-{uuid.uuid4().hex[:8]}.sock",
            "tcp": "tcp://127.0.0.1:*"}[transport]


class Reflector(threading.Thread):
    """A model-free engine: decodes each submit, replies a result of 4 views of its input."""

    def __init__(self, context: Any, address: str):
        super().__init__(daemon=True)
        import zmq

        self.socket = context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.bind(address)
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stop = threading.Event()

    def run(self) -> None:
        from stemlink.bridge.protocol import Result, decode, encode

        while not self.stop.is_set():
            if not self.socket.poll(50):
                continue
            frames = self.socket.recv_multipart(copy=False)
            msg = decode(frames[1:], "request")
            mix = msg.inputs["mix"]
            reply = Result(id=msg.id, task="separate", model="reflector", stems={s: mix for s in STEMS})
            self.socket.send_multipart([frames[0], *encode(reply)], copy=False)
        self.socket.close(linger=0)


def bench_bridge(n: int = 50, *, seconds: float = 10.0, transports: Sequence[str] = TRANSPORTS) -> dict[str, Any]:
    """Medians (ms) of `n` runs; see the module docstring for what each entry means."""
    import zmq

    from stemlink.bridge import Client
    from stemlink.engine.models.echo import build_echo_export
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.server import Server, ServerConfig
    from stemlink.engine.tasks import TaskRequest, run_task

    context = zmq.Context.instance()
    frames = int(round(seconds * RATE))
    mix = (0.1 * np.random.default_rng(0).standard_normal((CHANNELS, frames))).astype(np.float32)
    everything = np.concatenate([mix] * (1 + len(STEMS)))
    out: dict[str, Any] = {
        "region": {"seconds": seconds, "sample_rate": RATE, "channels": CHANNELS, "bytes": mix.nbytes}, "n": n,
        "copy_ms": {"region": _median_ms(lambda: np.copy(mix), n), "region_and_4_stems": _median_ms(lambda: np.copy(everything), n)},
    }
    with tempfile.TemporaryDirectory(prefix="stemlink-bench-") as tmp:
        folder = Path(tmp)
        exports = build_echo_export(folder / "exports", sample_rate=RATE, window=65536, formats=("onnx",))
        registry = ModelRegistry(exports)
        model = registry.get("echo")
        request = TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}, model="echo")
        out["direct_ms"] = _median_ms(lambda: run_task(model, request, callback=lambda d, t: None), n)
        out["job_ms"], out["overhead_ms"], out["transport_ms"] = {}, {}, {}
        for transport in transports:
            server = Server(ServerConfig(bind=_address(transport, folder), exports_dir=exports), context=context, registry=registry).start()
            try:
                with Client(server.address, context=context) as client:
                    out["job_ms"][transport] = _median_ms(lambda: client.separate(mix, RATE, model="echo"), n)
            finally:
                server.stop()
            out["overhead_ms"][transport] = out["job_ms"][transport] - out["direct_ms"]
            reflector = Reflector(context, _address(transport, folder))
            reflector.start()
            try:
                with Client(reflector.address, context=context) as client:
                    out["transport_ms"][transport] = _median_ms(lambda: client.separate(mix, RATE), n)
            finally:
                reflector.stop.set()
                reflector.join(5)
    return out


def format_report(result: dict[str, Any]) -> str:
    r = result["region"]
    lines = [
        f"bridge round trip, {r['seconds']:g} s {r['channels']}ch {r['sample_rate']} Hz float32 ({r['bytes'] / 1e6:.2f} MB), median of {result['n']}",
        f"  np.copy region {result['copy_ms']['region']:.3f} ms, region + 4 stems {result['copy_ms']['region_and_4_stems']:.3f} ms",
        f"  run_task in process (echo, no bridge) {result['direct_ms']:.2f} ms",
        f"  {'transport':<10}{'job ms':>10}{'overhead ms':>14}{'wire only ms':>14}",
    ]
    for t in result["job_ms"]:
        lines.append(f"  {t:<10}{result['job_ms'][t]:>10.2f}{result['overhead_ms'][t]:>14.2f}{result['transport_ms'][t]:>14.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    result = bench_bridge(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
    print(format_report(result))
    print(json.dumps(result, indent=2))
