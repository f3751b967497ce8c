"""`stemlink models [--engine ADDR]`: list what an engine serves (embedded when no address)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models an engine serves")
    parser.add_argument(
        "--engine",
        default=None,
        help="engine address, e.g. tcp://127.0.0.1:5555 (default: $STEMLINK_ENGINE, else a local `stemlink serve` that answers, else an embedded engine)",
    )
    parser.add_argument("--exports", default=None, help="exports folder for the embedded engine (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the engine")
    from stemlink.plugin_host.cli import add_curve_args

    add_curve_args(parser)
    parser.set_defaults(run=run)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def run(args: argparse.Namespace) -> int:
    from stemlink.launcher import connect
    from stemlink.plugin_host.cli import curve_options

    with connect(args.engine, timeout=args.timeout, exports_dir=args.exports, **curve_options(args)) as client:
        caps = client.hello()
        where = "embedded engine" if client.engine is not None else client.address
    print(f"stemlink engine {caps.engine_version} (protocol {caps.protocol_version}) at {where}: {len(caps.models)} model(s)")
    if not caps.models:
        return 0
    rows = [["NAME", "VERSION", "FAMILY", "TASKS", "FORMATS", "RATE", "STEMS", "WINDOW", "DELAY", "SHA256"]]
    for m in caps.models:
        rows.append(
            [
                m.name,
                m.version,
                m.family,
                ",".join(m.tasks),
                ",".join(m.formats),
                str(m.sample_rate),
                ",".join(m.stems) or "-",
                str(m.window),
                str(m.delay),
                m.sha256[:12],
            ]
        )
    print(format_table(rows))
    defaults = ", ".join(f"{task}={name}" for task, name in sorted(caps.defaults.items()))
    if defaults:
        print(f"defaults: {defaults}")
    return 0
