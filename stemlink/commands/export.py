"""`stemlink export msdm|cocola|bandsplit|codec|clap|bridge|gmsdi|riff --checkpoint RUN/last.pt [--name N] [--out exports]`:
export a trained checkpoint to ONNX and/or TorchScript, check parity against torch, register it in
the exports manifest. What is exported: MSDM its EMA denoiser; COCOLA encoder + front end + W;
band-split its EMA mask network; codec its EMA encoder and decoder;
clap its audio and text encoders; bridge its EMA denoiser; riff its EMA latent DiT denoiser."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a trained model checkpoint into exports/ (ONNX + TorchScript)")
    families = parser.add_subparsers(dest="family", metavar="FAMILY")
    sub = families.add_parser("msdm", help="export an MSDM checkpoint")
    sub.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/msdm-cpu/last.pt)")
    sub.add_argument("--name", default="msdm-small")
    sub.add_argument("--version", default="1")
    sub.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    sub.add_argument("--formats", default="onnx,torchscript")
    sub.add_argument(
        "--defaults",
        default="{}",
        help='JSON object of default sampler params for the manifest (optionally per task: {"steps": 25, "accompany": {"s_churn": 0.0}})',
    )
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

    bsp = families.add_parser("bandsplit", help="export a band-split separator checkpoint")
    bsp.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/bandsplit-cpu/last.pt or a curve snapshot)")
    bsp.add_argument("--name", default="bandsplit-small")
    bsp.add_argument("--version", default="1")
    bsp.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    bsp.add_argument("--formats", default="onnx,torchscript")
    bsp.add_argument("--card", default=None, help="model card file name inside the exports folder")
    bsp.add_argument("--default-for", default="", help="comma-separated tasks this model becomes the default for")
    bsp.set_defaults(run=_run_bandsplit)

    cod = families.add_parser("codec", help="export an STFT codec checkpoint (NAME.encoder and NAME.decoder)")
    cod.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/codec-cpu/last.pt or a curve snapshot)")
    cod.add_argument("--name", default="stft-codec")
    cod.add_argument("--version", default="1")
    cod.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    cod.add_argument("--formats", default="torchscript", help="torchscript (default, exports/ size budget), onnx, or both")
    cod.add_argument("--card", default=None, help="model card file name inside the exports folder")
    cod.add_argument("--parts", default="encoder,decoder", help="decoder: replace only the decoder (a decoder-only continuation)")
    cod.set_defaults(run=_run_codec)

    clp = families.add_parser("clap", help="export a CLAP pair checkpoint (NAME.audio and NAME.text, tokenizer in the text entry)")
    clp.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/clap-cpu/last.pt or a curve snapshot)")
    clp.add_argument("--name", default="clap-small")
    clp.add_argument("--version", default="1")
    clp.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    clp.add_argument("--formats", default="torchscript", help="torchscript (default), onnx, or both")
    clp.add_argument("--card", default=None, help="model card file name inside the exports folder")
    clp.set_defaults(run=_run_clap)

    brg = families.add_parser("bridge", help="export a CLAP bridge checkpoint (CLAP_beta: text embedding -> audio embedding)")
    brg.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/bridge-cpu/last.pt)")
    brg.add_argument("--name", default="clap-bridge")
    brg.add_argument("--version", default="1")
    brg.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    brg.add_argument("--formats", default="torchscript", help="torchscript (default), onnx, or both")
    brg.add_argument("--card", default=None, help="model card file name inside the exports folder")
    brg.set_defaults(run=_run_bridge)

    gms = families.add_parser("gmsdi", help="export a GMSDI checkpoint (tag-conditioned mixture denoiser)")
    gms.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/gmsdi-cpu/last.pt)")
    gms.add_argument("--name", default="gmsdi-small")
    gms.add_argument("--version", default="1")
    gms.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    gms.add_argument("--formats", default="onnx,torchscript")
    gms.add_argument("--card", default=None, help="model card file name inside the exports folder")
    gms.set_defaults(run=_run_gmsdi)

    rif = families.add_parser("riff", help="export a latent DiT checkpoint (family riff; its codec must be in the same exports folder)")
    rif.add_argument("--checkpoint", required=True, help="training checkpoint (e.g. runs/dit-cpu/last.pt or a curve snapshot)")
    rif.add_argument("--name", default="riff-small")
    rif.add_argument("--version", default="1")
    rif.add_argument("--frames", type=int, default=215, help="latent frames per window (215 = 10 s at 21.5 Hz)")
    rif.add_argument("--out", default=None, help="exports folder (default: the project's exports/)")
    rif.add_argument("--formats", default="onnx,torchscript")
    rif.add_argument("--card", default=None, help="model card file name inside the exports folder")
    rif.add_argument("--default-for", default="", help="comma-separated tasks this model becomes the default for")
    rif.add_argument("--bridge", default=None, help="CLAP bridge entry for text prompts (default: the one made for the DiT's CLAP pair)")
    rif.set_defaults(run=_run_riff)


def _run(args: argparse.Namespace) -> int:
    from stemlink.engine.models.msdm import MSDM_TASKS, parse_msdm_params, task_defaults
    from stemlink.lab.export.msdm import export_msdm
    from stemlink.paths import exports_dir

    defaults = json.loads(args.defaults)
    for task in MSDM_TASKS:  # refuse invalid defaults before exporting
        parse_msdm_params(task_defaults(defaults, task), model=args.name)
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

    formats = tuple(f for f in args.formats.split(",") if f)
    _print_result(
        export_gmsdi(args.checkpoint, args.out or exports_dir(), name=args.name, version=args.version, formats=formats, card=args.card)
    )
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
