"""`stemlink score A B [--model M] [--engine ADDR]`: COCOLA coherence of two audio files.

A is the context (e.g. the rest of the band), B the candidate part; the score is the mean
bilinear similarity a^T W b over the model's windows (higher = fits better; not symmetric).
Files may have any format, rate, channel count and length: B is resampled to A's rate when
they differ, both are downmixed to mono by the engine, and the shorter is zero-padded.
`--start/--seconds` select the same region of both files.
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help="COCOLA coherence score of two audio files (context, candidate)")
    parser.add_argument("a", help="context audio file (WAV, FLAC, AIFF, MP3, ...)")
    parser.add_argument("b", help="candidate audio file")
    parser.add_argument("--model", default=None, help="score model (default: the engine's default for 'score')")
    parser.add_argument("--start", type=float, default=0.0, help="region start in both files, seconds (default 0)")
    parser.add_argument("--seconds", type=float, default=None, help="region length, seconds (default: whole files)")
    parser.add_argument("--engine", metavar="ADDR", default=None, help="engine address (tcp://HOST:PORT, ipc://PATH); default: embedded engine")
    parser.add_argument("--exports", default=None, help="exports folder for the embedded engine (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the engine to accept the request")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run)


def read_region(path: str, start: float, seconds: float | None, rate: int | None = None):
    """(C, N) float32 and its sample rate; resampled to `rate` when given."""
    from stemlink.engine.audio_io import open_audio
    from stemlink.errors import InvalidInput

    with open_audio(path) as f:
        if rate is not None and int(f.samplerate) != rate:
            f = f.resampled_to(float(rate))
        sr = int(round(f.samplerate))
        first = int(round(start * sr))
        if start < 0 or first >= f.frames:
            raise InvalidInput(f"--start {start} s is outside {path} ({f.frames / sr:.3f} s)", field="start")
        f.seek(first)
        count = f.frames - first if seconds is None else min(f.frames - first, int(round(seconds * sr)))
        if count <= 0:
            raise InvalidInput(f"--seconds must be > 0, got {seconds}", field="seconds")
        return f.read(count), sr


def run(args: argparse.Namespace) -> int:
    import json

    from stemlink.bridge import Client

    a, rate = read_region(args.a, args.start, args.seconds)
    b, _ = read_region(args.b, args.start, args.seconds, rate=rate)
    with Client(args.engine, timeout=args.timeout, exports_dir=args.exports) as client:
        result = client.score(a, b, rate, model=args.model)
    value, windows = result.scores["score"], int(result.scores.get("windows", 0))
    if args.json:
        print(json.dumps({"score": value, "windows": windows, "model": result.model,
                          "model_version": result.model_version, "a": args.a, "b": args.b}))
    else:
        print(f"COCOLA score {value:.4f} ({windows} window(s), model {result.model} {result.model_version})")
    return 0
