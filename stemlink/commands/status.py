"""`stemlink status [--engine ADDR]`: queue depth, running jobs and uptime of a running engine.

Without `--engine`, the engine a client would find (`$STEMLINK_ENGINE`, or a local
`stemlink serve` on the default address); embedded engines live only inside their client.
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="show what a running engine is doing")
    parser.add_argument("--engine", default=None, help="engine address (default: $STEMLINK_ENGINE or tcp://127.0.0.1:5555)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the engine")
    parser.add_argument("--curve", default=None, metavar="DIR", help="CURVE keys folder for an authenticated engine")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stemlink.bridge import Client
    from stemlink.bridge.discovery import DEFAULT_ADDRESS, discover
    from stemlink.errors import EngineUnavailable

    address = args.engine or discover()
    if address is None:
        raise EngineUnavailable(f"no engine is running at $STEMLINK_ENGINE or {DEFAULT_ADDRESS} (start one with `stemlink serve`)", field="engine")
    with Client(address, timeout=args.timeout, curve=args.curve) as client:
        status = client.status()
    print(f"engine at {address}: up {status.uptime:.0f} s, queue {status.queue_depth}/{status.queue_size}, "
          f"{len(status.running)} running, {status.jobs_done} done, {status.jobs_failed} failed")
    for job in status.running:
        print(f"  {job.get('job')}  {job.get('task')}  {job.get('model')}  {job.get('done')}/{job.get('total')}")
    return 0
