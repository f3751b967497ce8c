"""`stemlink models [--engine ADDR]`: list what an engine serves (embedded when no address);
`stemlink models add FILE --family F` / `stemlink models remove NAME`: your own separators.

`add` verifies the file (loads it, one forward pass, output shape), pins its absolute path and
sha256 in the user manifest ($STEMLINK_USER_MODELS, else $XDG_CONFIG_HOME/stemlink/models.json,
else ~/.config/stemlink/models.json) and leaves the file where it is; nothing is downloaded
(`stemlink/engine/user_models.py`). Nothing here imports torch until `add` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# `stemlink.engine.user_models.USER_FAMILIES` (not imported here: it loads torch; a test keeps them equal)
USER_FAMILIES = ("demucs", "mdx-onnx", "roformer")
MDX_OPTIONS = ("stem", "n_fft", "dim_f", "dim_t", "hop")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models an engine serves; add or remove your own separators")
    parser.add_argument(
        "--engine",
        default=None,
        help="engine address, e.g. tcp://127.0.0.1:5555 (default: $STEMLINK_ENGINE, else a local `stemlink serve` that answers, else an embedded engine)",
    )
    parser.add_argument("--exports", default=None, help="exports folder for the embedded engine (default: STEMLINK_EXPORTS or ./exports)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the engine")
    from stemlink.plugin_host.cli import add_curve_args

    add_curve_args(parser)
    parser.set_defaults(run=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="verify a separator file of yours and serve it (the file stays where it is)",
        description="Verify FILE (load, one forward pass on noise, output shape), pin its absolute path and sha256 in the user "
        "manifest and serve it next to the shipped models (tasks separate, extract, remove). Nothing is copied or downloaded.",
    )
    add.add_argument("file", help="the model file: a demucs checkpoint (.th), an MDX-Net ONNX graph, or RoFormer weights (.ckpt/.pt)")
    add.add_argument(
        "--family",
        required=True,
        choices=USER_FAMILIES,
        help="demucs: demucs package save format (HTDemucs/HDemucs/Demucs); mdx-onnx: UVR MDX-Net graph; roformer: bs-roformer package",
    )
    add.add_argument("--name", default=None, help="model name (default: from the file name); shipped names are refused")
    add.add_argument("--replace", action="store_true", help="re-pin an existing user model of this name (e.g. after the file changed)")
    mdx = add.add_argument_group("mdx-onnx options (UVR MDX-Net: spectrum in, one stem's spectrum out; served: STEM and other)")
    mdx.add_argument("--stem", default=None, help="the stem the graph outputs, e.g. vocals (required for mdx-onnx)")
    mdx.add_argument("--n-fft", type=int, default=None, help="STFT size (default 6144, UVR's common MDX-Net setting)")
    mdx.add_argument("--dim-f", type=int, default=None, help="frequency bins kept (default: the graph's input shape, else 2048)")
    mdx.add_argument("--dim-t", type=int, default=None, help="STFT frames per window (default: the graph's input shape, else 256)")
    mdx.add_argument("--hop", type=int, default=None, help="STFT hop (default 1024)")
    roformer = add.add_argument_group("roformer options")
    roformer.add_argument(
        "--config", default=None, help="the model's YAML/JSON config (constructor arguments; MSST-style model/audio/training)"
    )
    add.set_defaults(run=run_add)
    remove = actions.add_parser("remove", help="stop serving a user model (its file is left alone)")
    remove.add_argument("name", help="the user model's name")
    remove.set_defaults(run=run_remove)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def run(args: argparse.Namespace) -> int:
    from stemlink.launcher import connect
    from stemlink.plugin_host.cli import curve_options

    with connect(args.engine, timeout=args.timeout, exports_dir=args.exports, **curve_options(args)) as client:
        caps = client.hello()
        where = "embedded engine" if client.engine is not None else client.address
    print(f"stemlink engine {caps.engine_version} (protocol {caps.protocol_version}) at {where}: {len(caps.models)} model(s)")
    if not caps.models:
        return 0
    rows = [["NAME", "VERSION", "FAMILY", "TASKS", "FORMATS", "RATE", "STEMS", "WINDOW", "DELAY", "SHA256"]]
    for m in caps.models:
        rows.append(
            [
                m.name,
                m.version,
                m.family,
                ",".join(m.tasks),
                ",".join(m.formats),
                str(m.sample_rate),
                ",".join(m.stems) or "-",
                str(m.window),
                str(m.delay),
                m.sha256[:12],
            ]
        )
    print(format_table(rows))
    defaults = ", ".join(f"{task}={name}" for task, name in sorted(caps.defaults.items()))
    if defaults:
        print(f"defaults: {defaults}")
    return 0


def family_options(args: argparse.Namespace) -> object:
    """The family's options dataclass from the `add` flags; flags of another family are refused."""
    from stemlink.errors import InvalidInput

    given = [name for name in MDX_OPTIONS if getattr(args, name) is not None]
    if args.family != "mdx-onnx" and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InvalidInput(f"{flags}: for --family mdx-onnx only (got --family {args.family})", field=given[0])
    if args.family != "roformer" and args.config is not None:
        raise InvalidInput(f"--config: for --family roformer only (got --family {args.family})", field="config")
    if args.family == "mdx-onnx":
        from stemlink.engine.models.mdx_onnx import MdxOptions

        return MdxOptions(**{name: getattr(args, name) for name in given})
    if args.family == "roformer":
        from stemlink.engine.models.roformer import RoformerOptions

        return RoformerOptions(config=None if args.config is None else Path(args.config))
    from stemlink.engine.models.demucs import DemucsOptions

    return DemucsOptions()


def run_add(args: argparse.Namespace) -> int:
    from stemlink.engine.user_models import add_user_model

    added = add_user_model(args.file, args.family, family_options(args), name=args.name, replace=args.replace, exports_dir=args.exports)
    spec = added.spec
    print(
        f"added user model {spec.name!r} ({spec.family}, {spec.format}): {spec.sample_rate} Hz, stems {','.join(spec.stems)}, "
        f"window {spec.window}, channels {spec.config.get('channels', 1)}"
    )
    print(f"file {spec.file} (sha256 {spec.sha256[:12]}..., not copied) pinned in {added.manifest}")
    print("an engine already running serves it after a restart (stemlink serve --stop)")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from stemlink.engine.user_models import remove_user_model

    manifest = remove_user_model(args.name)
    print(f"removed user model {args.name!r} from {manifest} (its file is left alone)")
    return 0
