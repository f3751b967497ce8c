"""`stemlink demo [--out DIR] [--exports DIR] [--quick] [--overwrite]`: the main job on the demo song.

Separates a region of the shipped demo song, generates an accompaniment part for another
region, scores it with COCOLA, writes BWF stems + sidecars and `report.html`. Progress goes to
stderr; the last line on stdout is the report's path. See `stemlink/apps/demo.py`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="separate, accompany and score the shipped demo song; write an HTML report")
    parser.add_argument("--out", default="demo-out", help="output folder (default: ./demo-out; must be empty unless --overwrite)")
    parser.add_argument(
        "--exports", default=None, help="exports folder with manifest.json (default: $STEMLINK_EXPORTS or the project's exports/)"
    )
    parser.add_argument("--song", default=None, help="demo song folder (default: exports/demo-song)")
    parser.add_argument("--quick", action="store_true", help="shorter regions, 10 sampler steps, 2 candidates (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps for separate and accompany (default: the presets')")
    parser.add_argument("--candidates", type=int, default=None, help="accompaniment candidates ranked by COCOLA (default 4; --quick 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in --out")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    from dataclasses import replace
    from pathlib import Path

    from stemlink.apps.demo import DemoConfig, run_demo

    argv = ["stemlink", "demo", "--out", args.out]
    for flag, value in (("--exports", args.exports), ("--song", args.song), ("--steps", args.steps), ("--candidates", args.candidates)):
        argv += [flag, str(value)] if value is not None else []
    argv += ["--quick"] if args.quick else []
    options = {
        "out": Path(args.out),
        "exports": Path(args.exports) if args.exports else None,
        "overwrite": args.overwrite,
        "command": shlex.join(argv),
    }
    if args.song:
        options["song"] = Path(args.song)
    if args.candidates is not None:
        options["candidates"] = args.candidates
    config = DemoConfig.quick(**options) if args.quick else DemoConfig(**options)
    if args.steps is not None:
        config = replace(config, params=(*[(k, v) for k, v in config.params if k != "steps"], ("steps", args.steps)))
    result = run_demo(config, log=lambda line: print(line, flush=True))
    print(result.report.resolve())
    return 0
