"""`stemlink accompany FILE --context-stems bass,drums --stems piano ...` (MSDM) or
`stemlink accompany FILE --model riff-small --text "warm electric piano"`: new parts that fit a region."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("accompany", help="generate stems that fit a region (the region holds --context-stems)")
    from stemlink.contract import MAX_CANDIDATES
    from stemlink.plugin_host.cli import add_condition_args, add_job_args, add_region_args

    add_region_args(parser)
    parser.add_argument(
        "--context-stems", help="stems the region contains, comma-separated (e.g. bass,drums; models that read the whole region need none)"
    )
    parser.add_argument("--stems", help="stems to generate, comma-separated (default: the model's stems not in the context)")
    parser.add_argument("--candidates", type=int, help=f"generate N candidates and keep the best by COCOLA score (1..{MAX_CANDIDATES})")
    add_condition_args(parser)
    add_job_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stemlink.plugin_host.cli import preset_from_args, region_from_args, run_jobs, split_names
    from stemlink.plugin_host.jobs import Job

    preset = preset_from_args(
        args,
        "accompany",
        stems=split_names(args.stems),
        context_stems=split_names(args.context_stems),
        candidates=args.candidates,
        text=args.text,
        reference=args.reference,
    )
    job = Job(preset=preset, out_dir=Path(args.out), region=region_from_args(args), overwrite=args.overwrite)
    return run_jobs(args, [job])
