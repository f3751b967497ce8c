"""SI-SDRi of GMSDI's separators (issue 15, thesis table 6.4), MSDM protocol windows at the model rate.

    for row in gmsdi_grid(model, windows, stems, methods=("separator",), scales=(1, 3), steps=10, likelihoods=("dirac_sym", "dirac")):
        print(row["avg_sisdri"])          # each row as soon as it is scored
    rows = gmsdi_extraction(model, root, split, classes=("organ", "strings", "brass"), ...)

`model` is the exported family model (`GMSDIModel`); each call binds the request's tags, as the
engine does. Windows with <= 1 sounding stem are skipped (MSDM's rule); the mixture of a window is
the sum of its stems, the windows' other classes included for extraction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

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
