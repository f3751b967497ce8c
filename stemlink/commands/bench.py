"""`stemlink bench [--quick] [--out bench/]`: separation, coherence, speed, bridge, scale and the
Ardour round trip (daw) in one run.

Writes OUT/results.json, OUT/*.png and BENCHMARKS.md (next to OUT unless --markdown). Separation and
coherence read a corpus's test split: `--data DIR` (must exist), else the checkout's data/corpus44,
else a small corpus the bench renders once (seconds, with progress) into
$STEMLINK_BENCH_CACHE or the checkout's data/ (bench-corpus-<key>) and reuses afterwards.
Separation is also scored on unseen arrangements (`--ood DIR`, else data/mma-ood44, else mma
grooves rendered the same way), at 44.1 kHz full band (`--separation-rate`).
`--quick` takes a few minutes; the full run prints its expected and actual duration.
"""

from __future__ import annotations

import argparse

SECTIONS = ("scale", "separation", "coherence", "speed", "bridge", "daw")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure everything side by side; write results.json, BENCHMARKS.md, plots")
    parser.add_argument("--quick", action="store_true", help="fewer windows, steps and runs (a few minutes)")
    parser.add_argument("--out", default="bench", help="folder for results.json and the PNG plots (default: ./bench)")
    parser.add_argument("--markdown", default=None, help="where to write BENCHMARKS.md (default: next to --out)")
    parser.add_argument("--exports", default=None, help="exports folder (default: $STEMLINK_EXPORTS or the project's exports/)")
    parser.add_argument(
        "--data",
        default=None,
        help="corpus root with a test split (default: the project's data/corpus, else a small bench corpus "
        "rendered once into $STEMLINK_BENCH_CACHE or data/)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--ood",
        default=None,
        help="unseen-arrangement corpus for separation (default: the project's data/mma-ood44, else mma grooves rendered once)",
    )
    parser.add_argument("--separation-rate", type=int, default=None, help="host rate separation is scored at (default 44100: full band)")
    parser.add_argument("--only", default=None, help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads (default 2: this machine's cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--separation-windows", type=int, default=None, help="protocol windows for separation")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps for every diffusion measurement")
    parser.add_argument("--scale-seconds", default=None, help="comma-separated region lengths for the scale section")
    parser.add_argument("--speed-seconds", type=float, default=None, help="region length for the speed section (default 10; --quick 4)")
    parser.add_argument(
        "--eager",
        action="append",
        default=[],
        metavar="MODEL=CHECKPOINT",
        help="also time torch eager for MODEL from its training checkpoint (repeatable), e.g. msdm-small=runs/msdm-cpu/last.pt",
    )
    parser.add_argument("--bridge-runs", type=int, default=None, help="round trips per transport (default 50; --quick 10)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from stemlink.apps.bench.suite import BenchConfig, run_bench
    from stemlink.errors import InvalidInput

    sections = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else SECTIONS
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise InvalidInput(f"--only: unknown section(s) {bad}; allowed: {', '.join(SECTIONS)}", field="only")
    eager = []
    for item in args.eager:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidInput(f"--eager must be MODEL=CHECKPOINT, got {item!r}", field="eager")
        eager.append((name, path))
    argv = ["stemlink", "bench", *(["--quick"] if args.quick else []), "--out", args.out]
    for item in args.eager:
        argv += ["--eager", item]
    for flag, value in (
        ("--markdown", args.markdown),
        ("--exports", args.exports),
        ("--data", args.data),
        ("--ood", args.ood),
        ("--separation-rate", args.separation_rate),
        ("--only", args.only),
        ("--steps", args.steps),
        ("--separation-windows", args.separation_windows),
        ("--scale-seconds", args.scale_seconds),
        ("--speed-seconds", args.speed_seconds),
        ("--bridge-runs", args.bridge_runs),
    ):
        argv += [flag, str(value)] if value is not None else []
    steps = args.steps
    config = BenchConfig.for_run(
        args.quick,
        out=Path(args.out),
        markdown=Path(args.markdown) if args.markdown else None,
        exports=Path(args.exports) if args.exports else None,
        data=Path(args.data) if args.data else None,
        split=args.split,
        ood=Path(args.ood) if args.ood else None,
        separation_rate=args.separation_rate,
        threads=args.threads,
        seed=args.seed,
        sections=sections,
        command=shlex.join(argv),
        separation_windows=args.separation_windows,
        separation_steps=steps,
        speed_seconds=args.speed_seconds,
        bridge_runs=args.bridge_runs,
        eager=tuple(eager) or None,
        accompaniment_steps=steps,
        speed_steps=steps,
        scale_seconds=tuple(float(s) for s in args.scale_seconds.split(",")) if args.scale_seconds else None,
    )
    run_bench(config, log=lambda line: print(line, flush=True))
    return 0
