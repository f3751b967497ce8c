"""The `stemlink` console script.

Each subcommand lives in its own module under `stemlink/commands/` and exposes
`register(subparsers)`; the module's `run(args) -> int` does the work. Modules are discovered,
so adding a command never edits this file. Errors derived from `StemlinkError` are printed as
one line (`error: ...`) with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from stemlink import __version__
from stemlink.errors import StemlinkError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stemlink", description="Stems in, stems out: separate, accompany, generate, score.")
    parser.add_argument("--version", action="version", version=f"stemlink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import stemlink.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"stemlink.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from stemlink.engine.threads import configure_process

    configure_process()  # passive OpenMP waiting, before any command imports torch (stemlink/engine/threads.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.cli_argv = list(sys.argv[1:] if argv is None else argv)  # e.g. `serve --background` re-runs its own options
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except StemlinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
