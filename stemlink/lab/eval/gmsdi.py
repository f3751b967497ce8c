"""SI-SDRi of GMSDI's separators (issue 15, thesis table 6.4), MSDM protocol windows at the model rate.

    for row in gmsdi_grid(model, windows, stems, methods=("separator",), scales=(1, 3), steps=10, likelihoods=("dirac_sym", "dirac")):
        print(row["avg_sisdri"])          # each row as soon as it is scored
    rows = gmsdi_extraction(model, root, split, classes=("organ", "strings", "brass"), ...)
    row = gmsdi_generation(model, clap_audio, clap_text, windows, stems, count=8, steps=10, scale=3.0, negative=True)

`model` is the exported family model (`GMSDIModel`); each call binds the request's tags, as the
engine does. Windows with <= 1 sounding stem are skipped (MSDM's rule); the mixture of a window is
the sum of its stems, the windows' other classes included for extraction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from stemlink.lab.eval.separation import SeparationScores, evaluate, is_silent, protocol_windows, si_sdr


def _noop(done: int, total: int) -> None:
    pass


def gmsdi_grid(
    model: Any,
    windows: Sequence[torch.Tensor],
    stems: Sequence[str],
    *,
    methods: Sequence[str],
    scales: Sequence[float],
    steps: int,
    likelihoods: Sequence[str] = ("dirac_sym",),
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """One row per (likelihood, method, scale), yielded as soon as it is scored."""
    bound = model.bind("separate", tuple(stems))
    for likelihood in likelihoods:
        for method in methods:
            for w in scales:
                params = bound.parse_params("separate", {"steps": steps, "method": method, "scale": float(w), "likelihood": likelihood})
                g = torch.Generator().manual_seed(seed)
                scores: SeparationScores = evaluate(
                    partial(bound.separate, params=params, generator=g, callback=_noop), windows, stems, sample_rate=model.sample_rate
                )
                row = {"method": method, "likelihood": likelihood, "scale": w, "steps": steps, "windows": len(windows)}
                yield {**row, **scores.summary()}


def gmsdi_extraction(
    model: Any, root: str, split: str, *, classes: Sequence[str], scale: float, steps: int, limit: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Extractor SI-SDRi for classes beyond the four, each on the windows where it sounds."""
    vocab = tuple(model.stems)
    windows = protocol_windows(root, split, vocab, model.sample_rate, multiple_of=int(model.spec.config.get("hop", 1)))
    rows = []
    for cls in classes:
        k = vocab.index(cls)
        chosen = [w for w in windows if not bool(is_silent(w[None])[0, k]) and int((~is_silent(w[None])[0]).sum()) >= 2][:limit]
        gains = []
        for w in chosen:
            others = tuple(vocab[j] for j in range(len(vocab)) if j != k and not bool(is_silent(w[None])[0, j]))
            bound = model.bind("extract", (cls,), others)
            params = bound.parse_params("extract", {"steps": steps, "scale": float(scale)})
            mix = w.sum(dim=0, keepdim=True).float()
            est = bound.separate(mix, params=params, generator=torch.Generator().manual_seed(seed), callback=_noop)[:, 0]
            ref = w[k][None].float()
            gains.append(float(si_sdr(ref[:, None], est[:, None]) - si_sdr(ref[:, None], mix[:, None])))
        rows.append(
            {
                "class": cls,
                "windows": len(chosen),
                "sisdri": sum(gains) / len(gains) if gains else float("nan"),
                "scale": scale,
                "steps": steps,
            }
        )
    return rows


def _embed(clap_audio: Any, clips: Sequence[torch.Tensor], rate: int) -> torch.Tensor:
    """Mono clips at `rate` -> (N, D) unit embeddings of our CLAP audio tower, each clip at -20 dBFS RMS."""
    from stemlink.audio.resample import resample_array

    out = []
    for clip in clips:
        x = clip.double().numpy()
        x = x * (0.1 / max(float(np.sqrt(np.mean(x * x))), 1e-8))
        out.append(clap_audio.embed_audio(torch.from_numpy(resample_array(x[None], rate, clap_audio.sample_rate))[None]))
    return torch.cat(out)


def gmsdi_generation(
    model: Any,
    clap_audio: Any,
    clap_text: Any,
    real: Sequence[torch.Tensor],
    stems: Sequence[str],
    *,
    count: int,
    steps: int,
    scale: float,
    negative: bool,
    seed: int = 0,
) -> dict[str, Any]:
    """Total generation of `stems` together (`count` sets), each source prompted with its tag (and
    with `negative`, the other stems as its negative prompt: thesis fig. 6.4). Measured per
    generated source: audible (RMS >= AUDIBLE_RMS); classified as its prompt by our CLAP towers
    (nearest class name; the same classifier's accuracy on the `real` windows' sounding stems is
    the bound); Fréchet distance of the audible ones to the real stems on CLAP audio embeddings."""
    from stemlink.engine.tasks import AUDIBLE_RMS
    from stemlink.lab.eval.riff import frechet

    bound = model.bind("generate", tuple(stems))
    params = bound.parse_params("generate", {"steps": steps, "scale": float(scale), "negative": negative})
    g = torch.Generator().manual_seed(seed)
    gen = torch.cat([bound.generate(1, params=params, generator=g, callback=_noop) for _ in range(count)])  # (count, S, W)
    names = [s.replace("_", " ") for s in stems]
    text = clap_text.embed_text(names)
    labels = [(k, gen[n, k]) for n in range(count) for k in range(len(stems))]
    audible = [(k, x) for k, x in labels if float(x.pow(2).mean().sqrt()) >= AUDIBLE_RMS]
    real_clips = [(k, w[k]) for w in real for k, silent in enumerate(is_silent(w[None])[0].tolist()) if not silent]
    real_emb = _embed(clap_audio, [x for _, x in real_clips], model.sample_rate)
    real_right = (real_emb @ text.t()).argmax(dim=1) == torch.tensor([k for k, _ in real_clips])
    row: dict[str, Any] = {
        "negative": negative, "scale": scale, "steps": steps, "generated": len(labels), "audible": len(audible) / len(labels),
        "real_stems": len(real_clips), "real_classified": float(real_right.float().mean()), "chance": 1.0 / len(stems),
    }  # fmt: skip
    if audible:
        emb = _embed(clap_audio, [x for _, x in audible], model.sample_rate)
        right = (emb @ text.t()).argmax(dim=1) == torch.tensor([k for k, _ in audible])
        row["classified"] = float(right.float().mean())  # of the audible ones
        row["classified_of_all"] = float(right.sum()) / len(labels)  # a silent stem counts as not its class
        for k, name in enumerate(stems):
            mine = [i for i, (j, _) in enumerate(audible) if j == k]
            row[f"{name}_classified"] = float(right[mine].float().mean()) if mine else float("nan")
        row["frechet"] = frechet(emb.double().numpy(), real_emb.double().numpy()) if len(audible) > 1 else float("nan")
    return row
