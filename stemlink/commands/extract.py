"""`stemlink extract FILE --stems piano ...`: chosen stems of a mix region, plus the residual (the
mix without them); for a tag-conditioned model (GMSDI) any tag of its vocabulary ("strings",
"brass section"), `--context-stems` naming what else the mix holds."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("extract", help="extract stems from a region of a mix (the rest comes back as 'residual')")
    from stemlink.plugin_host.cli import add_job_args, add_region_args

    add_region_args(parser)
    parser.add_argument("--stems", required=True, help="stems (or tags) to extract, comma-separated")
    parser.add_argument(
        "--context-stems", help="tag models: the other stems the mix holds, comma-separated (default bass, drums, guitar, piano)"
    )
    add_job_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stemlink.plugin_host.cli import preset_from_args, region_from_args, run_jobs, split_names
    from stemlink.plugin_host.jobs import Job

    preset = preset_from_args(args, "extract", stems=split_names(args.stems), context_stems=split_names(args.context_stems))
    job = Job(preset=preset, out_dir=Path(args.out), region=region_from_args(args), overwrite=args.overwrite)
    return run_jobs(args, [job])
