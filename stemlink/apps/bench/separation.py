"""`stemlink bench` separation section: every separator side by side, at the host rate, full band.

For each evaluation set (the corpus test split; unseen arrangements, `--source mma` grooves no
model trained on) the same MSDM-protocol windows (4 s, 2 s hop, <= 1 non-silent stem skipped)
are cut at `config.separation_rate` (44.1 kHz by default) and scored for:

- the mixture (baseline, SI-SDRi 0 by definition) and the oracle ideal ratio mask (upper bound
  of any mask separator, STFT 4096/1024 at 44.1 kHz, scaled with the rate);
- every model serving `separate`, run as the engine serves it (`stemlink.lab.eval.separation.served`:
  resampling to the model's rate and back, windows, crossfades, mixture consistency), so a model
  whose band stops at 4 kHz is scored on the whole band it misses;
- the first mask separator refined by the first diffusion prior (`stemlink.lab.eval.refine`:
  warm-started Dirac sampling from the separator's stems at `REFINE_SIGMA`, 1/2/4 steps).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

REFINE_STEPS = (1, 2, 4)
REFINE_SIGMA = 0.005  # the best of 0.005-0.2 on unseen arrangements (bench/separator-refine.jsonl)
ORACLE_SECONDS = 4096 / 44100  # oracle IRM frame: 4096 samples at 44.1 kHz (hop a quarter)


def _mean(values: Any) -> float:
    values = [v for v in (values or []) if v == v]
    return sum(values) / len(values) if values else float("nan")


def oracle_fft(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of the oracle IRM at `sample_rate`: the power of two nearest ORACLE_SECONDS."""
    n_fft = 1 << max(6, round(ORACLE_SECONDS * sample_rate).bit_length() - 1)
    return n_fft, n_fft // 4


def summarize(scores: Any, system: str, log: Any, **extra: Any) -> dict[str, Any]:
    per_stem = {
        s: {"sisdri": _mean(scores.improvement.get(s)), "sisdr": _mean(scores.sdr.get(s)), "n": len(scores.improvement.get(s, []))}
        for s in scores.stems
    }
    out = {
        "system": system,
        **extra,
        "per_stem": per_stem,
        "avg_sisdri": scores.summary()["avg_sisdri"],
        "avg_sisdr": _mean([v["sisdr"] for v in per_stem.values() if v["n"]]),
    }
    log(
        f"  {system:34s} SI-SDRi "
        + "  ".join(f"{s} {v['sisdri']:+6.2f}" for s, v in per_stem.items())
        + f"  | avg {out['avg_sisdri']:+6.2f} dB"
    )
    return out


def evaluate_set(registry: Any, name: str, root: Path, split: str, config: Any, log: Any, params_for: Any) -> dict[str, Any]:
    """All separators on one set's protocol windows at `config.separation_rate`."""
    import torch

    from stemlink.lab.data import open_corpus
    from stemlink.lab.eval.separation import SeparationScores, evaluate, oracle_irm, protocol_windows, served

    present = open_corpus(root).splits()
    split = ",".join(s for s in split.split(",") if s.strip() in present) or split  # e.g. a bench corpus is all "test"
    rate = config.separation_rate
    models = [m for m in registry.names() if "separate" in registry.spec(m).tasks]
    stems = tuple(registry.spec(models[0]).stems) if models else ("bass", "drums", "guitar", "piano")
    windows = protocol_windows(str(root), split, stems, rate, limit=config.separation_windows)
    entry: dict[str, Any] = {
        "set": name,
        "root": str(root),
        "split": split,
        "sample_rate": rate,
        "windows": len(windows),
        "stems": list(stems),
    }
    if not windows:
        return {**entry, "skipped": f"no protocol windows in split {split!r} of {root}"}
    log(f"  {name}: {len(windows)} windows of 4 s at {rate} Hz from {root} ({split})")
    entry["window_samples"] = int(windows[0].shape[-1])
    refs = torch.stack(windows).float()
    systems = []
    base = SeparationScores(stems)
    base.add(refs, refs.sum(1, keepdim=True).expand_as(refs).contiguous())
    systems.append(summarize(base, "mixture (baseline)", log))
    n_fft, hop = oracle_fft(rate)
    oracle = SeparationScores(stems)
    oracle.add(refs, oracle_irm(refs, n_fft=n_fft, hop=hop))
    systems.append(summarize(oracle, "oracle IRM (upper bound)", log, n_fft=n_fft, hop=hop))
    for model_name in models:
        model = registry.get(model_name)
        if tuple(model.stems) != stems:
            systems.append({"system": model_name, "skipped": f"stems {list(model.stems)} differ from {list(stems)}"})
            continue
        params = model.parse_params("separate", params_for(model_name) if model.samples else {})
        scores = evaluate(
            served(model, rate, params=params, seed=config.seed), windows, stems, batch=config.separation_batch, sample_rate=rate
        )
        systems.append(
            summarize(
                scores,
                f"{model_name} ({model.spec.format}, {model.sample_rate} Hz)",
                log,
                model=model_name,
                model_rate=model.sample_rate,
                params=asdict(params) if is_dataclass(params) and not isinstance(params, type) else {},
                rtf=scores.summary().get("rtf"),
            )
        )
    systems += _refined(registry, models, stems, windows, rate, config, log)
    return {**entry, "systems": systems}


def _refined(registry: Any, models: list[str], stems: tuple[str, ...], windows: Any, rate: int, config: Any, log: Any) -> list[dict]:
    """Separator + diffusion refinement rows (none without both a mask separator and a prior)."""
    import torch

    from stemlink.lab.eval.refine import refine
    from stemlink.lab.eval.separation import evaluate, served

    loaded = [registry.get(m) for m in models]
    separator = next((m for m in loaded if not m.samples and tuple(m.stems) == stems), None)
    prior = next((m for m in loaded if m.samples and "separate" in m.tasks and tuple(m.stems) == stems), None)
    if separator is None or prior is None:
        return []
    rows = []
    base = served(separator, rate, seed=config.seed)
    for steps in REFINE_STEPS:
        g = torch.Generator().manual_seed(config.seed)

        def run(mix: torch.Tensor, steps: int = steps, g: torch.Generator = g) -> torch.Tensor:
            return refine(prior, base(mix), mix, rate, steps=steps, sigma_start=REFINE_SIGMA, generator=g)

        scores = evaluate(run, windows, stems, batch=config.separation_batch, sample_rate=rate)
        rows.append(
            summarize(
                scores,
                f"{separator.name} + {prior.name} refine {steps}",
                log,
                refine={"separator": separator.name, "prior": prior.name, "steps": steps, "sigma_start": REFINE_SIGMA},
                rtf=scores.summary().get("rtf"),
            )
        )
    return rows


def bench_separation(registry: Any, config: Any, log: Any, params_for: Any) -> dict[str, Any]:
    """The section: the corpus test split, then the unseen-arrangement set (when there is one)."""
    sets = [("corpus test split", Path(config.data), config.split)]
    if config.ood is not None:
        sets.append(("unseen arrangements (mma)", Path(config.ood), config.ood_split))
    return {
        "sample_rate": config.separation_rate,
        "sets": [evaluate_set(registry, name, root, split, config, log, params_for) for name, root, split in sets],
    }
