"""`stemlink data ...`: build and inspect stem corpora.

stemlink data render --out DIR --tracks N --seconds S --sr RATE --seed K
                     [--source procedural|chorales|mma|mixed] [--synth lib|cli] [--jobs 2]
stemlink data info ROOT [--layout auto|stemlink|slakh|musdb|moisesdb|cocochorales]
stemlink data plot TRACK_DIR --out PNG [--seconds S]
"""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="render a multi-stem corpus, inspect datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    render = sub.add_parser("render", help="render a Slakh-like multi-stem corpus with FluidSynth")
    render.add_argument("--out", required=True, help="output folder")
    render.add_argument("--tracks", type=int, required=True, help="number of tracks")
    render.add_argument("--seconds", type=float, default=30.0, help="length of each track (s)")
    render.add_argument("--sr", type=int, default=16000, help="sample rate (Hz)")
    render.add_argument("--seed", type=int, default=0, help="seed: fixes the music and the splits")
    render.add_argument("--source", default="procedural", help="procedural | chorales | mma | mixed")
    render.add_argument(
        "--synth",
        default="lib",
        choices=("lib", "cli"),
        help="lib: libfluidsynth in-process (soundfont loaded once per worker, fast); cli: the fluidsynth program",
    )
    render.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes")
    render.set_defaults(run=_render)

    info = sub.add_parser("info", help="summarize a corpus (rendered or a real dataset)")
    info.add_argument("root")
    info.add_argument("--layout", default="auto")
    info.set_defaults(run=_info)
    plot = sub.add_parser("plot", help="spectrograms of a rendered track's mix and stems (PNG)")
    plot.add_argument("track", help="a rendered track folder (with metadata.json)")
    plot.add_argument("--out", required=True, help="PNG path")
    plot.add_argument("--seconds", type=float, default=None, help="only the first S seconds")
    plot.set_defaults(run=_plot)
    parser.set_defaults(run=lambda args: (parser.print_help(), 1)[1])


def _render(args: argparse.Namespace) -> int:
    import time

    from stemlink.lab.data.render import RenderConfig, render_corpus

    cfg = RenderConfig(
        out=args.out,
        tracks=args.tracks,
        seconds=args.seconds,
        sample_rate=args.sr,
        seed=args.seed,
        source=args.source,
        jobs=args.jobs,
        synth=args.synth,
    )
    t0 = time.perf_counter()
    index = render_corpus(cfg, progress=lambda line: print(line, flush=True))
    wall = time.perf_counter() - t0
    audio = cfg.tracks * cfg.seconds
    print(
        f"[render] done: {cfg.tracks} tracks, {audio / 3600:.3f} h of mix, splits {index['splits']}, "
        f"{wall:.1f} s wall, {audio / wall:.1f}x real time -> {args.out}",
        flush=True,
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from stemlink.lab.data import open_corpus

    corpus = open_corpus(args.root, layout=args.layout)
    print(f"{args.root}: layout {corpus.layout}")
    for split in corpus.splits():
        tracks = corpus.tracks(split)
        classes: dict[str, int] = {}
        for t in tracks:
            for c in t.stems:
                classes[c] = classes.get(c, 0) + 1
        print(f"  {split:6s} {len(tracks):5d} tracks  classes {dict(sorted(classes.items()))}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from stemlink.lab.data.spectrogram import plot_track

    print(plot_track(args.track, args.out, args.seconds))
    return 0
