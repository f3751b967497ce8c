"""`stemlink eval separation|speed|accompaniment`: measure a served model (MSDM).

    stemlink eval separation --model msdm-small --data data/corpus --split test --windows 40 \
        --steps 10,25,50 --corrector 0,1 [--likelihood dirac] [--format onnx] [--oracle] [--out FILE]
    stemlink eval speed --model msdm-small --seconds 10 --rate 44100 --channels 2 \
        --steps 10,25,50 --corrector 0,1 --formats onnx,torchscript [--out FILE]
    stemlink eval accompaniment --model msdm-small --data data/corpus --windows 12 --best-of 1,4
    stemlink eval curve RUN [RUN...] --data data/mma-ood44 --windows 80 --out FILE --plot PNG
    stemlink eval refine --separator bandsplit-small --prior msdm-small --data data/mma-ood44 --steps 1,2,4
    stemlink eval codec --codec stft-codec [--checkpoint RUN/last.pt] --data data/mma-ood44 --split train,valid,test

Every run prints one line per configuration and appends JSON records to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial


def _no_progress(done: int, total: int) -> None:
    """A progress callback that reports nothing."""


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="measure a model: separation quality, speed, accompaniment silence")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="msdm-small")
    common.add_argument("--exports", default=None, help="exports folder (default: the project's exports/)")
    common.add_argument("--threads", type=int, default=2)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--steps", default="10,25,50", help="comma-separated sampler step counts")
    common.add_argument("--corrector", default="0,1", help="comma-separated corrector step counts R")
    common.add_argument("--s-churn", default=None, help="comma-separated S_churn values (default: the model's)")
    common.add_argument("--out", default=None, help="append JSON records to this file")

    sep = kinds.add_parser("separation", parents=[common], help="SI-SDRi with the MSDM protocol on a corpus split")
    sep.add_argument("--data", default="data/corpus")
    sep.add_argument("--split", default="test", help="split, or several joined by commas (train,valid,test: a whole held-out corpus)")
    sep.add_argument("--windows", type=int, default=40, help="number of protocol windows (spread over the split)")
    sep.add_argument("--likelihood", default="dirac", help="comma-separated: dirac, dirac_sym, gaussian")
    sep.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    sep.add_argument("--batch", type=int, default=8)
    sep.add_argument("--oracle", action="store_true", help="also score the oracle IRM on the same windows")
    sep.set_defaults(run=_separation)

    spd = kinds.add_parser("speed", parents=[common], help="real-time factor of separate through the engine path")
    spd.add_argument("--seconds", type=float, default=10.0)
    spd.add_argument("--rate", type=int, default=44100)
    spd.add_argument("--channels", type=int, default=2)
    spd.add_argument("--formats", default="onnx,torchscript")
    spd.set_defaults(run=_speed)

    acc = kinds.add_parser("accompaniment", parents=[common], help="share of non-silent generated stems")
    acc.add_argument("--data", default="data/corpus")
    acc.add_argument("--split", default="test")
    acc.add_argument("--windows", type=int, default=12)
    acc.add_argument("--best-of", default="1,4")
    acc.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    acc.set_defaults(run=_accompaniment)

    cur = kinds.add_parser("curve", help="learning curves: SI-SDRi of every snapshot of training runs vs CPU minutes")
    cur.add_argument("runs", nargs="+", help="run folders (with curve/step-*.pt snapshots)")
    cur.add_argument("--data", required=True, help="held-out corpus folder")
    cur.add_argument("--split", default="train,valid,test")
    cur.add_argument("--windows", type=int, default=80, help="number of protocol windows (spread over the split)")
    cur.add_argument("--threads", type=int, default=1)
    cur.add_argument("--out", default=None, help="append JSON records to this file")
    cur.add_argument("--plot", default=None, help="write the curves as a PNG here")
    cur.set_defaults(run=_curve)

    ref = kinds.add_parser("refine", help="separator + warm-started MSDM refinement (Dirac, a few steps) vs the separator alone")
    ref.add_argument("--separator", default="bandsplit-small")
    ref.add_argument("--prior", default="msdm-small")
    ref.add_argument("--exports", default=None)
    ref.add_argument("--data", required=True)
    ref.add_argument("--split", default="train,valid,test")
    ref.add_argument("--windows", type=int, default=40)
    ref.add_argument("--steps", default="1,2,4")
    ref.add_argument("--sigma", default="0.05,0.2", help="comma-separated starting noise levels")
    ref.add_argument("--threads", type=int, default=1)
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--out", default=None)
    ref.set_defaults(run=_refine)

    cod = kinds.add_parser("codec", help="audio codec reconstruction vs identity and mel + Griffin-Lim on held-out stereo audio")
    cod.add_argument("--codec", action="append", default=[], help="exported codec name (NAME.encoder/NAME.decoder); repeatable")
    cod.add_argument("--checkpoint", action="append", default=[], help="codec training checkpoint or snapshot; repeatable")
    cod.add_argument("--exports", default=None)
    cod.add_argument("--format", default=None, choices=("onnx", "torchscript"))
    cod.add_argument("--data", required=True)
    cod.add_argument("--split", default="test")
    cod.add_argument("--windows", type=int, default=20, help="windows (each gives its mix and one stem)")
    cod.add_argument("--seconds", type=float, default=5.0)
    cod.add_argument("--no-baselines", action="store_true", help="skip identity and mel + Griffin-Lim")
    cod.add_argument("--threads", type=int, default=1)
    cod.add_argument("--out", default=None)
    cod.set_defaults(run=_codec)

    clp = kinds.add_parser("clap", help="CLAP pair retrieval (text -> stem R@1/R@10, zero-shot class accuracy) on unseen tracks")
    clp.add_argument("--clap", action="append", default=[], help="exported pair name (NAME.audio/NAME.text); repeatable")
    clp.add_argument("--checkpoint", action="append", default=[], help="clap training checkpoint or snapshot; repeatable")
    clp.add_argument("--exports", default=None)
    clp.add_argument("--format", default=None, choices=("onnx", "torchscript"))
    clp.add_argument("--data", required=True)
    clp.add_argument("--split", default="test")
    clp.add_argument("--tracks", type=int, default=None, help="at most this many tracks of the split")
    clp.add_argument("--bridge", default=None, help="also measure this CLAP bridge entry (class prompts -> audio embeddings)")
    clp.add_argument("--threads", type=int, default=1)
    clp.add_argument("--out", default=None)
    clp.set_defaults(run=_clap)

    gms = kinds.add_parser(
        "gmsdi", help="GMSDI separators: SI-SDRi over methods and embedding scales (table 6.4), extraction of other classes"
    )
    gms.add_argument("--model", default="gmsdi-small")
    gms.add_argument("--exports", default=None)
    gms.add_argument("--format", default=None, choices=("onnx", "torchscript"))
    gms.add_argument("--data", required=True)
    gms.add_argument("--split", default="valid")
    gms.add_argument("--windows", type=int, default=24)
    gms.add_argument("--methods", default="separator,extractor,ensemble")
    gms.add_argument("--scales", default="1,3,7.5")
    gms.add_argument("--likelihoods", default="dirac_sym", help="the Dirac constraints to compare: dirac_sym, dirac or both")
    gms.add_argument("--steps", type=int, default=50)
    gms.add_argument("--extract", default="", help="also extract these other classes, e.g. organ,strings,brass (at the first scale)")
    gms.add_argument(
        "--generate", type=int, default=0, help="also generate the four stems together N times, with and without negative prompts"
    )
    gms.add_argument("--clap", default="clap-small", help="the CLAP pair (NAME.audio, NAME.text) that classifies generated stems")
    gms.add_argument("--threads", type=int, default=1)
    gms.add_argument("--out", default=None)
    gms.set_defaults(run=_gmsdi)

    rif = kinds.add_parser(
        "riff", help="accompaniment quality of riff models (paper Table 1 with our encoders) per condition and step count"
    )
    rif.add_argument("--model", action="append", required=True, help="riff model name; repeatable")
    rif.add_argument("--steps", default="", help="comma-separated step counts (default: each model's default)")
    rif.add_argument("--conditions", default="ctx,text+ctx,reference+ctx,text,reference,none", help="comma-separated conditions")
    rif.add_argument("--clap", default="clap-small", help="the CLAP pair that embeds (its NAME.audio / NAME.text)")
    rif.add_argument("--scorer", default="cocola-small", help="the coherence score model")
    rif.add_argument("--exports", default=None)
    rif.add_argument("--data", required=True)
    rif.add_argument("--split", default="test")
    rif.add_argument("--items", type=int, default=40, help="at most this many items (one per track)")
    rif.add_argument(
        "--targets", default="", help="target classes only, e.g. bass,drums,guitar,piano (to compare with msdm-small on the same items)"
    )
    rif.add_argument("--seconds", type=float, default=10.0)
    rif.add_argument("--params", default="{}", help='JSON object of further sampler params for riff models, e.g. {"embedding_guidance": 3}')
    rif.add_argument("--threads", type=int, default=2)
    rif.add_argument("--out", default=None)
    rif.set_defaults(run=_riff)


def _registry(args: argparse.Namespace):
    import torch

    from stemlink.engine.registry import ModelRegistry

    torch.set_num_threads(args.threads)
    return ModelRegistry(args.exports, device="cpu", threads=args.threads)


def _emit(args: argparse.Namespace, record: dict) -> None:
    print(json.dumps(record), flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _churns(args: argparse.Namespace) -> list[dict]:
    return [{}] if args.s_churn is None else [{"s_churn": float(v)} for v in args.s_churn.split(",") if v.strip()]


def _separation(args: argparse.Namespace) -> int:
    import torch

    from stemlink.lab.eval.separation import SeparationScores, evaluate, oracle_irm, protocol_windows

    model = _registry(args).get(args.model, args.format)
    windows = protocol_windows(args.data, args.split, model.stems, model.sample_rate, limit=args.windows, multiple_of=model.hop)
    base = dict(
        kind="separation",
        model=args.model,
        format=args.format,
        split=args.split,
        windows=len(windows),
        window_samples=int(windows[0].shape[-1]),
        sample_rate=model.sample_rate,
    )
    if args.oracle:
        scores = SeparationScores(tuple(model.stems))
        refs = torch.stack(windows)
        scores.add(refs, oracle_irm(refs))
        _emit(args, {**base, "system": "oracle_irm", **scores.summary()})
    for likelihood, churn in [(lk, c) for lk in args.likelihood.split(",") for c in _churns(args)]:
        for steps in _ints(args.steps):
            for r in _ints(args.corrector):
                params = model.parse_params("separate", {"steps": steps, "corrector_steps": r, "likelihood": likelihood, **churn})
                g = torch.Generator().manual_seed(args.seed)
                scores = evaluate(
                    partial(model.separate, params=params, generator=g, callback=_no_progress),
                    windows,
                    model.stems,
                    batch=args.batch,
                    sample_rate=model.sample_rate,
                )
                _emit(
                    args,
                    {
                        **base,
                        "system": "msdm",
                        "likelihood": likelihood,
                        "steps": steps,
                        "corrector_steps": r,
                        "s_churn": params.s_churn,
                        **scores.summary(),
                    },
                )
    return 0


def _speed(args: argparse.Namespace) -> int:
    from stemlink.lab.eval.speed import region, task_rtf

    registry = _registry(args)
    audio = region(args.seconds, args.rate, args.channels, seed=args.seed)
    for fmt in [f for f in args.formats.split(",") if f]:
        model = registry.get(args.model, fmt)
        warm = {"steps": 2, "corrector_steps": 0} if model.samples else {}
        task_rtf(model, "separate", audio[:, : args.rate], args.rate, warm)  # warm-up
        sweep = [(s, r) for s in _ints(args.steps) for r in _ints(args.corrector)] if model.samples else [(None, None)]
        for steps, r in sweep:
            params = {"steps": steps, "corrector_steps": r} if model.samples else {}
            rtf, result = task_rtf(model, "separate", audio, args.rate, params, seed=args.seed)
            _emit(
                args,
                dict(
                    kind="speed",
                    model=args.model,
                    format=fmt,
                    steps=steps,
                    corrector_steps=r,
                    seconds=args.seconds,
                    rate=args.rate,
                    channels=args.channels,
                    threads=args.threads,
                    rtf=round(rtf, 3),
                    time=time.strftime("%H:%M:%S"),
                ),
            )
    return 0


def _accompaniment(args: argparse.Namespace) -> int:
    from stemlink.lab.eval.accompaniment import nonsilent_share
    from stemlink.lab.eval.separation import protocol_windows

    model = _registry(args).get(args.model, args.format)
    windows = protocol_windows(
        args.data,
        args.split,
        model.stems,
        model.sample_rate,
        seconds=model.window / model.sample_rate,
        hop_seconds=model.window / model.sample_rate,
        limit=args.windows,
        multiple_of=model.hop,
    )
    for k in _ints(args.best_of):
        for steps in _ints(args.steps):
            for churn in _churns(args):
                params = model.parse_params("accompany", {"steps": steps, "best_of": k, "corrector_steps": 0, **churn})
                share = nonsilent_share(model, windows, params, seed=args.seed)
                _emit(
                    args,
                    dict(
                        kind="accompaniment",
                        model=args.model,
                        format=args.format,
                        best_of=k,
                        steps=steps,
                        s_churn=params.s_churn,
                        windows=len(windows),
                        **share,
                    ),
                )
    return 0


def _curve(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from stemlink.errors import InvalidInput
    from stemlink.lab.eval.curve import curve_records, plot_curves, snapshot_model
    from stemlink.lab.eval.separation import protocol_windows

    torch.set_num_threads(args.threads)
    first = next((p for run in args.runs for p in sorted(Path(run, "curve").glob("step-*.pt"))), None)
    if first is None:
        raise InvalidInput(f"no snapshots (curve/step-*.pt) in {args.runs}", field="runs")
    model, _ = snapshot_model(first)
    windows = protocol_windows(args.data, args.split, model.stems, model.sample_rate, limit=args.windows)
    records = curve_records(args.runs, windows, model.stems, model.sample_rate)
    for record in records:
        _emit(args, {"kind": "curve", "data": args.data, "split": args.split, "windows": len(windows), **record})
    if args.plot:
        plot_curves(records, args.plot, f"separators on {args.data} ({len(windows)} windows, 44.1 kHz full band)")
    return 0


def _refine(args: argparse.Namespace) -> int:
    import torch

    from stemlink.lab.eval.refine import refine
    from stemlink.lab.eval.separation import SeparationScores, protocol_windows

    registry = _registry(args)
    separator, prior = registry.get(args.separator), registry.get(args.prior)
    windows = protocol_windows(args.data, args.split, separator.stems, separator.sample_rate, limit=args.windows)
    refs = torch.stack(windows).float()
    mix = refs.sum(1)
    rate = separator.sample_rate
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        stems = torch.cat(
            [separator.separate(mix[i : i + 4], params=None, generator=g, callback=_no_progress) for i in range(0, len(mix), 4)]
        )
    base = dict(
        kind="refine", separator=args.separator, prior=args.prior, data=args.data, split=args.split, windows=len(windows), rate=rate
    )
    scores = SeparationScores(tuple(separator.stems))
    scores.add(refs, stems)
    _emit(args, {**base, "steps": 0, "sigma_start": None, **scores.summary()})
    for sigma in [float(v) for v in args.sigma.split(",") if v.strip()]:
        for steps in _ints(args.steps):
            g = torch.Generator().manual_seed(args.seed)
            t0 = time.perf_counter()
            out = torch.cat(
                [
                    refine(prior, stems[i : i + 4], mix[i : i + 4], rate, steps=steps, sigma_start=sigma, generator=g)
                    for i in range(0, len(mix), 4)
                ]
            )
            seconds = time.perf_counter() - t0
            scores = SeparationScores(tuple(separator.stems))
            scores.add(refs, out)
            record = {**base, "steps": steps, "sigma_start": sigma, **scores.summary()}
            record["refine_rtf"] = round(seconds / (len(windows) * refs.shape[-1] / rate), 3)
            record["max_sum_error"] = float((out.sum(1) - mix).abs().max())
            _emit(args, record)
    return 0


def _codec(args: argparse.Namespace) -> int:
    import torch

    from stemlink.engine.models.codec import CodecModel
    from stemlink.errors import InvalidInput
    from stemlink.lab.eval.codec import Codec, codec_items, identity_round_trip, mel_griffin_lim, score_codec
    from stemlink.lab.export.codec import load_codec

    torch.set_num_threads(args.threads)
    rate = 44100
    systems: list[tuple[str, Codec, float]] = []
    if not args.no_baselines:
        systems += [("identity", identity_round_trip(), 2 * rate), ("mel-griffinlim", mel_griffin_lim(rate), 2 * 128 * rate / 512)]
    if args.codec:
        registry = _registry(args)
    for name in args.codec:
        enc, dec = registry.get(f"{name}.encoder", args.format), registry.get(f"{name}.decoder", args.format)
        if not isinstance(enc, CodecModel) or not isinstance(dec, CodecModel):
            raise InvalidInput(f"{name!r} is not a codec in the exports manifest", field="codec")
        systems.append((name, partial(_round_trip, enc, dec), enc.latent_dim * enc.geometry.latent_rate))
    for path in args.checkpoint:
        net, config, state = load_codec(path)
        systems.append((f"{path}@{state['step']}", net, config.latent_dim * config.latent_rate))
    if len(systems) == 0:
        raise InvalidInput("nothing to measure: pass --codec NAME and/or --checkpoint FILE", field="codec")
    items = codec_items(args.data, args.split, seconds=args.seconds, limit=args.windows, sample_rate=rate)
    for system, codec, values in systems:
        scores = score_codec(system, codec, items, rate, values)
        _emit(args, {"kind": "codec", "data": args.data, "split": args.split, "seconds": args.seconds, **scores.record()})
    return 0


def _clap(args: argparse.Namespace) -> int:
    import torch

    from stemlink.engine.models.clap import ClapEncoderModel
    from stemlink.errors import InvalidInput
    from stemlink.lab.eval.clap import clap_items, score_bridge, score_clap
    from stemlink.lab.export.clap import load_clap
    from stemlink.lab.nn.text_tokenizer import encode, load_tokenizer_json

    torch.set_num_threads(args.threads)
    systems = []
    if args.clap:
        registry = _registry(args)
    for name in args.clap:
        audio, text = registry.get(f"{name}.audio", args.format), registry.get(f"{name}.text", args.format)
        if not isinstance(audio, ClapEncoderModel) or not isinstance(text, ClapEncoderModel):
            raise InvalidInput(f"{name!r} is not a CLAP pair in the exports manifest", field="clap")
        systems.append((name, audio.window, audio.sample_rate, audio.embed_audio, text.embed_text))
    for path in args.checkpoint:
        pair, config, state = load_clap(path)
        tok = load_tokenizer_json(config.tokenizer)

        def tokens_to_text(texts, pair=pair, tok=tok, n=config.max_tokens):
            return pair.embed_text(*encode(tok, list(texts), n))

        systems.append((f"{path}@{state['step']}", config.window, config.sample_rate, pair.embed_audio, tokens_to_text))
    if not systems:
        raise InvalidInput("nothing to measure: pass --clap NAME and/or --checkpoint FILE", field="clap")
    for system, window, rate, audio_fn, text_fn in systems:
        items = clap_items(args.data, args.split, window=window, sample_rate=rate, limit=args.tracks)
        scores = score_clap(audio_fn, text_fn, items)
        _emit(args, {"kind": "clap", "system": system, "data": args.data, "split": args.split, **scores})
        if args.bridge:
            bridge = _registry(args).get(args.bridge)
            gap = score_bridge(audio_fn, text_fn, bridge, items)
            _emit(args, {"kind": "clap-bridge", "system": system, "bridge": args.bridge, "data": args.data, "split": args.split, **gap})
    return 0


def _gmsdi(args: argparse.Namespace) -> int:
    from stemlink.lab.eval.gmsdi import gmsdi_extraction, gmsdi_grid
    from stemlink.lab.eval.separation import protocol_windows

    registry = _registry(args)
    model = registry.get(args.model, args.format)
    stems = ("bass", "drums", "guitar", "piano")
    windows = protocol_windows(
        args.data, args.split, stems, model.sample_rate, limit=args.windows, multiple_of=int(model.spec.config.get("hop", 1))
    )
    base = {"kind": "gmsdi", "model": args.model, "data": args.data, "split": args.split}
    scales = [float(x) for x in args.scales.split(",") if x]
    methods, likelihoods = [m for m in args.methods.split(",") if m], [x for x in args.likelihoods.split(",") if x]
    for row in gmsdi_grid(model, windows, stems, methods=methods, scales=scales, steps=args.steps, likelihoods=likelihoods):
        _emit(args, {**base, **row})
    classes = [c for c in args.extract.split(",") if c]
    if classes:
        for row in gmsdi_extraction(model, args.data, args.split, classes=classes, scale=scales[0], steps=args.steps, limit=args.windows):
            _emit(args, {**base, "kind": "gmsdi-extract", **row})
    if args.generate > 0:
        from stemlink.lab.eval.gmsdi import gmsdi_generation

        clap_audio, clap_text = registry.get(f"{args.clap}.audio"), registry.get(f"{args.clap}.text")
        for negative in (False, True):
            row = gmsdi_generation(
                model, clap_audio, clap_text, windows, stems, count=args.generate, steps=args.steps, scale=scales[0], negative=negative
            )
            _emit(args, {**base, "kind": "gmsdi-generate", "clap": args.clap, **row})
    return 0


def _riff(args: argparse.Namespace) -> int:

    import torch

    from stemlink.lab.eval.riff import riff_items, run_condition
    from stemlink.plugin_host.cli import json_object

    params = json_object(args.params, "--params")  # refused before any model loads
    torch.set_num_threads(args.threads)
    registry = _registry(args)
    clap_audio, clap_text = registry.get(f"{args.clap}.audio"), registry.get(f"{args.clap}.text")
    scorer = registry.get(args.scorer)
    rate = clap_audio.sample_rate
    targets = tuple(t for t in args.targets.split(",") if t) or None
    items = riff_items(args.data, args.split, seconds=args.seconds, sample_rate=rate, limit=args.items, targets=targets)
    for name in args.model:
        model = registry.get(name)
        steps = [int(s) for s in args.steps.split(",") if s] or [model.parse_params("accompany", {}).steps]
        extra = params
        if "context_stems" in model.conditions:  # MSDM: its own sampler defaults, context only
            steps, extra = [model.parse_params("accompany", {}).steps], {}
        conditions = [c for c in args.conditions.split(",") if c]
        if "context_stems" in model.conditions:
            conditions = ["ctx"]
        for n in steps:
            for condition in conditions:
                if any(c in condition for c in ("text", "reference")) and not set(condition.replace("+ctx", "").split("+")) <= set(
                    model.conditions
                ):
                    continue  # the model cannot take this condition
                scores = run_condition(
                    model,
                    items,
                    condition=condition,
                    params={**extra, "steps": n},
                    sample_rate=rate,
                    clap_audio=clap_audio,
                    clap_text=clap_text,
                    scorer=scorer,
                )
                record = {"kind": "riff", "model": name, "steps": n, "params": extra, "data": args.data, "split": args.split, **scores}
                record["rtf"] = round(scores["seconds_per_item"] / args.seconds, 3)
                _emit(args, record)
    return 0


def _round_trip(encoder, decoder, audio):
    return decoder.decode(encoder.encode(audio), audio.shape[-1])
