"""`stemlink demo`: the project's main job, end to end on the shipped demo song.

With an embedded engine and the shipped models (`exports/manifest.json`):

1. separate a region of the demo mix into stems (preset `separate-bandsplit`), spotted at its
   timeline sample, and score every stem against the song's ground truth (SI-SDR, SI-SDRi);
2. accompany another region: the context is the sum of the song's other stems there
   (`inputs/context.wav`, BWF-stamped at the region), the target stem is generated with N
   candidates ranked by COCOLA (preset `accompany-msdm`);
3. score with COCOLA the generated part, the true part and a part from another time of the
   song against the context;
4. plot every input and output (waveform + spectrogram) and write `report.html` with the
   scores, timings and the exact CLI commands that reproduce each step.

Only orchestration lives here: jobs run through `plugin_host.jobs.run_job` (BWF + sidecars,
atomic writes), scores through the bridge `Client`, SI-SDR from `engine.eval.separation`.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemlink.apps.report import write_html
from stemlink.errors import InvalidInput, OutputExists, UnknownModel
from stemlink.paths import PROJECT_ROOT

DEMO_SONG = PROJECT_ROOT / "exports" / "demo-song"
Log = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo does. Regions are (start, end) seconds in the song; the song sits at timeline 0."""

    out: Path = Path("demo-out")
    exports: Path | None = None
    song: Path = DEMO_SONG
    overwrite: bool = False
    separate_region: tuple[float, float] = (2.0, 9.0)
    accompany_region: tuple[float, float] = (9.0, 15.0)
    reference_start: float = 0.4  # "other time" part: target stem from here, same length (off-beat, other bars)
    context_stems: tuple[str, ...] = ("bass", "drums", "guitar")
    target: str = "piano"
    candidates: int = 4
    separate_preset: str = "separate-bandsplit"
    accompany_preset: str = "accompany-msdm"
    params: tuple[tuple[str, Any], ...] = ()  # sampler params overriding those of the presets that have them (e.g. (("steps", 10),))
    track: str = "demo"
    command: str = "stemlink demo"  # how this run was started (shown in the report)

    @classmethod
    def quick(cls, **kwargs: Any) -> DemoConfig:
        """Shorter regions, fewer steps and candidates: a smoke run in well under a minute."""
        # few steps need the few-step sampler (dirac_sym + 1 corrector step, msdm-small's own defaults):
        # the presets' 40-step plain Dirac sampler diverges at 10 steps
        few = (("steps", 10), ("corrector_steps", 1), ("likelihood", "dirac_sym"))
        base = dict(separate_region=(2.0, 6.0), accompany_region=(9.0, 13.0), candidates=2, params=few)
        return cls(**{**base, **kwargs})


