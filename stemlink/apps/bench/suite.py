"""`stemlink bench`: every measurement side by side in one run -> results.json, BENCHMARKS.md, PNGs.

Sections (measurements live in `stemlink/lab/eval` and `stemlink/apps/bench`; this module only runs them on
the shipped models and collects the results):

- separation: SI-SDR(i) per stem, MSDM protocol (4 s windows, 2 s hop, <= 1 non-silent stem
  skipped) at 44.1 kHz, full band, on the corpus test split and on unseen arrangements, every
  model serving `separate` side by side (as the engine serves it) next to the mixture baseline
  and the oracle ideal-ratio mask on the same windows (`bench.separation`);
- coherence: COCOLA K=2 accuracy and score distributions (`eval.coherence`); COCOLA score of
  generated accompaniment vs the true part vs a part from another track, and the share of
  non-silent generated parts (`eval.accompaniment_cocola`);
- speed: real-time factor of every task of every model in every exported format (onnxruntime
  and TorchScript, the torch path) through `run_task` at 44.1 kHz stereo (`eval.speed`);
- bridge: round trip of a 10 s stereo 44.1 kHz region over inproc/ipc/tcp vs a memory copy
  (`bench.bridge`);
- scale: wall time and peak RSS for 10 s / 1 min / 10 min regions (`bench.scale`).

Data: `--data DIR` (must exist), else the checkout's `data/corpus44` (the 44.1 kHz training corpus;
its test split is what the shipped cards report), else the bench corpus: a small deterministic corpus
(`BenchCorpus`: procedural songs at 44.1 kHz, Debian's fluid-soundfont-gm, a seed no shipped model
trained on, every track in the test split) rendered once into `bench_cache()/bench-corpus-<key>` and
reused. Unseen arrangements: `--ood DIR`, else the checkout's `data/mma-ood44`, else a bench corpus of
mma grooves (`--source mma`, never used for training), rendered the same way.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from stemlink.errors import InvalidInput
from stemlink.paths import PROJECT_ROOT, checkout_root

SCHEMA = "stemlink-bench/1"
DATA_HINT = (
    "stemlink data render --out data/corpus --tracks 240 --seconds 30 --sr 16000 --seed 0 --source procedural --jobs 2"
    "  (the training corpus; its test split is what the bench reads)"
)
CACHE_ENV = "STEMLINK_BENCH_CACHE"
Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchCorpus:
    """The corpus the bench renders for itself when given no --data and the checkout has no
    data/corpus: procedural songs like the training corpus (same arranger, rate, track length), but
    from a seed no shipped model was trained on (they used seed 0), and every track in the test split."""

    tracks: int
    seconds: float = 30.0
    sample_rate: int = 44100  # full band; cocola reads 16 kHz, msdm 8 kHz (cached resampled copies)
    seed: int = 12
    source: str = "procedural"  # "mma": the unseen-arrangement set (mma grooves no model trained on)

    def render_config(self, out: Path | str, jobs: int = 1) -> Any:
        """The renderer's settings for this corpus, written to `out`."""
        from stemlink.lab.data.render import RenderConfig

        return RenderConfig(
            out=str(out),
            tracks=self.tracks,
            seconds=self.seconds,
            sample_rate=self.sample_rate,
            seed=self.seed,
            source=self.source,
            jobs=jobs,
            split=(0.0, 0.0, 1.0),  # train/valid/test fractions: all test (the bench only evaluates)
        )

    def key(self) -> str:
        """Short hash of everything the rendered files depend on (the renderer's digest + track count)."""
        digest = self.render_config("").digest()
        return hashlib.sha256(f"{digest}/{self.tracks}".encode()).hexdigest()[:10]

    def describe(self) -> str:
        return f"{self.tracks} tracks x {self.seconds:g} s at {self.sample_rate} Hz ({self.source}, seed {self.seed}, all test)"


