"""Accompaniment quality of the Diff-A-Riff family (issue 14): the paper's Table 1 with our own
encoders standing in for CLAP (the clap-small pair) and for the coherence score (cocola-small).

    items = riff_items("data/mma-ood44", "test", seconds=10.0, sample_rate=44100, limit=40)
    parts = generate_parts(model, items, condition="text+ctx", params={"steps": 5}, seed=0)
    scores = score_parts(parts, items, clap_audio=..., clap_text=..., scorer=...)

Items: per track, one `seconds` window where a target stem (each class in turn, round robin) and
the rest of the mix are both audible: context = the other stems' sum (stereo), the true part,
the part's description (its class and instrument: what a producer types), and a style reference
(another window of the same stem, never overlapping the item: the paper's no-leakage rule).

Conditions: "ctx" (context only), "text+ctx", "reference+ctx", "text", "reference", "none".

Figures, every one against the same real parts (our encoders: say so when quoting them):
- fad, kd: Fréchet and kernel (polynomial, KID-style) distance between CLAP audio embeddings of
  generated and true parts (small samples bias FAD upwards: compare rows of one run only);
- density, coverage (Naeem et al. 2020, k = 5) of generated embeddings w.r.t. the true ones;
- apa: APA-style context adherence: Fréchet distance of joint (context, context + part) embeddings
  to the true pairs, mapped as D_shuffled / (D_shuffled + D_generated): 1 = as the true pairs,
  0.5 = as bad as parts paired with another track's context;
- cocola, cocola_true, cocola_random: mean COCOLA score of (context, generated / true / another
  track's part); cocola_ratio = cocola / cocola_true;
- clap_aa: cosine of generated and true part embeddings (reference conditions: and the reference);
  clap_ta: cosine of generated part and prompt text embeddings;
- text_retrieval: share of generated parts whose nearest prompt, among the distinct prompts of
  the run, is their own (chance 1 / prompts); text_retrieval_true: the same for the true parts
  (what the audio and text encoders can tell apart at all);
- audible: share of generated parts at or above -50 dBFS RMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stemlink.engine.tasks import AUDIBLE_RMS

CONDITIONS = ("ctx", "text+ctx", "reference+ctx", "text", "reference", "none")


@dataclass(frozen=True)
class RiffItem:
    track: str
    cls: str
    context: np.ndarray  # (2, T)
    part: np.ndarray  # (2, T)
    text: str
    reference: np.ndarray  # (2, R)
    context_classes: tuple[str, ...] = ()  # the classes summed into the context


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def riff_items(
    root: str,
    split: str,
    *,
    seconds: float,
    sample_rate: int,
    limit: int | None = None,
    ref_seconds: float = 5.0,
    targets: Sequence[str] | None = None,
) -> list[RiffItem]:
    """`targets`: only these classes as the target part (e.g. msdm-small's four stems)."""
    from stemlink.lab.data import open_corpus
    from stemlink.lab.data.cache import ensure_cached
    from stemlink.lab.data.descriptions import stem_facts

    corpus = open_corpus(root)
    tracks = [t for name in split.split(",") for t in corpus.tracks(name)]  # "train,valid,test": every split (unseen corpora)
    n, r = int(seconds * sample_rate), int(ref_seconds * sample_rate)
    items: list[RiffItem] = []
    for t, (track, cached) in enumerate(zip(tracks, ensure_cached(corpus, tracks, sample_rate, mono=False, verbose=False), strict=True)):
        if limit is not None and len(items) >= limit:
            break
        audio = np.load(cached.audio_path, mmap_mode="r")
        classes = list(cached.classes)
        if len(classes) < 2 or audio.shape[-1] < n + r:
            continue
        for shift in range(len(classes)):  # round robin over the target class, the first that works
            k = (t + shift) % len(classes)
            if targets is not None and classes[k] not in targets:
                continue
            found = _window(audio, k, n, r)
            if found is None:
                continue
            start, ref_start = found
            part = np.asarray(audio[k, :, start : start + n], dtype=np.float32)
            context = np.asarray(np.delete(audio[:, :, start : start + n], k, axis=0).sum(axis=0), dtype=np.float32)
            facts = stem_facts(track, classes[k])
            text = ", ".join(v for v in (facts.get("instrument"), facts["class"]) if v)
            reference = np.asarray(audio[k, :, ref_start : ref_start + r], dtype=np.float32)
            context_classes = tuple(c for j, c in enumerate(classes) if j != k)
            items.append(RiffItem(track.id, classes[k], context, part, text, reference, context_classes))
            break
    return items


def _window(audio: np.ndarray, k: int, n: int, r: int) -> tuple[int, int] | None:
    """A start where stem k and the rest are audible for the whole item, and a reference start clear of it."""
    length = audio.shape[-1]
    hop = max(n // 4, 1)
    for start in range(0, length - n + 1, hop):
        part = audio[k, :, start : start + n]
        rest = np.delete(audio[:, :, start : start + n], k, axis=0).sum(axis=0)
        if _rms(part) < AUDIBLE_RMS * 3 or _rms(rest) < AUDIBLE_RMS * 3:
            continue
        for ref in list(range(start + n, length - r + 1, hop)) + list(range(0, start - r + 1, hop)):
            if _rms(audio[k, :, ref : ref + r]) >= AUDIBLE_RMS * 3:
                return start, ref
    return None


def generate_parts(
    model: Any, items: Sequence[RiffItem], *, condition: str, params: dict[str, Any], sample_rate: int, seed: int = 0
) -> list[np.ndarray]:
    """One generated part (2, T) per item through the engine path (`run_task`), for `condition`."""
    from stemlink.contract import TaskRequest
    from stemlink.engine.tasks import run_task

    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    parts = []
    named = "context_stems" in getattr(model, "conditions", ())  # MSDM: told which of its stems the context holds
    for i, item in enumerate(items):
        if named:
            if condition != "ctx":
                raise ValueError(f"model {model.name!r} takes only the context ('ctx'), not {condition!r}")
            if item.cls not in model.stems:
                raise ValueError(f"model {model.name!r} cannot generate {item.cls!r}: use items of its stems {model.stems}")
            ctx_stems = tuple(c for c in item.context_classes if c in model.stems and c != item.cls)
            request = TaskRequest(
                "accompany",
                sample_rate,
                {"context": item.context},
                params=params,
                seed=seed + i,
                stems=(item.cls,),
                context_stems=ctx_stems,
            )
            parts.append(run_task(model, request).stems[item.cls])
            continue
        text = item.text if "text" in condition else ""
        inputs: dict[str, np.ndarray] = {"reference": item.reference} if "reference" in condition else {}
        if condition.endswith("ctx"):
            request = TaskRequest("accompany", sample_rate, {"context": item.context, **inputs}, params=params, seed=seed + i, text=text)
        else:
            frames = item.part.shape[-1]
            request = TaskRequest("generate", sample_rate, inputs, params=params, seed=seed + i, text=text, frames=frames, channels=2)
        result = run_task(model, request)
        parts.append(next(iter(result.stems.values())))
    return parts


def frechet(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False) + eps * np.eye(a.shape[1]), np.cov(b, rowvar=False) + eps * np.eye(b.shape[1])
    covmean = linalg.sqrtm(ca @ cb)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca + cb - 2 * covmean))


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the KID polynomial kernel (x.y / d + 1)^3."""
    d = a.shape[1]

    def k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / d + 1.0) ** 3

    m, n = len(a), len(b)
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean())


def density_coverage(fake: np.ndarray, real: np.ndarray, k: int = 5) -> tuple[float, float]:
    k = min(k, len(real) - 1)
    rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    radius = np.sort(rr, axis=1)[:, k]  # k-th neighbour (index 0 is itself)
    fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # (F, R)
    inside = fr < radius[None]
    density = float(inside.sum() / (k * len(fake)))
    coverage = float((fr.min(axis=0) < radius).mean())
    return density, coverage


def score_parts(
    parts: Sequence[np.ndarray],
    items: Sequence[RiffItem],
    *,
    sample_rate: int,
    clap_audio: Any,
    clap_text: Any,
    scorer: Any,
    condition: str,
) -> dict[str, Any]:
    from stemlink.audio.files import ArraySource
    from stemlink.audio.resample import resample_array
    from stemlink.engine.apply import score

    def embed(clips: Sequence[np.ndarray]) -> np.ndarray:
        rate = clap_audio.sample_rate
        out = [clap_audio.embed_audio(torch.from_numpy(resample_array(c, sample_rate, rate))[None]) for c in clips]
        return torch.cat(out).numpy().astype(np.float64)

    gen, true = embed(parts), embed([i.part for i in items])
    contexts = embed([i.context for i in items])
    mixes_gen = embed([i.context + p for i, p in zip(items, parts, strict=True)])
    mixes_true = embed([i.context + i.part for i in items])
    shuffled = np.roll(np.arange(len(items)), 1)
    mixes_shuffled = embed([items[int(j)].context + items[i].part for i, j in enumerate(shuffled)])
    joint = np.concatenate
    d_gen = frechet(joint([contexts, mixes_gen], 1), joint([contexts, mixes_true], 1))
    d_shuf = frechet(joint([contexts[shuffled], mixes_shuffled], 1), joint([contexts, mixes_true], 1))
    density, coverage = density_coverage(gen, true)

    def coherence(part_of) -> float:
        values = [
            score(scorer, ArraySource(item.context, sample_rate), ArraySource(part_of(i), sample_rate))[0] for i, item in enumerate(items)
        ]
        return float(np.mean(values))

    cocola = coherence(lambda i: parts[i])
    cocola_true = coherence(lambda i: items[i].part)
    cocola_random = coherence(lambda i: items[int(shuffled[i])].part)
    prompts = sorted({i.text for i in items})
    text_emb = clap_text.embed_text(prompts).numpy().astype(np.float64)
    own = np.array([prompts.index(i.text) for i in items])
    nearest = (gen @ text_emb.T).argmax(axis=1)
    out: dict[str, Any] = {
        "condition": condition,
        "items": len(items),
        "fad": frechet(gen, true),
        "kd": kernel_distance(gen, true),
        "density": density,
        "coverage": coverage,
        "apa": d_shuf / (d_shuf + d_gen) if d_shuf + d_gen > 0 else 0.5,
        "cocola": cocola,
        "cocola_true": cocola_true,
        "cocola_random": cocola_random,
        "cocola_ratio": cocola / cocola_true if cocola_true else float("nan"),
        "clap_aa": float(np.mean(np.sum(gen * true, axis=1))),
        "clap_ta": float(np.mean(np.sum(gen * text_emb[own], axis=1))),
        "text_retrieval": float(np.mean(nearest == own)),
        "text_retrieval_true": float(np.mean((true @ text_emb.T).argmax(axis=1) == own)),  # the encoders' own bound
        "text_chance": 1.0 / len(prompts),
        "audible": float(np.mean([_rms(p) >= AUDIBLE_RMS for p in parts])),
    }
    if "reference" in condition:
        out["clap_aa_reference"] = float(np.mean(np.sum(gen * embed([i.reference for i in items]), axis=1)))
    return out


def run_condition(
    model: Any,
    items: Sequence[RiffItem],
    *,
    condition: str,
    params: dict[str, Any],
    sample_rate: int,
    clap_audio: Any,
    clap_text: Any,
    scorer: Any,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate one part per item for `condition`, then score them: `score_parts`' figures plus
    `seconds_per_item`, the generation wall time per item (scoring excluded)."""
    import time

    t0 = time.perf_counter()
    parts = generate_parts(model, items, condition=condition, params=params, sample_rate=sample_rate, seed=seed)
    seconds = (time.perf_counter() - t0) / max(len(items), 1)
    scores = score_parts(
        parts, items, sample_rate=sample_rate, clap_audio=clap_audio, clap_text=clap_text, scorer=scorer, condition=condition
    )
    return {**scores, "seconds_per_item": round(seconds, 3)}