@dataclass
class DemoResult:
    report: Path
    stems: dict[str, dict[str, Path]] = field(default_factory=dict)  # step -> stem -> WAV
    sisdr: dict[str, dict[str, float]] = field(default_factory=dict)  # stem -> {sisdr, mixture, sisdri}
    cocola: dict[str, float] = field(default_factory=dict)  # kind -> score
    candidates: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    figures: list[Path] = field(default_factory=list)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExists(f"demo output {out} exists and is not a folder; pass another --out", field="out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExists(f"demo output folder {out} already has files; pass --out NEW_DIR, or --overwrite to replace them", field="out")


def _song(song: Path, stems: tuple[str, ...]) -> dict[str, Any]:
    meta_path = song / "metadata.json"
    if not meta_path.is_file():
        raise InvalidInput(f"demo song folder {song} has no metadata.json (see exports/demo-song/README.md)", field="song")
    meta = json.loads(meta_path.read_text())
    for name in ("mix", *stems):
        if not (song / f"{name}.flac").is_file():
            raise InvalidInput(f"demo song {song} lacks {name}.flac", field="song")
    return meta


def _read(path: Path, start: int, frames: int) -> np.ndarray:
    from stemlink.plugin_host.region import Region, read_region

    return read_region(Region(path, start, frames))[0]


def _write_bwf(path: Path, audio: np.ndarray, rate: int, time_reference: int, overwrite: bool) -> Path:
    from stemlink.plugin_host.bwf import BwfWriter
    from stemlink.plugin_host.outputs import AtomicFile

    out = AtomicFile(path, overwrite=overwrite)
    try:
        writer = BwfWriter(out.fh, rate, audio.shape[0], time_reference=time_reference, description="stemlink demo input")
        writer.write(audio)
        writer.close()
        out.finish()
    except BaseException:
        out.abort()
        raise
    return out.commit()


def _si_sdr(truth: np.ndarray, estimate: np.ndarray) -> float:
    """Mean over channels of SI-SDR (dB) of (C, N) arrays."""
    import torch

    from stemlink.lab.eval.separation import si_sdr

    return float(si_sdr(torch.from_numpy(np.ascontiguousarray(truth)), torch.from_numpy(np.ascontiguousarray(estimate))).mean())


def _params(preset: Any, params: tuple[tuple[str, Any], ...]) -> dict[str, Any] | None:
    """Sampler overrides for a preset that has sampler params (a mask separator takes none)."""
    return {**preset.params, **dict(params)} if params and preset.params else None


def _step_args(preset: Any, params: tuple[tuple[str, Any], ...]) -> list[str]:
    """The same overrides as CLI arguments."""
    return [arg for k, v in params for arg in ("--param", f"{k}={json.dumps(v)}")] if preset.params else []


def _engine_seconds(sidecar: Path) -> float:
    return float(json.loads(sidecar.read_text()).get("info", {}).get("seconds", float("nan")))


def run_demo(config: DemoConfig, *, log: Log = print, progress_stream: Any = None) -> DemoResult:
    """Run the demo (see module docstring); returns what it wrote. `log` gets progress lines."""
    from stemlink.launcher import connect
    from stemlink.plugin_host.cli import ProgressBar
    from stemlink.plugin_host.jobs import Job, run_job
    from stemlink.plugin_host.presets import load_preset
    from stemlink.plugin_host.region import Region, file_info

    out, song = Path(config.out), Path(config.song)
    _check_out(out, config.overwrite)
    stems_all = (*config.context_stems, config.target)
    meta = _song(song, stems_all)
    info = file_info(song / "mix.flac")
    rate = info.sample_rate
    s0, s1 = (int(round(t * rate)) for t in config.separate_region)
    a0, a1 = (int(round(t * rate)) for t in config.accompany_region)
    ref0 = int(round(config.reference_start * rate))
    for label, lo, hi in (("separate_region", s0, s1), ("accompany_region", a0, a1), ("reference_start", ref0, ref0 + a1 - a0)):
        if not 0 <= lo < hi <= info.frames:
            raise InvalidInput(f"{label} {lo / rate:g}-{hi / rate:g} s is outside the demo song (0-{info.frames / rate:g} s)", field=label)
    sep_preset = load_preset(config.separate_preset)
    acc_preset = load_preset(config.accompany_preset)
    sep_preset = sep_preset.with_overrides(params=_params(sep_preset, config.params))
    acc_preset = acc_preset.with_overrides(
        params=_params(acc_preset, config.params), context_stems=config.context_stems, stems=(config.target,), candidates=config.candidates
    )
    result = DemoResult(report=out / "report.html")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def run_step(step: str, preset: Any, region: Any) -> Any:
        """One host job into out/STEP/ with a progress bar; records its stems and timings."""
        t0 = time.perf_counter()
        progress = ProgressBar(step, stream=progress_stream or sys.stderr)
        try:
            job = Job(preset=preset, out_dir=out / step, region=region, track=config.track, overwrite=config.overwrite)
            output = run_job(client, job, progress=progress)
        finally:
            progress.close()
        result.timings[step] = time.perf_counter() - t0
        result.timings[f"{step} (engine)"] = _engine_seconds(next(iter(output.sidecars.values())))
        result.stems[step] = dict(output.stems)
        return output

    log(
        f"stemlink demo: song {song} ({meta.get('style')}, {meta.get('tempo')} bpm, {meta.get('key')}, {rate} Hz, "
        f"{info.channels} ch, {info.frames / rate:.1f} s) -> {out}"
    )
    t0 = time.perf_counter()
    with connect(None, exports_dir=config.exports, discover_engine=False, timeout=120) as client:
        caps = client.hello()
        result.timings["engine start"] = time.perf_counter() - t0
        models = {m.name: m for m in caps.models}
        log(f"[0/4] embedded engine {caps.engine_version}: models {', '.join(models) or '(none)'}")
        for preset in (sep_preset, acc_preset):
            if preset.model not in models:
                where = config.exports or "the project's exports/ (or $STEMLINK_EXPORTS)"
                raise UnknownModel(
                    f"the demo needs model {preset.model!r} (preset {preset.name!r}), but {where} serves "
                    f"{', '.join(models) or 'no models'}; pass --exports DIR with a manifest.json that has it",
                    field="model",
                )
        scorer = next((m.name for m in caps.models if "score" in m.tasks), None)
        if scorer is None:
            log("      warning: no model serves 'score' (COCOLA): candidates are not ranked and COCOLA scores are skipped")

        # 1. separate
        log(
            f"[1/4] separate {config.separate_region[0]:g}-{config.separate_region[1]:g} s of the mix "
            f"({sep_preset.model}" + (f", {sep_preset.params['steps']} steps)" if "steps" in sep_preset.params else ")")
        )
        sep = run_step("separate", sep_preset, Region(song / "mix.flac", s0, s1 - s0))
        mix = _read(song / "mix.flac", s0, s1 - s0)
        truth = {s: _read(song / f"{s}.flac", s0, s1 - s0) for s in sep.stems if (song / f"{s}.flac").is_file()}
        for s, ref in truth.items():
            est, base = _si_sdr(ref, sep.audio[s]), _si_sdr(ref, mix)
            result.sisdr[s] = {"sisdr": est, "mixture": base, "sisdri": est - base}
            log(f"      {s:7s} SI-SDR {est:6.2f} dB (mixture {base:6.2f} dB, SI-SDRi {est - base:+6.2f} dB)")

        # 2. accompany
        context = np.sum([_read(song / f"{s}.flac", a0, a1 - a0) for s in config.context_stems], axis=0, dtype=np.float32)
        assert isinstance(context, np.ndarray)  # a sum over axis 0 of (channels, frames) regions
        context_path = _write_bwf(out / "inputs" / "context.wav", context, rate, a0, config.overwrite)
        log(
            f"[2/4] accompany {config.accompany_region[0]:g}-{config.accompany_region[1]:g} s: context "
            f"{'+'.join(config.context_stems)} -> {config.target} ({acc_preset.model}, {acc_preset.params.get('steps')} steps, "
            f"{config.candidates} candidates ranked by COCOLA)"
        )
        acc = run_step("accompany", acc_preset, Region(context_path, timeline=a0))
        result.candidates = {k: float(v) for k, v in acc.scores.items()}

        # 3. score
        log(f"[3/4] COCOLA scores against the context ({scorer or 'skipped: no score model'})")
        t0 = time.perf_counter()
        true_part = _read(song / f"{config.target}.flac", a0, a1 - a0)
        other_part = _read(song / f"{config.target}.flac", ref0, a1 - a0)
        refs_dir = out / "inputs"
        true_path = _write_bwf(refs_dir / f"true_{config.target}.wav", true_part, rate, a0, config.overwrite)
        other_path = _write_bwf(refs_dir / f"other_time_{config.target}.wav", other_part, rate, a0, config.overwrite)
        parts = {
            f"generated {config.target}": acc.audio[config.target],
            f"true {config.target}": true_part,
            f"true {config.target} from {config.reference_start:g} s (other time)": other_part,
        }
        for kind, part in parts.items() if scorer else ():
            score = client.score(context, np.ascontiguousarray(part, dtype=np.float32), rate, model=scorer)
            result.cocola[kind] = float(score.scores["score"])
            log(f"      {kind:40s} {result.cocola[kind]:8.4f}")
        result.timings["score"] = time.perf_counter() - t0

    # 4. report
    log("[4/4] report: plots and report.html")
    t0 = time.perf_counter()
    signals = {
        "separate": [
            Signal(
                f"input: mix {config.separate_region[0]:g}-{config.separate_region[1]:g} s",
                mix,
                song / "mix.flac",
                "the region sent to the engine",
            )
        ]
        + [
            sig
            for s in sep.stems
            for sig in (
                *([Signal(f"ground truth {s}", truth[s], song / f"{s}.flac", "the shipped stem, same region")] if s in truth else []),
                Signal(f"separated {s}", sep.audio[s], sep.stems[s], _sisdr_caption(result.sisdr.get(s))),
            )
        ],
        "accompany": [Signal(f"input: context {'+'.join(config.context_stems)}", context, context_path, "sum of the song's stems")]
        + [Signal(f"generated {s}", acc.audio[s], acc.stems[s], "best candidate by COCOLA, after the preset's FX") for s in acc.stems]
        + [
            Signal(f"true {config.target} (reference)", true_part, true_path, "the shipped stem, same region"),
            Signal(
                f"{config.target} from another time (reference)",
                other_part,
                other_path,
                f"the shipped stem from {config.reference_start:g} s",
            ),
        ],
    }
    figures = {step: [_plot(sig, out, rate) for sig in sigs] for step, sigs in signals.items()}
    result.figures = [out / f.png for figs in figures.values() for f in figs]
    result.timings["plots"] = time.perf_counter() - t0
    result.timings["total"] = time.perf_counter() - started
    sections = _sections(result, config, figures, meta, models, rate, context_path, (true_path, other_path))
    write_html(result.report, "stemlink demo", sections)
    return result


@dataclass(frozen=True)
class Signal:
    title: str
    audio: np.ndarray  # (C, N) at the song's rate
    wav: Path  # the audio file it is (or a region of)
    caption: str = ""


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _plot(signal: Signal, out: Path, rate: int):
    """Plot one signal into out/figures/ -> report `Figure` naming the PNG and the audio file."""
    import os

    from stemlink.apps.report import Figure, plot_signal

    png = Path("figures") / f"{_slug(signal.title)}.png"
    plot_signal(signal.audio, rate, out / png, title=signal.title)
    wav = Path(os.path.relpath(signal.wav.resolve(), out.resolve()))
    caption = f"audio: {wav}" + (f" - {signal.caption}" if signal.caption else "")
    return Figure(signal.title, str(png), caption)


def _progression(meta: dict[str, Any]) -> str:
    return ", ".join(dict.fromkeys(str(s.get("progression")) for s in meta.get("sections", []))) or "?"


def _sisdr_caption(scores: dict[str, float] | None) -> str:
    if not scores:
        return "no ground truth for this stem"
    return f"SI-SDR {scores['sisdr']:.2f} dB, SI-SDRi {scores['sisdri']:+.2f} dB"


def _commands(config: DemoConfig, rate: int, result: DemoResult, context_path: Path, refs: tuple[Path, Path]) -> list[str]:
    """The CLI commands that reproduce each step (same presets, params, seeds -> same audio)."""
    q = shlex.quote
    env = f"STEMLINK_EXPORTS={q(str(config.exports))} " if config.exports else ""
    from stemlink.plugin_host.presets import load_preset

    sep_steps = _step_args(load_preset(config.separate_preset), config.params)
    acc_steps = _step_args(load_preset(config.accompany_preset), config.params)
    s0, s1 = (int(round(t * rate)) for t in config.separate_region)
    a0 = int(round(config.accompany_region[0] * rate))
    out = Path(config.out)
    separate = [
        "stemlink",
        "separate",
        str(Path(config.song) / "mix.flac"),
        "--start-sample",
        str(s0),
        "--end-sample",
        str(s1),
        "--preset",
        config.separate_preset,
        *sep_steps,
        "--track",
        config.track,
        "--out",
        str(out / "separate"),
    ]
    accompany = [
        "stemlink",
        "accompany",
        str(context_path),
        "--timeline-sample",
        str(a0),
        "--preset",
        config.accompany_preset,
        "--context-stems",
        ",".join(config.context_stems),
        "--stems",
        config.target,
        "--candidates",
        str(config.candidates),
        *acc_steps,
        "--track",
        config.track,
        "--out",
        str(out / "accompany"),
    ]
    generated = result.stems["accompany"][config.target]
    lines = [
        f"# the whole demo\n{env}{config.command}",
        f"# 1. separate (the region spotted at sample {s0} of the timeline)\n{env}{shlex.join(separate)}",
        f"# 2. accompany: {context_path} = {' + '.join(config.context_stems)} of the song "
        f"{config.accompany_region[0]:g}-{config.accompany_region[1]:g} s (written by the demo)\n{env}{shlex.join(accompany)}",
        "# 3. COCOLA scores: context vs generated, vs the true part, vs the part from another time",
    ]
    lines += [env + shlex.join(["stemlink", "score", str(context_path), str(p)]) for p in (generated, *refs)]
    return lines


def _sections(
    result: DemoResult,
    config: DemoConfig,
    figures: dict[str, list],
    meta: dict[str, Any],
    models: dict[str, Any],
    rate: int,
    context_path: Path,
    refs: tuple[Path, Path],
) -> list:
    from stemlink.apps.report import Section
    from stemlink.plugin_host.outputs import sidecar_path

    song = (
        f"{Path(config.song)}: {meta.get('style')} ({_progression(meta)}), {meta.get('tempo')} bpm, {meta.get('key')}, "
        f"{meta.get('meter')}, {rate} Hz, stems " + ", ".join(f"{k} ({v.get('instrument')})" for k, v in meta.get("stems", {}).items())
    )
    overview = Section(
        "Overview",
        "One run of the main job with the embedded engine and the shipped models: separate a region, "
        "accompany another region from the remaining stems, score the result with COCOLA.",
        table=[("song", song)]
        + [
            (
                f"model {m.name}",
                f"version {m.version}, {m.family}, {m.sample_rate} Hz, formats {', '.join(m.formats)}, sha256 {m.sha256[:16]}...",
            )
            for m in models.values()
        ]
        + [
            ("separate region", f"{config.separate_region[0]:g}-{config.separate_region[1]:g} s"),
            ("accompany region", f"{config.accompany_region[0]:g}-{config.accompany_region[1]:g} s"),
            ("total time", f"{result.timings['total']:.1f} s"),
        ],
    )
    sep_rows = [
        (s, f"SI-SDR {v['sisdr']:.2f} dB | mixture {v['mixture']:.2f} dB | SI-SDRi {v['sisdri']:+.2f} dB") for s, v in result.sisdr.items()
    ]
    if result.sisdr:
        mean = sum(v["sisdri"] for v in result.sisdr.values()) / len(result.sisdr)
        sep_rows.append(("mean SI-SDRi", f"{mean:+.2f} dB"))
    separation = Section(
        "1. Separation",
        "Separated stems next to the shipped ground truth of the same region. SI-SDR per "
        "stem (mean over channels, at the song's rate); SI-SDRi = improvement over using the mixture itself.",
        figures=figures["separate"],
        table=sep_rows,
    )
    ranked = [(k, f"{v:.4f}") for k, v in result.candidates.items()]
    ranking = (
        f"{config.candidates} candidates scored by COCOLA against the context, the best kept."
        if result.candidates
        else "no score model was served, so only the first candidate was made (not ranked)."
    )
    accompaniment = Section(
        "2. Accompaniment",
        f"{config.target} generated for the context {'+'.join(config.context_stems)}; " + ranking,
        figures=figures["accompany"],
        table=ranked,
    )
    scores = Section(
        "3. COCOLA scores against the context",
        "Higher = more coherent with the context. The true part is the "
        "upper reference, the part from another time of the same song a lower one. The generated part is scored as "
        "written (after the preset's FX chain), so its score can differ a little from its ranking score above."
        if result.cocola
        else "Skipped: the exports have no model serving 'score'.",
        table=[(k, f"{v:.4f}") for k, v in result.cocola.items()],
    )
    timings = Section("Timings (wall seconds, 2-core CPU)", table=[(k, f"{v:.2f}") for k, v in result.timings.items()])
    files = [(step, str(Path(p).relative_to(config.out))) for step, stems in result.stems.items() for p in stems.values()]
    files += [
        (f"{step} sidecar", str(sidecar_path(Path(p)).relative_to(config.out)))
        for step, stems in result.stems.items()
        for p in stems.values()
    ]
    outputs = Section("Files", "BWF WAVs (bext TimeReference = the region's timeline sample) with JSON sidecars (provenance).", table=files)
    commands = Section("Reproduce with the CLI", code=_commands(config, rate, result, context_path, refs))
    return [overview, separation, accompaniment, scores, timings, outputs, commands]
