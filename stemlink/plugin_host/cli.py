"""Shared pieces of the host's CLI commands (separate, accompany, generate, run, play).

Options common to region commands, `--param KEY=VALUE` and JSON-object option parsing, a stderr progress bar, and
`run_jobs`: connect one `Client` (`stemlink.launcher.connect`: `--engine ADDR`, else discovery,
else an embedded engine), run the jobs, print the written files and any engine warning (one
line each), optionally audition them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import tomllib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stemlink.errors import InvalidInput, MissingDependency


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        metavar="ADDR",
        help="engine address (tcp://HOST:PORT, ipc://PATH); default: $STEMLINK_ENGINE, else a local `stemlink serve` that answers, else an embedded engine",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the engine to accept a request")
    add_curve_args(parser)


def add_curve_args(parser: argparse.ArgumentParser) -> None:
    """`--curve DIR --client NAME`: keys for an engine started with `stemlink serve --curve` (stemlink/bridge/auth.py)."""
    parser.add_argument(
        "--curve", metavar="DIR", help="CURVE keys folder for an engine started with `serve --curve` (default: $STEMLINK_CURVE)"
    )
    parser.add_argument(
        "--client",
        metavar="NAME",
        dest="client_name",
        help="this client's key pair in DIR, NAME.key_secret (default: $STEMLINK_CLIENT, else the only one there)",
    )


def curve_options(args: argparse.Namespace) -> dict[str, Any]:
    """`Client(...)` / `connect(...)` keyword arguments from `add_curve_args`' options."""
    return {"curve": getattr(args, "curve", None), "client_name": getattr(args, "client_name", None)}


def add_preset_args(parser: argparse.ArgumentParser) -> None:
    """Preset, model, seed, params and sample format: what `preset_from_args` reads."""
    parser.add_argument("--preset", help="task preset name (presets/NAME.toml) or path")
    parser.add_argument("--model", help="model name (default: the preset's, else the engine's default for the task)")
    parser.add_argument("--seed", type=int, help="random seed (same request + seed -> same audio)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="model/sampler parameter, e.g. steps=30 (repeatable)"
    )
    parser.add_argument("--format", choices=("float32", "pcm24"), help="WAV sample format (default float32)")


