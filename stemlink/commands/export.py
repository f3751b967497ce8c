"""`stemlink export msdm|cocola|bandsplit|codec|clap|bridge|gmsdi|riff --checkpoint RUN/last.pt [--name N] [--out exports]`:
export a trained checkpoint to ONNX and/or TorchScript, check parity against torch, register it in
the exports manifest. What is exported: MSDM its EMA denoiser; COCOLA encoder + front end + W;
band-split its EMA mask network; codec its EMA encoder and decoder;
clap its audio and text encoders; bridge its EMA denoiser; riff its EMA latent DiT denoiser."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a trained model checkpoint into exports/ (ONNX + TorchScript)")
    families = parser.add_subparsers(dest="family", metavar="FAMILY")
    sub = families.add_parser("msdm", help="export an MSDM checkpoint")
    sub.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/msdm-cpu/last.pt)")
    sub.add_argument("--name", default="msdm-small")
    sub.add_argument("--version", default="1")
    sub.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    sub.add_argument("--formats", default="onnx,torchscript")
    _add_defaults(sub)
    sub.add_argument("--card", default=None, help="model card file name inside the exports folder")
    sub.add_argument("--default-for", default="", help="comma-separated tasks this model becomes the default for")
    sub.set_defaults(run=_run)

    coc = families.add_parser("cocola", help="export a COCOLA checkpoint")
    coc.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/cocola-cpu/best.pt)")
    coc.add_argument("--name", default="cocola-small")
    coc.add_argument("--version", default="0.1.0")
    coc.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    coc.add_argument("--card", default=None, help="model card file name inside the exports folder")
    coc.set_defaults(run=_run_cocola)

    bsp = _family(
        families,
        "bandsplit",
        "export a band-split separator checkpoint",
        name="bandsplit-small",
        runs="bandsplit-cpu/last.pt or a curve snapshot",
    )
    bsp.add_argument("--default-for", default="", help=DEFAULT_FOR)
    bsp.set_defaults(run=_run_bandsplit)

    cod = _family(
        families, "codec", "export an STFT codec checkpoint (NAME.encoder and NAME.decoder)", name="stft-codec",
        runs="codec-cpu/last.pt or a curve snapshot", formats="torchscript", formats_help="torchscript (default, exports/ size budget), onnx, or both",
    )  # fmt: skip
    cod.add_argument("--parts", default="encoder,decoder", help="decoder: replace only the decoder (a decoder-only continuation)")
    cod.set_defaults(run=_run_codec)

    clp = _family(
        families, "clap", "export a CLAP pair checkpoint (NAME.audio and NAME.text, tokenizer in the text entry)", name="clap-small",
        runs="clap-cpu/last.pt or a curve snapshot", formats="torchscript", formats_help="torchscript (default), onnx, or both",
    )  # fmt: skip
    clp.set_defaults(run=_run_clap)

    brg = _family(
        families, "bridge", "export a CLAP bridge checkpoint (CLAP_beta: text embedding -> audio embedding)", name="clap-bridge",
        runs="bridge-cpu/last.pt", formats="torchscript", formats_help="torchscript (default), onnx, or both",
    )  # fmt: skip
    brg.set_defaults(run=_run_bridge)

    gms = _family(
        families, "gmsdi", "export a GMSDI checkpoint (tag-conditioned mixture denoiser)", name="gmsdi-small", runs="gmsdi-cpu/last.pt"
    )
    _add_defaults(gms)
    gms.add_argument("--default-for", default="", help=DEFAULT_FOR)
    gms.set_defaults(run=_run_gmsdi)

    rif = _family(
        families, "riff", "export a latent DiT checkpoint (family riff; its codec must be in the same exports folder)", name="riff-small",
        runs="dit-cpu/last.pt or a curve snapshot",
    )  # fmt: skip
    rif.add_argument("--frames", type=int, default=215, help="latent frames per window (215 = 10 s at 21.5 Hz)")
    rif.add_argument("--default-for", default="", help=DEFAULT_FOR)
    rif.add_argument("--bridge", default=None, help="CLAP bridge entry for text prompts (default: the one made for the DiT's CLAP pair)")
    rif.set_defaults(run=_run_riff)


DEFAULT_FOR = "comma-separated tasks this model becomes the default for"


def _add_defaults(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--defaults",
        default="{}",
        help='JSON object of default sampler params for the manifest (optionally per task: {"steps": 25, "accompany": {"s_churn": 0.0}})',
    )


def _family(
    families: argparse._SubParsersAction,
    family: str,
    help: str,
    *,
    name: str,
    runs: str,
    formats: str = "onnx,torchscript",
    formats_help: str | None = None,
) -> argparse.ArgumentParser:
    """A family's export parser with the options every family shares: --checkpoint --name --version --out --formats --card."""
    sub = families.add_parser(family, help=help)
    sub.add_argument("--checkpoint", required=True, help=f"training checkpoint (e.g. runs/{runs})")
    sub.add_argument("--name", default=name)
    sub.add_argument("--version", default="1")
    sub.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    sub.add_argument("--formats", default=formats, **({"help": formats_help} if formats_help else {}))
    sub.add_argument("--card", default=None, help="model card file name inside the exports folder")
    return sub


