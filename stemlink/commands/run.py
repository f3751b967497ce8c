"""`stemlink run SESSION.toml`: every region of a session file (schema: stemlink/plugin_host/SESSION.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the jobs of a session file (tracks, files, regions, presets)")
    parser.add_argument("session", help="session TOML file")
    parser.add_argument("--out", help="output folder (default: the session's 'out', relative to the session file)")
    parser.add_argument("--overwrite", action="store_true", default=None, help="replace existing outputs")
    parser.add_argument("--play", action="store_true", help="audition the last job's result")
    from stemlink.plugin_host.cli import add_dawproject_arg, add_engine_args

    add_dawproject_arg(parser)
    add_engine_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stemlink.plugin_host.cli import run_jobs
    from stemlink.plugin_host.session import load_session

    session = load_session(args.session, out_dir=Path(args.out) if args.out else None, overwrite=args.overwrite)
    return run_jobs(args, session.jobs)