def add_job_args(parser: argparse.ArgumentParser) -> None:
    """Preset, model, seed, params, output and playback options (every job command)."""
    add_preset_args(parser)
    parser.add_argument("--out", default="stems", help="output folder (default: ./stems)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    parser.add_argument("--play", action="store_true", help="audition the result through the default audio device")
    add_dawproject_arg(parser)
    add_engine_args(parser)


def add_dawproject_arg(parser: argparse.ArgumentParser) -> None:
    """`--dawproject OUT.dawproject`: also write the stems as a DAWproject (stemlink/plugin_host/dawproject.py)."""
    parser.add_argument(
        "--dawproject",
        metavar="OUT.dawproject",
        help="also write the stems, at their timeline positions, as a DAWproject file (Bitwig Studio, Studio One); "
        "an existing file is refused unless --overwrite",
    )


def add_condition_args(parser: argparse.ArgumentParser) -> None:
    """--text / --reference: what steers accompany and generate, for models that take them."""
    from stemlink.contract import MAX_REFERENCE_SECONDS, MAX_TEXT, MIN_REFERENCE_SECONDS

    parser.add_argument("--text", help=f'a description of the part, e.g. "warm electric piano, chords" (at most {MAX_TEXT} characters)')
    parser.add_argument(
        "--reference", help=f"a style reference audio file ({MIN_REFERENCE_SECONDS:g}-{MAX_REFERENCE_SECONDS:g} s, any rate and format)"
    )


def add_region_args(parser: argparse.ArgumentParser) -> None:
    """FILE plus the region in seconds or samples, and its timeline position."""
    parser.add_argument("file", help="input audio file (WAV, FLAC, AIFF, MP3, any rate and channel count)")
    parser.add_argument("--start", type=float, help="region start in the file, seconds (default 0)")
    parser.add_argument("--end", type=float, help="region end in the file, seconds (default: end of file)")
    parser.add_argument("--start-sample", type=int, help="region start in the file, samples")
    parser.add_argument("--end-sample", type=int, help="region end in the file, samples")
    parser.add_argument("--timeline", type=float, help="region position on the DAW timeline, seconds (default: = start)")
    parser.add_argument("--timeline-sample", type=int, help="region position on the timeline, samples at --session-rate")
    parser.add_argument("--session-rate", type=int, help="DAW session sample rate (default: the file's rate)")
    parser.add_argument("--channels", help="file channels to use, e.g. 0,1 (default: all)")
    parser.add_argument("--name", help="region name for output files (default: start sample)")
    parser.add_argument("--track", help="track name for output files (default: the file name)")


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """["steps=30", "likelihood=gaussian"] -> {"steps": 30, "likelihood": "gaussian"} (TOML scalars)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param must be KEY=VALUE, got {item!r}", field="param")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word: a string
        params[key.strip()] = value
    return params


def json_object(text: str, option: str) -> dict[str, Any]:
    """The value of a JSON-object option (e.g. `--defaults`, `--params`), or an InvalidInput naming it."""
    field = option.lstrip("-")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option} is not JSON: {exc}", field=field) from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} must be a JSON object, got {text!r}", field=field)
    return value


def region_from_args(args: argparse.Namespace):
    from stemlink.plugin_host.region import Region

    channels = None
    if args.channels:
        try:
            channels = tuple(int(c) for c in args.channels.split(","))
        except ValueError as exc:
            raise InvalidInput(f"--channels must be comma-separated indices, got {args.channels!r}", field="channels") from exc
    return Region.from_times(
        Path(args.file),
        start=args.start,
        end=args.end,
        start_sample=args.start_sample,
        end_sample=args.end_sample,
        timeline=args.timeline,
        timeline_sample=args.timeline_sample,
        session_rate=args.session_rate,
        channels=channels,
        name=args.name,
        track=args.track,
    )


def preset_from_args(args: argparse.Namespace, task: str, **overrides: Any):
    """The preset (named or the task's default) with CLI overrides; its task must be `task`."""
    from stemlink.plugin_host.presets import default_preset, load_preset

    preset = load_preset(args.preset) if args.preset else default_preset(task)
    if preset.task != task:
        raise InvalidInput(f"preset {preset.name!r} is for task {preset.task!r}, not {task!r}", field="preset")
    params = {**preset.params, **parse_params(args.param)} if args.param else None
    return preset.with_overrides(model=args.model, seed=args.seed, format=args.format, params=params, **overrides)


class ProgressBar:
    """`label [######----] 60%` on stderr, redrawn at most every 0.1 s; when the stream is not
    a terminal (a log file, CI), one plain `label 10%` line per tenth instead."""

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.stream, self.width, self.last = label, stream or sys.stderr, width, 0.0
        self.drawn = False
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.decile = -1

    def __call__(self, done: int, total: int, stage: str = "") -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        if not self.interactive:
            decile = int(frac * 10)
            if decile > self.decile:
                self.decile = decile
                self.stream.write(f"{self.label} {decile * 10:3d}%\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        fill = int(round(frac * self.width))
        self.drawn = True
        self.stream.write(f"\r{self.label} [{'#' * fill}{'-' * (self.width - fill)}] {frac * 100:3.0f}%")
        self.stream.flush()

    def close(self) -> None:
        if not self.drawn:
            return
        self.stream.write("\n")
        self.stream.flush()


@contextlib.contextmanager
def warnings_as_lines(stream=None) -> Iterator[None]:
    """Show the host's warnings (e.g. a truncated input file) as one `warning: ...` line each."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"warning: {message}", file=stream or sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


def run_jobs(args: argparse.Namespace, jobs: Sequence[Any]) -> int:
    """Run jobs with one client; print written paths; `--dawproject` and `--play` use the result."""
    asked = getattr(args, "overwrite", None)  # None (`run` without --overwrite): the session's setting
    overwrite = all(job.overwrite for job in jobs) if asked is None else bool(asked)
    dawproject = getattr(args, "dawproject", None)
    if dawproject:
        from stemlink.plugin_host.dawproject import check_dawproject_path

        dawproject = check_dawproject_path(dawproject, overwrite=overwrite)  # a fast "no" before an engine starts
    plans, outputs = execute_jobs(args, jobs)
    if dawproject:
        from stemlink.plugin_host.dawproject import write_dawproject

        print(write_dawproject(dawproject, stem_clips(plans, outputs), overwrite=overwrite))
    if getattr(args, "play", False) and outputs:
        _play(outputs[-1])
    return 0


def execute_jobs(args: argparse.Namespace, jobs: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Plan every job, then run them with one client (`--engine`, else discovery, else embedded),
    a progress bar each, printing the written paths: (plans, outputs).

    Every job is planned first (names, regions, output folders and their free space), so a
    session never fails halfway on something that could be known before the first job.
    """
    from stemlink.launcher import connect
    from stemlink.plugin_host.jobs import plan_jobs, run_job
    from stemlink.plugin_host.outputs import check_out_dir

    for out_dir in dict.fromkeys(job.out_dir for job in jobs):
        check_out_dir(out_dir)  # a fast "no" before an engine starts; the space is checked once the plan is known
    outputs = []
    with warnings_as_lines(), connect(args.engine, timeout=args.timeout, **curve_options(args)) as client:
        plans = plan_jobs(client.hello(), jobs)
        for job, plan in zip(jobs, plans, strict=True):
            label = f"{job.preset.task} {job.track or (job.region.path.name if job.region else '')}".strip()
            bar = ProgressBar(label)
            try:
                outputs.append(run_job(client, job, progress=bar, plan=plan))
            finally:
                bar.close()
            for path in outputs[-1].stems.values():
                print(path)
            for key, value in outputs[-1].scores.items():
                print(f"{key}: {value:.4f}", file=sys.stderr)
            for warning in outputs[-1].warnings:
                print(f"warning: {warning}", file=sys.stderr)
    return plans, outputs


def stem_clips(plans: Sequence[Any], outputs: Sequence[Any]) -> list[Any]:
    """The written stems of planned jobs as DAWproject clips: one track per (track, stem)."""
    from stemlink.plugin_host.dawproject import StemClip

    clips = []
    for plan, output in zip(plans, outputs, strict=True):
        position, position_rate = plan.position
        for stem, path in output.stems.items():
            channels, frames = output.audio[stem].shape
            clips.append(StemClip(f"{plan.track} - {stem}", path, output.sample_rate, channels, frames, position, position_rate))
    return clips


def _play(output: Any) -> None:
    import numpy as np

    from stemlink.plugin_host.audition import play

    mix = np.sum(list(output.audio.values()), axis=0)
    try:
        with warnings_as_lines():
            play(mix, output.sample_rate)
    except MissingDependency as exc:
        print(f"warning: --play skipped: {exc.message}", file=sys.stderr)


def split_names(text: str | None) -> tuple[str, ...] | None:
    """ "bass, drums" -> ("bass", "drums"); None stays None (keep the preset's value)."""
    if text is None:
        return None
    return tuple(s.strip() for s in text.split(",") if s.strip())
