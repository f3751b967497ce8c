"""Accompaniment coherence: COCOLA score of generated parts vs the true part vs a random part.

For each evaluation window (true stems (S, T) at the accompaniment model's rate) and each
target stem that is non-silent there, the context is the sum of the other stems; the model
generates the target from it (`Accompanist.accompany`, one candidate). Three parts are scored
against the context with a COCOLA `Scorer` through the engine's `apply.score` (resampling to the
scorer's rate, windowing, mean similarity):

- generated: the model's output for the target stem;
- true (upper bound): the window's own target stem;
- random (lower bound): the same stem class from a window of a different track.

Targets are only asked for where the true stem is non-silent (RMS above `RMS_FLOOR`, -50 dBFS,
as in `eval.accompaniment`), and random parts are drawn among non-silent ones, so the share of
generated parts above that floor is the share of non-silent outputs where one was due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stemlink.lab.eval.accompaniment import RMS_FLOOR
from stemlink.lab.eval.coherence import ScoreSummary


@dataclass
class AccompanimentScores:
    """Raw per-part scores; `summary()` gives the distributions and shares."""

    generated: list[float] = field(default_factory=list)
    true: list[float] = field(default_factory=list)
    random: list[float] = field(default_factory=list)
    generated_loud: int = 0
    per_stem: dict[str, list[float]] = field(default_factory=dict)  # stem -> generated - true score

    def summary(self) -> dict[str, Any]:
        from dataclasses import asdict

        n = len(self.generated)
        out: dict[str, Any] = {"parts": n}
        for kind in ("generated", "true", "random"):
            values = getattr(self, kind)
            out[kind] = asdict(ScoreSummary.of(kind, torch.tensor(values))) if len(values) > 1 else None
        out["generated_nonsilent"] = self.generated_loud / n if n else float("nan")
        out["generated_minus_true_by_stem"] = {s: float(np.mean(v)) for s, v in self.per_stem.items()}
        return out


def _score(scorer: Any, part: torch.Tensor, context: torch.Tensor, rate: int) -> float:
    """Similarity over the first scorer window (parts are cropped to it, so no zero-padded window
    enters the mean)."""
    from stemlink.audio.files import ArraySource
    from stemlink.engine.apply import score

    n = min(part.shape[-1], scorer.window * rate // scorer.sample_rate)
    part, context = part[..., :n], context[..., :n]
    a = ArraySource(np.ascontiguousarray(context.numpy()[None], dtype=np.float32), rate)
    b = ArraySource(np.ascontiguousarray(part.numpy()[None], dtype=np.float32), rate)
    return float(score(scorer, a, b)[0])


def accompaniment_scores(
    model: Any,
    scorer: Any,
    windows: Sequence[torch.Tensor],
    tracks: Sequence[str],
    *,
    params: Any,
    seed: int = 0,
    stems: Sequence[str] | None = None,
) -> AccompanimentScores:
    """windows: (S, T) true stems in `model.stems` order at `model.sample_rate`, T a valid length
    for the model; tracks[i]: the track of window i (random parts come from other tracks)."""
    stems = tuple(stems or model.stems)
    g = torch.Generator().manual_seed(seed)
    pick = np.random.default_rng(seed)
    out = AccompanimentScores()
    rate = model.sample_rate
    for i, w in enumerate(windows):
        rms = w.double().pow(2).mean(-1).sqrt()
        others_tracks = [j for j in range(len(windows)) if tracks[j] != tracks[i]]
        for name in stems:
            k = model.stems.index(name)
            if rms[k] < RMS_FLOOR:
                continue
            context_stems = tuple(s for s in model.stems if s != name)
            context = w[[model.stems.index(s) for s in context_stems]].sum(0)
            with torch.no_grad():
                gen = model.accompany(context[None], context_stems=context_stems, params=params, generator=g, callback=lambda d, t: None)[
                    0, k
                ]
            out.generated.append(_score(scorer, gen, context, rate))
            out.true.append(_score(scorer, w[k], context, rate))
            loud_elsewhere = [j for j in others_tracks if windows[j][k].double().pow(2).mean().sqrt() >= RMS_FLOOR]
            if loud_elsewhere:
                j = loud_elsewhere[int(pick.integers(len(loud_elsewhere)))]
                out.random.append(_score(scorer, windows[j][k], context, rate))
            out.generated_loud += int(gen.double().pow(2).mean().sqrt() >= RMS_FLOOR)
            out.per_stem.setdefault(name, []).append(out.generated[-1] - out.true[-1])
    return out
