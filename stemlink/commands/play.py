"""`stemlink play FILE [--start S --end E]`: audition a file or region on the default output device."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("play", help="play an audio file (or a region of it) through sounddevice")
    parser.add_argument("file")
    parser.add_argument("--start", type=float, help="seconds")
    parser.add_argument("--end", type=float, help="seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stemlink.plugin_host.audition import play
    from stemlink.plugin_host.cli import warnings_as_lines
    from stemlink.plugin_host.region import Region, read_region

    with warnings_as_lines():
        audio, rate, _ = read_region(Region.from_times(Path(args.file), start=args.start, end=args.end))
        play(audio, rate)
    return 0
