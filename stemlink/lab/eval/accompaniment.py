"""Accompaniment check for MSDM: how often generated stems are silent.

For each test window and each single context stem c (a non-silent one), the model
generates the other stems; a generated stem counts as non-silent when its RMS is above
`rms_floor` (default -50 dBFS). Reported next to the same share for the true stems of the
same windows, with and without `best_of` candidate selection (loudest candidate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from stemlink.engine.tasks import AUDIBLE_RMS as RMS_FLOOR  # one definition of "silent" for ranking and evaluation


def nonsilent_share(
    model: Any, windows: Sequence[torch.Tensor], params: Any, *, seed: int = 0, rms_floor: float = RMS_FLOOR
) -> dict[str, float]:
    """windows: (S, T) true stems at the model rate with T == model.window."""
    stems = model.stems
    gen_loud = gen_total = true_loud = 0
    g = torch.Generator().manual_seed(seed)
    for w in windows:
        rms = w.pow(2).mean(-1).sqrt()
        for c, name in enumerate(stems):
            if rms[c] < rms_floor:
                continue
            with torch.no_grad():
                out = model.accompany(w[c][None], context_stems=(name,), params=params, generator=g, callback=lambda d, t: None)
            others = [k for k in range(len(stems)) if k != c]
            gen_rms = out[0, others].pow(2).mean(-1).sqrt()
            gen_loud += int((gen_rms >= rms_floor).sum())
            true_loud += int((rms[others] >= rms_floor).sum())
            gen_total += len(others)
    return {
        "generated_nonsilent": gen_loud / max(gen_total, 1),
        "true_nonsilent": true_loud / max(gen_total, 1),
        "stems_generated": gen_total,
    }
