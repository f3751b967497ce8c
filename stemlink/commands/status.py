"""`stemlink status [--engine ADDR]`: queue depth, running jobs and uptime of a running engine.

Without `--engine`, the engine a client would find: `$STEMLINK_ENGINE`, else a local
`stemlink serve` (or `serve --background`) on the default address. Embedded engines live only
inside their client, so `status` never starts one. When nothing listens at the address it
says so at once (a TCP connect or socket-file check, no torch, no engine).

Exit codes: 0 an engine answered; 2 no engine is running there, it did not answer within
`--timeout`, or it refused this client (one line `error: ...`).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from stemlink.plugin_host.cli import add_curve_args

    parser = subparsers.add_parser("status", help="show what a running engine is doing")
    parser.add_argument("--engine", default=None, help="engine address (default: $STEMLINK_ENGINE or tcp://127.0.0.1:5555)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an engine that is listening")
    add_curve_args(parser)
    parser.set_defaults(run=run)


def listening(address: str) -> bool:
    """False when nothing can be listening at `address` (closed tcp port, missing ipc socket file)."""
    from pathlib import Path
    from urllib.parse import urlsplit

    from stemlink.bridge.discovery import port_open

    scheme, _, rest = address.partition("://")
    if scheme == "ipc":
        return Path(rest).exists()
    if scheme == "tcp":
        parts = urlsplit(f"//{rest}")
        try:
            port = parts.port
        except ValueError:
            return True  # not ours to judge: let the client report the address
        return port is None or port_open(parts.hostname or "127.0.0.1", port, timeout=1.0)
    return True


def run(args: argparse.Namespace) -> int:
    import os

    from stemlink.bridge.discovery import DEFAULT_ADDRESS, EMBEDDED, ENV_ENGINE
    from stemlink.errors import EngineUnavailable
    from stemlink.plugin_host.cli import curve_options

    env = os.environ.get(ENV_ENGINE, "").strip()
    address = args.engine or (env if env and env != EMBEDDED else None)
    if address is None and env == EMBEDDED:
        raise EngineUnavailable(f"no engine is running: ${ENV_ENGINE}=embedded (embedded engines live inside their client)", field="engine")
    where = address or DEFAULT_ADDRESS
    if not listening(where):
        raise EngineUnavailable(f"no engine is running at {where}; start one with `stemlink serve --background`", field="engine")

    from stemlink.bridge import Client

    with Client(where, timeout=args.timeout, **curve_options(args)) as client:
        status = client.status()
    print(
        f"engine at {where}: up {status.uptime:.0f} s, queue {status.queue_depth}/{status.queue_size}, "
        f"{len(status.running)} running, {status.jobs_done} done, {status.jobs_failed} failed"
    )
    for job in status.running:
        print(f"  {job.get('job')}  {job.get('task')}  {job.get('model')}  {job.get('done')}/{job.get('total')}")
    return 0
