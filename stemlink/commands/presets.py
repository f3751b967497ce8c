"""`stemlink presets`: list the task presets (presets/*.toml), and why a broken one is broken."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("presets", help="list task presets")
    parser.add_argument("name", nargs="?", help="show one preset in full")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from stemlink.errors import PresetError
    from stemlink.paths import presets_dir
    from stemlink.plugin_host.presets import list_presets, load_preset, to_dict

    if args.name:
        print(json.dumps(to_dict(load_preset(args.name)), indent=2, default=str))
        return 0
    entries = list_presets()
    if not entries:
        print(f"no presets in {presets_dir()}")
    status = 0
    for name, preset in entries:
        if isinstance(preset, PresetError):
            print(f"{name:18s} INVALID: {preset.message}")
            status = 2
        else:
            model = preset.model or "(default model)"
            print(f"{name:18s} {preset.task:10s} {model:14s} {preset.description}")
    return status
