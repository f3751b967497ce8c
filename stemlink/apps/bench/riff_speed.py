"""Wall time of riff accompaniment for a 10 s stereo 44.1 kHz region, per step count and thread
count, with and without a text prompt (issue 14's speed figure):

    python -m stemlink.apps.bench.riff_speed MODEL OUT.jsonl 5,30

Through `run_task` (apply layer, windows, codec, DiT, CLAP text tower and bridge), after a 1 s
warm-up; one JSON record per run appended to OUT.jsonl.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from stemlink.contract import TaskRequest
from stemlink.engine.registry import ModelRegistry
from stemlink.engine.tasks import run_task


def main(argv: list[str]) -> int:
    name, out, steps = argv[0], argv[1], [int(s) for s in argv[2].split(",")]
    context = (0.1 * np.random.default_rng(0).standard_normal((2, 441_000))).astype(np.float32)
    for threads in (2, 1):
        torch.set_num_threads(threads)
        model = ModelRegistry(device="cpu", threads=threads).get(name)
        run_task(model, TaskRequest("accompany", 44100, {"context": context[:, :44100]}, params={"steps": 1}))
        for n in steps:
            for text in ("", "warm electric piano"):
                t0 = time.perf_counter()
                run_task(model, TaskRequest("accompany", 44100, {"context": context}, params={"steps": n}, text=text))
                wall = time.perf_counter() - t0
                record: dict[str, object] = {
                    "kind": "riff-speed",
                    "model": name,
                    "threads": threads,
                    "steps": n,
                    "text": bool(text),
                    "region_seconds": 10.0,
                }
                record |= {"params": {k: v for k, v in vars(model.parse_params("accompany", {"steps": n})).items() if "guidance" in k}}
                record |= {"wall_seconds": round(wall, 3), "rtf": round(wall / 10.0, 3)}
                print(json.dumps(record))
                with open(out, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
