"""`stemlink generate --seconds S --sr R --out DIR`: a coherent set of new stems from nothing."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="generate a coherent set of stems")
    parser.add_argument("--seconds", type=float, required=True, help="length in seconds")
    parser.add_argument("--sr", type=int, default=44100, help="output sample rate (default 44100)")
    parser.add_argument("--channels-out", type=int, default=2, dest="channels_out", help="output channels (default 2, dual mono)")
    parser.add_argument("--stems", help="stems to generate, comma-separated (default: all)")
    parser.add_argument("--timeline", type=float, default=0.0, help="timeline position of the result, seconds (default 0)")
    parser.add_argument("--track", default="generated", help="track name for output files")
    from stemlink.plugin_host.cli import add_condition_args, add_job_args

    add_condition_args(parser)
    add_job_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import math
    from pathlib import Path

    from stemlink.contract import DEFAULT_LIMITS
    from stemlink.errors import InvalidInput
    from stemlink.plugin_host.cli import preset_from_args, run_jobs, split_names
    from stemlink.plugin_host.jobs import Job

    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise InvalidInput(f"--seconds must be > 0, got {args.seconds}", field="seconds")
    if not math.isfinite(args.timeline) or args.timeline < 0:
        raise InvalidInput(f"--timeline must be >= 0, got {args.timeline}", field="timeline")
    frames = int(round(args.seconds * args.sr))
    DEFAULT_LIMITS.check_rate(args.sr, field="--sr")  # the engine's limits, before any engine is started
    DEFAULT_LIMITS.check_channels(args.channels_out, field="--channels-out")
    DEFAULT_LIMITS.check_generate(frames, args.channels_out, where=f"--seconds {args.seconds:g}: ", rate=args.sr)
    preset = preset_from_args(args, "generate", stems=split_names(args.stems), text=args.text, reference=args.reference)
    job = Job(
        preset=preset,
        out_dir=Path(args.out),
        track=args.track,
        overwrite=args.overwrite,
        frames=frames,
        sample_rate=args.sr,
        channels=args.channels_out,
        timeline=int(round(args.timeline * args.sr)),
    )
    return run_jobs(args, [job])
