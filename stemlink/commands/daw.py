"""`stemlink daw ardour SESSION.ardour --regions NAME|ID...|--selected|--all --task separate|accompany`: stems of
a saved Ardour session's regions, written back into it as new tracks
(stemlink/plugin_host/daw/ardour/roundtrip.py)."""

from __future__ import annotations

import argparse

TASKS = ("separate", "accompany")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("daw", help="run stemlink on a DAW's own session file (Ardour)")
    daws = parser.add_subparsers(dest="daw", metavar="DAW", required=True)
    ardour = daws.add_parser(
        "ardour",
        help="separate or accompany regions of a saved Ardour session; the stems come back as new tracks in it",
        description="Reads the saved session (close it in Ardour first), runs each chosen region through the engine "
        "and adds one track per stem, at the region's exact position; the old session file is kept as "
        "SESSION.ardour.stemlink-backup-TIME. Inside Ardour, use the Lua script instead (see README).",
    )
    ardour.add_argument("session", help="the session file, e.g. song/song.ardour")
    pick = ardour.add_argument_group("which regions (exactly one)")
    pick.add_argument("--regions", nargs="+", default=[], metavar="NAME|ID", help="regions by name or id")
    pick.add_argument("--selected", action="store_true", help="the regions selected in Ardour when the session was last saved there")
    pick.add_argument("--all", action="store_true", dest="every", help="every audio region on every track")
    ardour.add_argument("--list", action="store_true", help="list the session's audio regions and exit")
    ardour.add_argument("--task", choices=TASKS, default="separate", help="default: separate")
    ardour.add_argument("--stems", help="only these stems, comma-separated (default: all the model's / all not in the context)")
    ardour.add_argument("--context-stems", help="accompany: the stems the regions hold, comma-separated (e.g. bass,drums)")
    ardour.add_argument(
        "--stems-only",
        metavar="DIR",
        help="write the stems to DIR and print a manifest (POSITION, LENGTH, TRACK, FILE per line) instead of editing "
        "the session: what the Lua script inside Ardour uses",
    )
    from stemlink.plugin_host.cli import add_engine_args, add_preset_args

    add_preset_args(ardour)
    add_engine_args(ardour)
    ardour.set_defaults(run=run_ardour)


def run_ardour(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from stemlink.plugin_host.cli import preset_from_args, split_names
    from stemlink.plugin_host.daw.ardour.roundtrip import choose_regions, roundtrip
    from stemlink.plugin_host.daw.ardour.session import read_session

    session = read_session(args.session)
    if args.list:
        for r in session.regions:
            state = f"unreadable: {r.problem}" if r.problem else f"{r.channels} ch"
            print(f"{r.id}\t{r.name}\t{r.track}\tposition {r.position}\tlength {r.length}\tstart {r.start}\t{state}")
        return 0
    from stemlink.plugin_host.cli import warnings_as_lines

    with warnings_as_lines():
        regions = choose_regions(session, names=args.regions, selected=args.selected, every=args.every)
    extra = {"context_stems": split_names(args.context_stems)} if args.task == "accompany" else {}
    preset = preset_from_args(args, args.task, stems=split_names(args.stems), **extra)
    out = Path(args.stems_only) if args.stems_only else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    result = roundtrip(args, session, regions, preset, stems_only=out)
    if out is not None:
        for t in result.stems:
            print(f"{t.position}\t{t.frames}\t{t.name}\t{t.file}")
        return 0
    print(f"{session.path}: {len(result.track_names)} new track(s): {', '.join(result.track_names)}", file=sys.stderr)
    print(f"backup of the previous session file: {result.backup}", file=sys.stderr)
    return 0