def _run(args: argparse.Namespace) -> int:
    from stemlink.engine.models.msdm import MSDM_TASKS, parse_msdm_params
    from stemlink.engine.params import task_defaults
    from stemlink.lab.export.msdm import export_msdm
    from stemlink.paths import exports_dir
    from stemlink.plugin_host.cli import json_object

    defaults = json_object(args.defaults, "--defaults")
    for task in MSDM_TASKS:  # refuse invalid defaults before exporting
        parse_msdm_params(task_defaults(defaults, task, MSDM_TASKS), model=args.name)
    result = export_msdm(
        args.checkpoint,
        args.out or exports_dir(),
        name=args.name,
        version=args.version,
        formats=tuple(f for f in args.formats.split(",") if f),
        defaults=defaults,
        card=args.card,
        default_for=tuple(t for t in args.default_for.split(",") if t),
    )
    for spec in result.specs:
        print(f"{spec.name} {spec.format} {spec.file} sha256 {spec.sha256[:12]} parity max|diff| {result.parity[spec.format]:.2e}")
    print(f"checkpoint step {result.step}, wall {result.wall_time / 60:.1f} min")
    return 0


def _run_cocola(args: argparse.Namespace) -> int:
    from stemlink.lab.export.cocola import export_cocola_checkpoint
    from stemlink.paths import exports_dir

    result = export_cocola_checkpoint(args.checkpoint, args.out or exports_dir(), name=args.name, version=args.version, card=args.card)
    for spec in result.specs:
        print(
            f"{spec.name} {spec.format} {spec.file} sha256 {spec.sha256[:12]} "
            f"{result.sizes_mb[spec.format]:.1f} MB parity {result.parity[spec.format]:.2e}"
        )
    return 0


def _run_bandsplit(args: argparse.Namespace) -> int:
    from stemlink.lab.export.bandsplit import export_bandsplit
    from stemlink.paths import exports_dir

    result = export_bandsplit(
        args.checkpoint,
        args.out or exports_dir(),
        name=args.name,
        version=args.version,
        formats=tuple(f for f in args.formats.split(",") if f),
        card=args.card,
        default_for=tuple(t for t in args.default_for.split(",") if t),
    )
    _print_result(result)
    return 0


def _run_codec(args: argparse.Namespace) -> int:
    from stemlink.lab.export.codec import export_codec
    from stemlink.paths import exports_dir

    results = export_codec(
        args.checkpoint,
        args.out or exports_dir(),
        name=args.name,
        version=args.version,
        formats=tuple(f for f in args.formats.split(",") if f),
        card=args.card,
        parts=tuple(p for p in args.parts.split(",") if p),
    )
    for result in results.values():
        _print_result(result)
    return 0


def _run_clap(args: argparse.Namespace) -> int:
    from stemlink.lab.export.clap import export_clap
    from stemlink.paths import exports_dir

    results = export_clap(
        args.checkpoint,
        args.out or exports_dir(),
        name=args.name,
        version=args.version,
        formats=tuple(f for f in args.formats.split(",") if f),
        card=args.card,
    )
    for result in results.values():
        _print_result(result)
    return 0


def _run_bridge(args: argparse.Namespace) -> int:
    from stemlink.lab.export.bridge import export_bridge
    from stemlink.paths import exports_dir

    formats = tuple(f for f in args.formats.split(",") if f)
    _print_result(
        export_bridge(args.checkpoint, args.out or exports_dir(), name=args.name, version=args.version, formats=formats, card=args.card)
    )
    return 0


def _run_gmsdi(args: argparse.Namespace) -> int:
    from stemlink.lab.export.gmsdi import export_gmsdi
    from stemlink.paths import exports_dir
    from stemlink.plugin_host.cli import json_object

    formats = tuple(f for f in args.formats.split(",") if f)
    defaults = json_object(args.defaults, "--defaults")
    result = export_gmsdi(
        args.checkpoint, args.out or exports_dir(), name=args.name, version=args.version, formats=formats, card=args.card,
        defaults=defaults, default_for=tuple(t for t in args.default_for.split(",") if t),
    )  # fmt: skip
    _print_result(result)
    return 0


def _run_riff(args: argparse.Namespace) -> int:
    from stemlink.lab.export.riff import export_riff
    from stemlink.paths import exports_dir

    result = export_riff(
        args.checkpoint,
        args.out or exports_dir(),
        name=args.name,
        version=args.version,
        frames=args.frames,
        formats=tuple(f for f in args.formats.split(",") if f),
        card=args.card,
        default_for=tuple(t for t in args.default_for.split(",") if t),
        bridge=args.bridge,
    )
    _print_result(result)
    return 0


def _print_result(result) -> None:
    for spec in result.specs:
        print(
            f"{spec.name} {spec.format} {spec.file} sha256 {spec.sha256[:12]} "
            f"{result.sizes_mb[spec.format]:.1f} MB parity max|diff| {result.parity[spec.format]:.2e}"
        )
