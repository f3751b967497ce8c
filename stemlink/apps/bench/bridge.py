"""Bridge round trip: what the wire costs next to the job and next to a plain memory copy.

For a stereo 44.1 kHz region (10 s by default, 3.53 MB of float32), in one run, median of `n`:

- `copy_ms`: `np.copy` of the region (the bytes sent), and of the region plus 4 stems of the
  same size (all bytes a separation moves);
- `direct_ms`: `run_task` on the echo model in this process, on a worker thread like the
  engine's (no bridge at all);
- `job_ms[transport]`: `Client.separate` through a real engine (server thread + client in this
  process) over inproc, ipc and tcp loopback; `overhead_ms` = median over rounds of
  (job - direct) measured in the same round (each round runs every variant once, in a
  shuffled order, so they share the machine's background load); `child_process`: the same over ipc to the embedded child
  process engine (`Engine.start_embedded(transport="process")`), the realistic separate-process
  setup;
- `transport_ms[transport]`: protocol + sockets only: a reflector engine decodes the submit
  and answers a 4-stem result made of views of the input (same bytes as a separation, no
  model), so it is the bridge's own cost.

The echo export is made at 44.1 kHz so nothing is resampled.

    from stemlink.apps.bench.bridge import bench_bridge
    bench_bridge(n=50)            # -> dict
    python -m stemlink.apps.bench.bridge [N]     # prints a table and the JSON
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

RATE, CHANNELS = 44100, 2
STEMS = ("bass", "drums", "guitar", "piano")
TRANSPORTS = ("inproc", "ipc", "tcp")


def _time_ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return 1000.0 * (time.perf_counter() - start)


def _median_ms(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm-up
    return statistics.median(_time_ms(fn) for _ in range(n))


def _address(transport: str, folder: Path) -> str:
    return {
        "inproc": f"inproc://bench-{uuid.uuid4().hex}",
        "ipc": f"ipc://{folder}/bench-{uuid.uuid4().hex[:8]}.sock",
        "tcp": "tcp://127.0.0.1:*",
    }[transport]


class Reflector(threading.Thread):
    """A model-free engine: decodes each submit, replies a result of 4 views of its input
    (and answers the client's hello)."""

    def __init__(self, context: Any, address: str):
        super().__init__(daemon=True)
        import zmq

        self.socket = context.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.bind(address)
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stop = threading.Event()

    def run(self) -> None:
        from stemlink.bridge.protocol import Capabilities, Message, Result, Submit, decode, encode
        from stemlink.contract import TaskResult

        while not self.stop.is_set():
            if not self.socket.poll(50):
                continue
            frames = self.socket.recv_multipart(copy=False)
            msg = decode(frames[1:], "request")
            reply: Message
            if isinstance(msg, Submit):
                mix = msg.request.inputs["mix"]
                reply = Result(id=msg.id, result=TaskResult(task="separate", model="reflector", stems={s: mix for s in STEMS}))
            else:  # the client's hello (limits)
                reply = Capabilities(id=msg.id, engine_version="reflector")
            self.socket.send_multipart([frames[0], *encode(reply)], copy=False)
        self.socket.close(linger=0)


def bench_bridge(
    n: int = 50, *, seconds: float = 10.0, transports: Sequence[str] = TRANSPORTS, child_process: bool = True
) -> dict[str, Any]:
    """Medians (ms) of `n` runs; see the module docstring for what each entry means."""
    import zmq

    from stemlink.bridge import Client
    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.server import Engine, Server, ServerConfig
    from stemlink.engine.tasks import run_task
    from stemlink.lab.export.echo import build_echo_export

    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    frames = int(round(seconds * RATE))
    mix = (0.1 * np.random.default_rng(0).standard_normal((CHANNELS, frames))).astype(np.float32)
    everything = np.concatenate([mix] * (1 + len(STEMS)))
    out: dict[str, Any] = {
        "region": {"seconds": seconds, "sample_rate": RATE, "channels": CHANNELS, "bytes": mix.nbytes},
        "n": n,
        "copy_ms": {"region": _median_ms(lambda: np.copy(mix), n), "region_and_4_stems": _median_ms(lambda: np.copy(everything), n)},
    }
    with tempfile.TemporaryDirectory(prefix="stemlink-bench-") as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        exports = build_echo_export(folder / "exports", sample_rate=RATE, window=65536, formats=("onnx",))
        registry = ModelRegistry(exports)
        model = registry.get("echo")
        request = TaskRequest(task="separate", sample_rate=RATE, inputs={"mix": mix}, model="echo")
        # Direct runs happen on a persistent worker thread, like the engine's worker: on this
        # machine run_task on the main thread is ~20% slower (allocator behaviour), which would
        # otherwise show up as a negative bridge overhead.
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        runs: dict[str, Callable[[], Any]] = {
            "direct": lambda: pool.submit(run_task, model, request, callback=lambda d, t: None).result(),
        }
        for transport in transports:
            server = Server(ServerConfig(bind=_address(transport, folder), exports_dir=exports), context=context, registry=registry).start()
            stack.callback(server.stop)
            job_client = stack.enter_context(Client(server.address, context=context))
            reflector = Reflector(context, _address(transport, folder))
            reflector.start()
            stack.callback(reflector.join, 5)
            stack.callback(reflector.stop.set)
            wire_client = stack.enter_context(Client(reflector.address, context=context))
            runs[f"job/{transport}"] = functools.partial(job_client.separate, mix, RATE, model="echo")
            runs[f"wire/{transport}"] = functools.partial(wire_client.separate, mix, RATE)
        if child_process:
            engine = Engine.start_embedded(exports, transport="process")
            stack.callback(engine.stop)
            child_client = stack.enter_context(Client(engine.address, context=context))
            runs["job/process"] = lambda: child_client.separate(mix, RATE, model="echo")
        # Rounds of every variant in shuffled order, so all see the same background load;
        # overhead is the median of per-round differences (job - direct of the same round).
        for fn in runs.values():
            fn()
        samples: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        rng = random.Random(0)
        for _ in range(n):
            rng.shuffle(order)  # no variant always runs right after another (e.g. after ORT threads spin)
            for name in order:
                samples[name].append(_time_ms(runs[name]))
        out["direct_ms"] = statistics.median(samples["direct"])

        def overhead(name: str) -> float:
            return statistics.median(j - d for j, d in zip(samples[name], samples["direct"], strict=True))

        out["job_ms"] = {t: statistics.median(samples[f"job/{t}"]) for t in transports}
        out["overhead_ms"] = {t: overhead(f"job/{t}") for t in transports}
        if child_process:
            out["child_process"] = {"job_ms": statistics.median(samples["job/process"]), "overhead_ms": overhead("job/process")}
        out["transport_ms"] = {t: statistics.median(samples[f"wire/{t}"]) for t in transports}
    out["load_average"] = os.getloadavg()
    return out


def format_report(result: dict[str, Any]) -> str:
    r = result["region"]
    lines = [
        f"bridge round trip, {r['seconds']:g} s {r['channels']}ch {r['sample_rate']} Hz float32 ({r['bytes'] / 1e6:.2f} MB), median of {result['n']}",
        f"  np.copy region {result['copy_ms']['region']:.3f} ms, region + 4 stems {result['copy_ms']['region_and_4_stems']:.3f} ms",
        f"  run_task in process (echo, no bridge) {result['direct_ms']:.2f} ms; load average {result['load_average'][0]:.1f}",
        f"  {'transport':<10}{'job ms':>10}{'overhead ms':>14}{'wire only ms':>14}",
    ]
    for t in result["job_ms"]:
        lines.append(f"  {t:<10}{result['job_ms'][t]:>10.2f}{result['overhead_ms'][t]:>14.2f}{result['transport_ms'][t]:>14.2f}")
    if "child_process" in result:
        child = result["child_process"]
        lines.append(
            f"  {'process':<10}{child['job_ms']:>10.2f}{child['overhead_ms']:>14.2f}{'-':>14}   (ipc to the embedded child process)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = bench_bridge(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
    print(format_report(result))
    print(json.dumps(result, indent=2))