# --quick reads 8 separation windows (4 s, 2 s hop), 64 COCOLA pairs (2 s, 1 s hop) and 3
# accompaniment windows: 8 tracks x 30 s give ~100 / ~230 / ~200 (one separation window per track),
# rendered in ~6 s on the 2-core machine. The full run's 48 windows and 512 pairs need the size of
# the training corpus's test split (24 tracks x 30 s; ~20 s to render).
QUICK_CORPUS = BenchCorpus(tracks=8)
FULL_CORPUS = BenchCorpus(tracks=24)
QUICK_OOD = BenchCorpus(tracks=4, seed=7, source="mma")
FULL_OOD = BenchCorpus(tracks=16, seed=7, source="mma")


@dataclass(frozen=True)
class BenchConfig:
    out: Path = Path("bench")
    markdown: Path | None = None  # default: out/../BENCHMARKS.md
    exports: Path | None = None
    data: Path | None = None  # None: the checkout's data/corpus44 if there is one, else the bench corpus
    corpus: BenchCorpus | None = None  # the bench corpus to render (None: QUICK_CORPUS or FULL_CORPUS)
    split: str = "test"
    ood: Path | None = None  # unseen arrangements; None: the checkout's data/mma-ood44, else a rendered mma bench corpus
    ood_corpus: BenchCorpus | None = None  # None: QUICK_OOD or FULL_OOD
    ood_split: str = "train,valid,test"  # every split: no model trained on any of it
    separation_rate: int = 44100
    quick: bool = False
    threads: int = 2
    seed: int = 0
    # scale runs first, on a machine not yet warmed by the model sections (its children read
    # their own peak, VmHWM, so the order does not change the memory numbers).
    sections: tuple[str, ...] = ("scale", "separation", "coherence", "riff", "speed", "bridge", "daw")
    separation_windows: int = 48
    separation_steps: int | None = None  # None: the sampler's own (preset, or model defaults with --quick)
    separation_batch: int = 8
    cocola_pairs: int = 512
    accompaniment_windows: int = 12
    accompaniment_steps: int | None = None
    speed_seconds: float = 10.0
    speed_steps: int | None = None
    riff_items: int = 24  # per corpus (test split, unseen arrangements), 10 s each
    riff_conditions: tuple[str, ...] = ("ctx", "text+ctx", "reference+ctx", "text", "reference", "none")
    riff_edm_steps: tuple[int, ...] = (20, 40)
    riff_consistency_steps: tuple[int, ...] = (1, 2, 5)
    riff_clap: str = "clap-small"  # the pair that embeds for the metrics
    riff_scorer: str = "cocola-small"
    bridge_runs: int = 50
    scale_seconds: tuple[float, ...] = (10, 60, 600)
    eager: tuple[tuple[str, str], ...] = ()  # (model name, training checkpoint): also time torch eager
    command: str = "stemlink bench"

    @classmethod
    def for_run(cls, quick: bool, **kwargs: Any) -> BenchConfig:
        """The full settings, or --quick's (fewer windows, steps and runs; under ~5 min)."""
        base = cls(quick=quick)
        if quick:
            base = replace(
                base,
                separation_windows=8,
                separation_steps=None,
                cocola_pairs=64,
                accompaniment_windows=3,
                accompaniment_steps=None,
                speed_seconds=4.0,
                speed_steps=None,
                bridge_runs=10,
                riff_items=4,
                riff_conditions=("ctx", "text+ctx"),
                riff_edm_steps=(20,),
                riff_consistency_steps=(2,),
                scale_seconds=(10, 60),
            )
        return replace(base, **{k: v for k, v in kwargs.items() if v is not None})

    @property
    def bench_corpus(self) -> BenchCorpus:
        return self.corpus or (QUICK_CORPUS if self.quick else FULL_CORPUS)

    @property
    def bench_ood(self) -> BenchCorpus:
        return self.ood_corpus or (QUICK_OOD if self.quick else FULL_OOD)

    @property
    def markdown_path(self) -> Path:
        return self.markdown or Path(self.out).resolve().parent / "BENCHMARKS.md"

    def expected_minutes(self) -> float:
        """Rough wall-clock expectation of the selected sections on an idle 2-core machine with
        msdm-small/cocola-small (constants from the 2026-11-29 full run), printed before a run."""
        calls = 20 if self.quick else 50  # network calls per sampling run (quick: 10 steps + 1 corrector each)
        per_section = {
            "separation": 2 * self.separation_windows * (self.separation_steps or calls) * 0.04 / 60,  # two sets
            "coherence": self.cocola_pairs * 0.001 + self.accompaniment_windows * 3 * (self.accompaniment_steps or 40) * 0.015 / 60,
            "speed": (self.speed_seconds / 10) * ((self.speed_steps or calls) / 50) * 1.0 + 0.2,
            "bridge": self.bridge_runs * 0.01 + 0.1,
            # per riff entry: items x conditions x step counts x (~1 s per 10 s item and 20 steps) x 2 corpora
            "riff": 2
            * self.riff_items
            * len(self.riff_conditions)
            * (sum(self.riff_edm_steps) / 20 + len(self.riff_consistency_steps))
            / 60,
            "scale": sum(self.scale_seconds) * 0.03 / 60 + 0.05 * len(self.scale_seconds),
            "daw": 1.5,  # three Ardour round trips (CLI at 44.1 and 48 kHz, the Lua script in the GUI)
        }
        return round(sum(per_section[s] for s in self.sections) + 0.2, 1)


