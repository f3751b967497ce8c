"""`stemlink serve`: run the engine server until SIGTERM/SIGINT.

Binds 127.0.0.1 by default. A non-loopback address is only used when given explicitly with
`--bind` (the STEMLINK_BIND environment default must be loopback, ipc:// or inproc://).
`--curve DIR` encrypts connections and accepts only the clients whose public keys are in
DIR/clients (see `stemlink keys init`); without it a non-loopback bind logs a warning.
Logs one line per job.

`--background` starts the same engine detached, with `--preload` (a warm engine: clients on
this machine find it on the default address and skip the torch import and model loading),
waits until it answers and prints its address; pid file and log live in the state folder
(`stemlink/background.py`). `--stop` stops it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from urllib.parse import urlsplit


def is_loopback(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback host: "localhost" or a loopback IP
    literal (127.0.0.0/8, ::1). Any other host name, e.g. "127.0.0.1.example.com", is not."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    try:
        host = urlsplit(f"//{rest}").hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=None, help="address to bind (default tcp://127.0.0.1:5555; other hosts only when given here)")
    parser.add_argument("--exports", default=None, help="exports folder with manifest.json (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--workers", type=int, default=1, help="worker threads running jobs")
    parser.add_argument("--queue", type=int, default=8, help="jobs that may wait; more answer BUSY")
    parser.add_argument("--heartbeat", type=float, default=0.5, help="seconds between heartbeats to clients with unfinished jobs")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads per model")
    parser.add_argument(
        "--finish-running",
        action="store_true",
        help="on SIGTERM/SIGINT let running jobs finish (up to --grace s) instead of cancelling them",
    )
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for running jobs at shutdown")
    parser.add_argument("--preload", action="store_true", help="load every model before accepting clients (no first-job latency)")
    parser.add_argument(
        "--curve",
        default=None,
        metavar="DIR",
        help="CURVE keys folder (`stemlink keys init DIR`): encrypt and accept only authorized clients",
    )
    parser.add_argument(
        "--client-jobs",
        type=int,
        default=2,
        metavar="N",
        help="active (queued + running) jobs one client may have; more answer BUSY (0 = no limit)",
    )
    parser.add_argument(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help="bytes all active jobs may hold (inputs + estimated outputs), e.g. 4G, 512M, 25%% of RAM (default), 0 = none",
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds a job may run before the engine stops it with a TIMEOUT error (default: no limit)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the engine server (ZeroMQ)")
    add_arguments(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--background",
        action="store_true",
        help="start detached with --preload, wait until it answers, print its address (pid file + log: $STEMLINK_STATE_DIR, "
        "$XDG_RUNTIME_DIR/stemlink or ~/.cache/stemlink)",
    )
    mode.add_argument("--stop", action="store_true", help="stop the engine started with --background")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    from pathlib import Path

    from stemlink.bridge.discovery import DEFAULT_ADDRESS as DEFAULT_BIND
    from stemlink.errors import InvalidInput

    if getattr(args, "stop", False):
        return _stop()
    bind = args.bind or os.environ.get("STEMLINK_BIND") or DEFAULT_BIND
    if args.bind is None and not is_loopback(bind):
        raise InvalidInput(
            f"refusing to bind non-loopback address {bind!r} from STEMLINK_BIND; pass it explicitly with --bind", field="bind"
        )
    if args.workers < 1 or args.queue < 1 or args.heartbeat <= 0:
        raise InvalidInput(
            f"--workers and --queue must be >= 1 and --heartbeat > 0, got {args.workers}, {args.queue}, {args.heartbeat}", field="workers"
        )
    if getattr(args, "background", False):
        return _background(args, bind)
    from stemlink.engine.server import Server, ServerConfig
    from stemlink.engine.server.jobs import parse_size

    if args.client_jobs < 0 or (args.job_timeout is not None and args.job_timeout <= 0):
        raise InvalidInput(
            f"--client-jobs must be >= 0 and --job-timeout > 0, got {args.client_jobs}, {args.job_timeout}", field="client_jobs"
        )
    budget = parse_size(args.memory_budget) if args.memory_budget is not None else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not is_loopback(bind) and not args.curve:
        logging.getLogger("stemlink.engine.server").warning(
            "%s is reachable from other machines WITHOUT authentication; use --curve DIR to encrypt and authorize clients", bind
        )
    config = ServerConfig(
        bind=bind,
        exports_dir=Path(args.exports) if args.exports else None,
        workers=args.workers,
        queue_size=args.queue,
        heartbeat_interval=args.heartbeat,
        device=args.device,
        threads=args.threads,
        curve_dir=Path(args.curve) if args.curve else None,
        finish_running=args.finish_running,
        shutdown_grace=args.grace,
        preload=args.preload,
        max_client_jobs=args.client_jobs,
        memory_budget=budget,
        job_timeout=args.job_timeout,
    )
    server = Server(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.request_stop())
    server.serve()
    return 0


def _serve_argv(args: argparse.Namespace) -> list[str]:
    """This command's own options for the detached child: minus --background, plus --preload."""
    argv = list(getattr(args, "cli_argv", None) or sys.argv[1:])
    argv = argv[argv.index("serve") + 1 :] if "serve" in argv else argv
    argv = [a for a in argv if not (len(a) > 3 and "--background".startswith(a))]
    return argv if args.preload else [*argv, "--preload"]


def _background(args: argparse.Namespace, bind: str) -> int:
    from stemlink import background
    from stemlink.bridge.discovery import DEFAULT_ADDRESS

    engine, started = background.start(_serve_argv(args), bind, curve=bool(args.curve))
    verb = "engine running" if started else "engine already running"
    print(f"{verb} at {engine.address} (pid {engine.pid}, log {engine.log}); stop it with `stemlink serve --stop`")
    if engine.address != DEFAULT_ADDRESS:
        print(f"clients find it with --engine {engine.address} or STEMLINK_ENGINE={engine.address}")
    return 0


def _stop() -> int:
    from stemlink import background

    engine = background.stop()
    if engine is None:
        print(f"no background engine is running (nothing recorded in {background.state_dir()})")
        return 0
    print(f"stopped the background engine at {engine.address} (pid {engine.pid})")
    return 0
