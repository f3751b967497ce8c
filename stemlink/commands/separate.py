"""`stemlink separate FILE --start S --end E ...`: a mix region -> spotted BWF stems + sidecars."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("separate", help="separate a region of a mix into stems (bass, drums, guitar, piano)")
    from stemlink.plugin_host.cli import add_job_args, add_region_args

    add_region_args(parser)
    parser.add_argument("--stems", help="only these stems, comma-separated (default: all the model's stems)")
    add_job_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stemlink.plugin_host.cli import preset_from_args, region_from_args, run_jobs, split_names
    from stemlink.plugin_host.jobs import Job

    preset = preset_from_args(args, "separate", stems=split_names(args.stems))
    job = Job(preset=preset, out_dir=Path(args.out), region=region_from_args(args), overwrite=args.overwrite)
    return run_jobs(args, [job])
