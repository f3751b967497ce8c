"""`stemlink score A B [--model M] [--engine ADDR]`: COCOLA coherence of two audio files.

A is the context (e.g. the rest of the band), B the candidate part; the score is the mean
bilinear similarity a^T W b over the model's windows (higher = fits better; not symmetric).
Files may have any format, rate, channel count and length: B is resampled to A's rate when
they differ and both are downmixed to mono by the engine. Each input has its own region
(`--start-a/--end-a`, `--start-b/--end-b`, seconds in that file); `--start` and `--end` or
`--seconds` set both at once (a `--seconds` span is cut at the end of a file, as before).
When the two regions differ in length the engine zero-pads the shorter: a warning says so.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help="COCOLA coherence score of two audio files (context, candidate)")
    parser.add_argument("a", help="context audio file (WAV, FLAC, AIFF, MP3, ...)")
    parser.add_argument("b", help="candidate audio file")
    parser.add_argument("--model", default=None, help="score model (default: the engine's default for 'score')")
    parser.add_argument("--start", type=float, default=None, help="region start in both files, seconds (default 0)")
    parser.add_argument("--end", type=float, default=None, help="region end in both files, seconds (default: end of each file)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="region length in both files, seconds, cut at a file's end (default: whole files)"
    )
    for x in ("a", "b"):
        parser.add_argument(f"--start-{x}", type=float, default=None, help=f"region start in {x.upper()}, seconds (default: --start)")
        parser.add_argument(f"--end-{x}", type=float, default=None, help=f"region end in {x.upper()}, seconds (default: --end)")
    parser.add_argument(
        "--engine", metavar="ADDR", default=None, help="engine address (tcp://HOST:PORT, ipc://PATH); default: embedded engine"
    )
    parser.add_argument("--exports", default=None, help="exports folder for the embedded engine (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the engine to accept the request")
    from stemlink.plugin_host.cli import add_curve_args

    add_curve_args(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def region_of(args: argparse.Namespace, which: str):
    """The checked `Region` of input `which` ("a" or "b") from the per-input and shared options."""
    import math
    from pathlib import Path

    from stemlink.errors import InvalidInput
    from stemlink.plugin_host.region import Region, file_info

    path = Path(getattr(args, which))
    start = getattr(args, f"start_{which}")
    start = (args.start or 0.0) if start is None else start
    end = getattr(args, f"end_{which}")
    end = args.end if end is None else end
    if args.seconds is not None:
        if args.end is not None:
            raise InvalidInput("give --end or --seconds, not both", field="seconds")
        if not math.isfinite(args.seconds) or args.seconds <= 0:
            raise InvalidInput(f"--seconds must be > 0, got {args.seconds}", field="seconds")
        if getattr(args, f"end_{which}") is None:
            info = file_info(path)
            end = min(start + args.seconds, info.frames / info.sample_rate)
    try:
        return Region.from_times(path, start=start, end=end)
    except InvalidInput as exc:
        raise InvalidInput(f"{which.upper()} ({path}): {exc.message}", field=f"{exc.field}_{which}") from exc


def run(args: argparse.Namespace) -> int:
    from stemlink.plugin_host.cli import warnings_as_lines

    with warnings_as_lines():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import json
    import sys

    from stemlink.launcher import connect
    from stemlink.plugin_host.cli import curve_options
    from stemlink.plugin_host.region import read_region
    from stemlink.plugin_host.verify import check_result

    a, rate, _ = read_region(region_of(args, "a"))
    b, _, _ = read_region(region_of(args, "b"), rate=rate)
    if abs(a.shape[-1] - b.shape[-1]) > 1:  # one frame of resampling rounding is no difference
        print(
            f"warning: A's region is {a.shape[-1] / rate:.3f} s and B's {b.shape[-1] / rate:.3f} s: the engine zero-pads the shorter "
            f"(use --end-a/--end-b to score equal spans)",
            file=sys.stderr,
        )
    with connect(args.engine, timeout=args.timeout, exports_dir=args.exports, **curve_options(args)) as client:
        result = client.score(a, b, rate, model=args.model)
        check_result(
            result,
            source=client.address,
            task="score",
            model=args.model or result.model,
            seed=0,
            stems=(),
            channels=0,
            frames=0,
            scores=("score",),
        )
    value, windows = result.scores["score"], int(result.scores.get("windows", 0))
    if args.json:
        print(
            json.dumps(
                {"score": value, "windows": windows, "model": result.model, "model_version": result.model_version, "a": args.a, "b": args.b}
            )
        )
    else:
        print(f"COCOLA score {value:.4f} ({windows} window(s), model {result.model} {result.model_version})")
    return 0
