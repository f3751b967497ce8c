"""`stemlink serve`: run the engine server until SIGTERM/SIGINT.

Binds 127.0.0.1 by default. A non-loopback address is only used when given explicitly with
`--bind` (the STEMLINK_BIND environment default must be loopback, ipc:// or inproc://).
`--curve DIR` encrypts connections and accepts only the clients whose public keys are in
DIR/clients (see `stemlink keys init`); without it a non-loopback bind logs a warning.
Logs one line per job.
"""
from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback host."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = urlsplit(f"//{rest}").hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=None, help="address to bind (default tcp://127.0.0.1:5555; other hosts only when given here)")
    parser.add_argument("--exports", default=None, help="exports folder with manifest.json (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--workers", type=int, default=1, help="worker threads running jobs")
    parser.add_argument("--queue", type=int, default=8, help="jobs that may wait; more answer BUSY")
    parser.add_argument("--heartbeat", type=float, default=0.5, help="seconds between heartbeats to clients with unfinished jobs")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads per model")
    parser.add_argument("--finish-running", action="store_true",
                        help="on SIGTERM/SIGINT let running jobs finish (up to --grace s) instead of cancelling them")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for running jobs at shutdown")
    parser.add_argument("--preload", action="store_true", help="load every model before accepting clients (no first-job latency)")
    parser.add_argument("--curve", default=None, metavar="DIR",
                        help="CURVE keys folder (`stemlink keys init DIR`): encrypt and accept only authorized clients")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the engine server (ZeroMQ)")
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    from pathlib import Path

    from stemlink.engine.server import DEFAULT_BIND, Server, ServerConfig
    from stemlink.errors import InvalidInput

    bind = args.bind or os.environ.get("STEMLINK_BIND") or DEFAULT_BIND
    if args.bind is None and not is_loopback(bind):
        raise InvalidInput(f"refusing to bind non-loopback address {bind!r} from STEMLINK_BIND; pass it explicitly with --bind", field="bind")
    if args.workers < 1 or args.queue < 1 or args.heartbeat <= 0:
        raise InvalidInput(f"--workers and --queue must be >= 1 and --heartbeat > 0, got {args.workers}, {args.queue}, {args.heartbeat}", field="workers")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not is_loopback(bind) and not args.curve:
        logging.getLogger("stemlink.engine.server").warning(
            "%s is reachable from other machines WITHOUT authentication; use --curve DIR to encrypt and authorize clients", bind)
    config = ServerConfig(
        bind=bind, exports_dir=Path(args.exports) if args.exports else None, workers=args.workers,
        queue_size=args.queue, heartbeat_interval=args.heartbeat, device=args.device, threads=args.threads,
        curve_dir=Path(args.curve) if args.curve else None, finish_running=args.finish_running, shutdown_grace=args.grace,
        preload=args.preload,
    )
    server = Server(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.request_stop())
    server.serve()
    return 0