def machine_info(threads: int) -> dict[str, Any]:
    import psutil
    import torch

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        ort = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort,
        "load_average": list(os.getloadavg()),
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _no_progress(done: int, total: int) -> None:
    """A progress callback that reports nothing (benchmarks time the whole call)."""


def _models(registry: Any, task: str) -> list[str]:
    return [name for name in registry.names() if task in registry.spec(name).tasks]


def _sampler_params(config: BenchConfig, task: str, model: str, steps: int | None) -> dict[str, Any]:
    """Full runs: the shipped preset's sampler params for `task` (when it targets `model`), `steps`
    overriding. --quick: the model's own manifest defaults (tuned by its trainer for few steps;
    forcing few steps onto a preset's many-step sampler can diverge), `steps` only if given."""
    base = {} if config.quick else _preset_params(task, model)
    return {**base, **({"steps": steps} if steps is not None else {})}


def _preset_params(task: str, model: str) -> dict[str, Any]:
    """The shipped preset's sampler params for `task` when it targets `model` (else none)."""
    from stemlink.plugin_host.presets import list_presets

    for _, preset in list_presets():
        if not isinstance(preset, Exception) and preset.task == task and preset.model == model:
            return dict(preset.params)
    return {}


def bench_cache() -> Path:
    """Where the bench keeps the corpus it renders: $STEMLINK_BENCH_CACHE, else the checkout's data/
    (git-ignored, next to data/corpus), else the user cache folder ($XDG_CACHE_HOME or ~/.cache)/stemlink."""
    value = os.environ.get(CACHE_ENV)
    if value:
        return Path(value)
    root = checkout_root()
    if root is not None:
        return root / "data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stemlink"


def _is_complete(folder: Path, cfg: Any) -> bool:
    """True when `folder` holds a finished render of `cfg` (its READY marker matches)."""
    try:
        ready = json.loads((folder / "READY").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(ready, dict) and ready.get("config_digest") == cfg.digest() and ready.get("tracks") == cfg.tracks


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_renders(cache: Path, name: str) -> None:
    """Delete temp folders of renders of `name` whose process is gone (an interrupted render)."""
    for tmp in cache.glob(f".{name}.*.tmp"):
        pid = tmp.name[len(name) + 2 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_bench_corpus(spec: BenchCorpus, cache: Path, log: Log, jobs: int = 1) -> Path:
    """The folder holding a complete render of `spec` under `cache`: reused when there, else rendered
    now into `.<name>.<pid>.tmp` and renamed into place when complete (so an interrupted render, whose
    temp folder may stay behind, is never used). One process by default: the 8-track quick corpus
    rendered in 6.2 s with one and 13.5 s with two on the busy 2-core machine (worker start-up)."""
    from stemlink.lab.data.render import render_corpus

    final = Path(cache) / f"bench-corpus-{spec.key()}"
    cfg = spec.render_config(final, jobs=jobs)
    if _is_complete(final, cfg):
        log(f"bench corpus: {final} ({spec.describe()}, rendered earlier)")
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_renders(final.parent, final.name)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"bench corpus: no --data and no data/corpus; rendering {spec.describe()} once -> {final}")
    t0 = time.perf_counter()
    try:
        render_corpus(replace(cfg, out=str(tmp)), progress=log)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists() and not _is_complete(final, cfg):
        shutil.rmtree(final)  # not a finished render of ours (hand-made or damaged): replaced
    try:
        os.rename(tmp, final)
    except OSError:
        if not _is_complete(final, cfg):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another run finished the same render first
    log(f"bench corpus: rendered {spec.describe()} in {time.perf_counter() - t0:.1f} s -> {final} (reused next time)")
    return final


def resolve_data(config: BenchConfig, log: Log) -> BenchConfig:
    """`config` with `data` set: --data as given (it must exist), else the checkout's data/corpus44
    when it exists, else the bench corpus (rendered once, see `ensure_bench_corpus`). With the
    separation section also `ood`: --ood as given, else the checkout's data/mma-ood44, else the
    rendered mma bench corpus."""
    if config.data is not None:
        if not Path(config.data).is_dir():
            raise InvalidInput(
                f"no corpus at {config.data} (--data): pass an existing corpus folder with a test split (any layout stemlink reads), "
                f"leave --data out to use the bench's own corpus, or render one: {DATA_HINT}",
                field="data",
            )
    else:
        root = checkout_root()
        if root is not None and (root / "data" / "corpus44").is_dir():
            config = replace(config, data=root / "data" / "corpus44")
        else:
            config = replace(config, data=ensure_bench_corpus(config.bench_corpus, bench_cache(), log))
    if not {"separation", "riff"} & set(config.sections):
        return config
    if config.ood is not None:
        if not Path(config.ood).is_dir():
            raise InvalidInput(f"no corpus at {config.ood} (--ood): pass an existing corpus folder or leave --ood out", field="ood")
        return config
    root = checkout_root()
    if root is not None and (root / "data" / "mma-ood44").is_dir():
        return replace(config, ood=root / "data" / "mma-ood44")
    return replace(config, ood=ensure_bench_corpus(config.bench_ood, bench_cache(), log))


def _data_root(config: BenchConfig) -> Path:
    assert config.data is not None, "resolve_data(config) first"
    return Path(config.data)


def _data_info(config: BenchConfig) -> dict[str, Any]:
    """results.json's "data": the corpus read, and the bench corpus's settings when it is the one."""
    if config.data is None:
        return {"root": "not read (no separation or coherence section)", "split": config.split}
    info: dict[str, Any] = {"root": str(config.data), "split": config.split}
    if Path(config.data).name == f"bench-corpus-{config.bench_corpus.key()}":
        info["bench_corpus"] = asdict(config.bench_corpus)
    if config.ood is not None:
        info["ood"] = {"root": str(config.ood), "split": config.ood_split}
        if Path(config.ood).name == f"bench-corpus-{config.bench_ood.key()}":
            info["ood"]["bench_corpus"] = asdict(config.bench_ood)
    return info


def _check_data(config: BenchConfig) -> Any:
    from stemlink.lab.data import open_corpus

    corpus = open_corpus(_data_root(config))
    if config.split not in corpus.splits():
        raise InvalidInput(
            f"corpus {config.data} has no {config.split!r} split (has {', '.join(corpus.splits())}); pass --split", field="split"
        )
    return corpus


# --- sections ------------------------------------------------------------------------------


def bench_separation_section(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    from stemlink.apps.bench.separation import bench_separation

    return bench_separation(registry, config, log, partial(_sampler_params, config, "separate", steps=config.separation_steps))


def bench_coherence(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    from stemlink.lab.data import StemWindows, SubmixPairs, open_corpus
    from stemlink.lab.eval.accompaniment_cocola import accompaniment_scores
    from stemlink.lab.eval.coherence import embed_pairs, k_pair_accuracy, score_distributions

    corpus = open_corpus(_data_root(config))
    scorers: list[dict[str, Any]] = []
    for name in _models(registry, "score"):
        model = registry.get(name)
        if not hasattr(model, "weight"):
            scorers.append({"model": name, "skipped": "no bilinear weight (not a COCOLA scorer)"})
            continue
        data = SubmixPairs(
            corpus, config.split, sample_rate=model.sample_rate, length=model.window, max_overlap=0.5, seed=config.seed, jitter=False
        )
        pairs = embed_pairs(model.embed, data, min(config.cocola_pairs, len(data)), seed=config.seed)
        n = pairs.h1.shape[0]
        acc = {f"K={k}": k_pair_accuracy(pairs.h1, pairs.h2, model.weight, k) for k in (2, 8) if k <= n}
        dists = [asdict(d) for d in score_distributions(pairs, model.weight, model.window, seed=config.seed)]
        log(f"  {name}: {n} pairs, " + ", ".join(f"accuracy {k} {v * 100:.1f}%" for k, v in acc.items()))
        scorers.append(
            {"model": name, "format": model.spec.format, "pairs": n, "tracks": len(set(pairs.tracks)), "accuracy": acc, "scores": dists}
        )
    accompaniment: list[dict[str, Any]] = []
    scorer_name = registry.default_for("score") if scorers else None
    for name in _models(registry, "accompany"):
        if scorer_name is None:
            accompaniment.append({"model": name, "skipped": "no score model in the exports"})
            continue
        model, scorer = registry.get(name), registry.get(scorer_name)
        ds = StemWindows(
            corpus,
            config.split,
            stems=tuple(model.stems),
            sample_rate=model.sample_rate,
            length=model.window,
            max_overlap=0.5,
            silence_rule=True,
            jitter=False,
            seed=config.seed,
        )
        idx = _spread(len(ds), config.accompaniment_windows)
        params = model.parse_params("accompany", _sampler_params(config, "accompany", name, config.accompaniment_steps))
        scores = accompaniment_scores(model, scorer, [ds[i] for i in idx], [ds.window(i)[0] for i in idx], params=params, seed=config.seed)
        s = scores.summary()
        log(
            f"  {name} + {scorer_name}: {s['parts']} parts, mean COCOLA generated "
            f"{_get(s, 'generated')} / true {_get(s, 'true')} / random {_get(s, 'random')}, "
            f"non-silent {s['generated_nonsilent'] * 100:.0f}%"
        )
        accompaniment.append({"model": name, "scorer": scorer_name, "windows": len(idx), "steps": params.steps, "candidates": 1, **s})
    return {"cocola": scorers, "accompaniment": accompaniment}


def _eager_msdm(spec: Any, checkpoint: Path) -> Any:
    from stemlink.engine.models.msdm import MSDMModel
    from stemlink.lab.export.msdm import load_denoiser

    return MSDMModel(spec, load_denoiser(checkpoint)[0])


def _eager_cocola(spec: Any, checkpoint: Path) -> Any:
    from stemlink.engine.models.cocola import CocolaModel
    from stemlink.lab.export.cocola import CocolaExport, load_cocola

    return CocolaModel(spec, CocolaExport(load_cocola(checkpoint)[0]).eval())


def _eager_bandsplit(spec: Any, checkpoint: Path) -> Any:
    from stemlink.engine.models.bandsplit import BandSplitModel
    from stemlink.lab.export.bandsplit import load_bandsplit

    return BandSplitModel(spec, load_bandsplit(checkpoint)[0])


EAGER_LOADERS = {
    "msdm": _eager_msdm,
    "cocola": _eager_cocola,
    "bandsplit": _eager_bandsplit,
}  # family -> (spec, training checkpoint) -> model


def bench_speed(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    """RTF per (model, runtime, task); runtimes: every exported format, plus torch eager for the
    models given a training checkpoint (`config.eager`), checked against the export's output."""
    from stemlink.lab.eval.speed import region

    rate, channels = 44100, 2
    audio = region(config.speed_seconds, rate, channels, seed=config.seed)
    runtimes = {"onnx": "onnxruntime", "torchscript": "torch (TorchScript)"}
    candidates: list[tuple[Any, str, Callable[[], Any]]] = [
        (spec, runtimes.get(spec.format, spec.format), partial(registry.get, spec.name, spec.format)) for spec in registry.list()
    ]
    for name, checkpoint in config.eager:
        spec = registry.spec(name)
        if spec.family not in EAGER_LOADERS:
            raise InvalidInput(
                f"--eager {name}: family {spec.family!r} has no eager loader; allowed: {', '.join(EAGER_LOADERS)}", field="eager"
            )
        candidates.append((spec, "torch eager (checkpoint)", partial(EAGER_LOADERS[spec.family], spec, Path(checkpoint))))
    rows: list[dict[str, Any]] = []
    warm: dict[Any, Any] = {}
    for spec, runtime, load in candidates:
        model = load()
        for task in [t for t in ("separate", "accompany", "generate", "score") if t in spec.tasks]:
            params = _sampler_params(config, task, spec.name, config.speed_steps) if model.samples else {}
            _, short = _timed_task(model, task, audio[:, :rate], rate, params, config.seed)  # warm-up (runtime, shapes)
            seconds, result = _timed_task(model, task, audio, rate, params, config.seed)
            row = {
                "model": spec.name,
                "format": spec.format,
                "runtime": runtime,
                "task": task,
                "rtf": seconds / config.speed_seconds,
                "seconds": seconds,
                "steps": result.params.get("steps"),
            }
            reference = warm.setdefault((spec.name, task), short)  # the first runtime's warm-up output
            if runtime.startswith("torch eager"):
                row["max_abs_diff_vs_export"] = _max_diff(reference, short)
            rows.append(row)
            log(
                f"  {spec.name:14s} {task:9s} {runtime:24s} RTF {row['rtf']:7.3f}"
                + (f"  (|eager - export| max {row['max_abs_diff_vs_export']:.2g})" if "max_abs_diff_vs_export" in row else "")
            )
    return {"region": {"seconds": config.speed_seconds, "sample_rate": rate, "channels": channels}, "threads": config.threads, "runs": rows}


def _max_diff(a: Any, b: Any) -> float:
    """Largest difference between two TaskResults (stems, or scores for the score task)."""
    import numpy as np

    if a.stems:
        return float(max(np.abs(a.stems[k] - b.stems[k]).max() for k in a.stems))
    return float(abs(a.scores["score"] - b.scores["score"]))


def _timed_task(model: Any, task: str, audio: Any, rate: int, params: dict[str, Any], seed: int) -> tuple[float, Any]:
    from stemlink.contract import TaskRequest
    from stemlink.engine.tasks import run_task

    by_task: dict[str, dict[str, Any]] = {
        "separate": {"inputs": {"mix": audio}},
        "accompany": {"inputs": {"context": audio}, "context_stems": tuple(model.stems[:-1])},
        "generate": {"frames": audio.shape[-1], "channels": audio.shape[0]},
        "score": {"inputs": {"a": audio, "b": audio[::-1].copy()}},
    }
    kw = by_task[task]
    request = TaskRequest(task=task, sample_rate=rate, params=params, seed=seed, **kw)
    t0 = time.perf_counter()
    result = run_task(model, request)
    return time.perf_counter() - t0, result


def _spread(n: int, k: int) -> list[int]:
    if k >= n:
        return list(range(n))
    return [round(i * (n - 1) / max(k - 1, 1)) for i in range(k)]


def _mean(values: Any) -> float:
    values = list(values or [])
    return sum(values) / len(values) if values else float("nan")


def _get(summary: dict[str, Any], kind: str) -> str:
    d = summary.get(kind)
    return f"{d['mean']:.3f}" if d else "n/a"


# --- the run -------------------------------------------------------------------------------


def run_bench(config: BenchConfig, *, log: Log = print) -> dict[str, Any]:
    """Run the selected sections, write results.json + BENCHMARKS.md + PNGs; returns the results."""
    import torch

    from stemlink.apps.bench.report import write_markdown, write_plots
    from stemlink.engine.registry import ModelRegistry

    unknown = set(config.sections) - set(BenchConfig.sections)
    if unknown:
        raise InvalidInput(f"unknown bench section(s) {sorted(unknown)}; allowed: {', '.join(BenchConfig.sections)}", field="sections")
    if {"separation", "coherence", "riff"} & set(config.sections):
        config = resolve_data(config, log)
        _check_data(config)
    torch.set_num_threads(config.threads)
    registry = ModelRegistry(config.exports, device="cpu", threads=config.threads)
    started = time.perf_counter()
    expected = config.expected_minutes()
    log(
        f"stemlink bench{' --quick' if config.quick else ''}: sections {', '.join(config.sections)}; "
        f"expected about {expected:g} min on a 2-core CPU"
    )
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "version": 1,
        "quick": config.quick,
        "command": config.command,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(config.threads),
        "git": git_info(),
        "exports": str(registry.exports_dir),
        "models": [
            {
                "name": s.name,
                "version": s.version,
                "family": s.family,
                "format": s.format,
                "tasks": list(s.tasks),
                "sample_rate": s.sample_rate,
                "window": s.window,
                "sha256": s.sha256,
                "card": s.card,
            }
            for s in registry.list()
        ],
        "data": _data_info(config),
        "settings": {
            k: v
            for k, v in asdict(config).items()
            if k not in ("out", "markdown", "exports", "data", "corpus", "ood", "ood_corpus", "command")
        },
        "eager_checkpoints": {name: str(path) for name, path in config.eager},
        "timings": {},
        "rss_mb": {"start": round(_rss_mb(), 1)},
        "expected_minutes": expected,
    }
    runners = {
        "separation": bench_separation_section,
        "coherence": bench_coherence,
        "speed": bench_speed,
        "bridge": bench_bridge_section,
        "riff": bench_riff_section,
        "scale": bench_scale_section,
        "daw": bench_daw_section,
    }
    for name in sorted(config.sections, key=BenchConfig.sections.index):
        log(f"[{name}]")
        t0 = time.perf_counter()
        results[name] = runners[name](registry, config, log)
        results["timings"][name] = round(time.perf_counter() - t0, 2)
        results["rss_mb"][name] = round(_rss_mb(), 1)
        log(f"  ({results['timings'][name]:.1f} s, bench process RSS {results['rss_mb'][name]:.0f} MB)")
    results["timings"]["total"] = round(time.perf_counter() - started, 2)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    results["plots"] = write_plots(results, out)
    _write_json(out / "results.json", results)
    write_markdown(results, config.markdown_path, out)
    log(
        f"done in {results['timings']['total'] / 60:.1f} min (expected about {expected:g} min): "
        f"{out / 'results.json'}, {config.markdown_path}"
    )
    return results


def bench_bridge_section(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    from stemlink.apps.bench.bridge import bench_bridge, format_report

    result = bench_bridge(config.bridge_runs)
    log(format_report(result))
    return result


def bench_riff_section(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    """Issue 14's table: every riff entry (EDM at `riff_edm_steps`, consistency at
    `riff_consistency_steps`) under every condition it takes, on the test split and on unseen
    arrangements, scored by clap-small and cocola-small (`stemlink.lab.eval.riff`)."""
    from stemlink.lab.eval.riff import riff_items, run_condition

    riffs = [n for n in registry.names() if registry.spec(n).family == "riff"]
    needed = [f"{config.riff_clap}.audio", f"{config.riff_clap}.text", config.riff_scorer]
    if not riffs or not all(registry.has(n) for n in needed):
        why = "no riff model in the exports" if not riffs else f"needs {', '.join(n for n in needed if not registry.has(n))}"
        log(f"  skipped: {why}")
        return {"skipped": why, "runs": []}
    clap_audio, clap_text, scorer = (registry.get(n) for n in needed)
    rate = clap_audio.sample_rate
    encoders = dict(sample_rate=rate, clap_audio=clap_audio, clap_text=clap_text, scorer=scorer)
    runs = []
    msdm = [n for n in registry.names() if registry.spec(n).family == "msdm" and "accompany" in registry.spec(n).tasks]
    targets = tuple(registry.spec(msdm[0]).stems) if msdm else None  # the same items for every system
    for label, root, split in (("test", config.data, config.split), ("unseen arrangements", config.ood, config.ood_split)):
        if root is None:
            continue
        items = riff_items(str(root), split, seconds=10.0, sample_rate=rate, limit=config.riff_items, targets=targets)
        for name in msdm:  # today's accompanist, on the same items (context only, its preset's sampler)
            params = _sampler_params(config, "accompany", name, config.accompaniment_steps)
            scores = run_condition(registry.get(name), items, condition="ctx", params=params, seed=config.seed, **encoders)
            runs.append(
                {
                    "data": label,
                    "model": name,
                    "steps": params.get("steps"),
                    "seconds_per_10s_item": scores.pop("seconds_per_item"),
                    **scores,
                }
            )
            log(
                f"  {label:20s} {name} ctx cocola {scores['cocola']:.2f} / true {scores['cocola_true']:.2f} audible {scores['audible']:.0%}"
            )
        for name in riffs:
            model = registry.get(name)
            steps = config.riff_consistency_steps if getattr(model, "consistency", False) else config.riff_edm_steps
            for n in steps:
                for condition in config.riff_conditions:
                    wants = {c for c in ("text", "reference") if c in condition}
                    if not wants <= set(model.conditions):
                        continue
                    scores = run_condition(model, items, condition=condition, params={"steps": n}, seed=config.seed, **encoders)
                    seconds = scores.pop("seconds_per_item")
                    runs.append({"data": label, "model": name, "steps": n, "seconds_per_10s_item": seconds, **scores})
                    log(
                        f"  {label:20s} {name} {n:2d} steps {condition:14s} cocola {scores['cocola']:.2f} / true {scores['cocola_true']:.2f} "
                        f"audible {scores['audible']:.0%} text R@1 {scores['text_retrieval']:.2f} ({seconds:.1f} s per 10 s)"
                    )
    return {"runs": runs, "items": config.riff_items, "encoders": needed}


def bench_daw_section(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    from stemlink.apps.bench.ardour_roundtrip import bench_ardour

    return bench_ardour(config.speed_seconds, exports=config.exports, log=log)


def bench_scale_section(registry: Any, config: BenchConfig, log: Log) -> dict[str, Any]:
    from stemlink.apps.bench.scale import bench_scale

    result = bench_scale(config.scale_seconds, threads=1)
    for run in result["runs"]:
        log(
            f"  {run['seconds']:6g} s region: wall {run['wall']:7.2f} s ({run['wall_per_audio_second'] * 1000:.2f} ms per "
            f"audio second), peak RSS {run['peak_rss_mb']:.0f} MB"
        )
    return result


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _finite(value: Any) -> Any:
    """NaN/inf -> None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")
    os.replace(tmp, path)
