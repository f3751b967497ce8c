"""The chorale source: four voices from a music21 Bach chorale, seeded, distinct per track."""

from __future__ import annotations

import numpy as np

from stemlink.lab.data.chorales import VOICES
from stemlink.lab.data.sources import compose


def _song(index: int):
    return compose("chorales", np.random.default_rng([5, index]), 12.0, seed=5, index=index)


def test_chorale_voices_and_metadata():
    plan = _song(0)
    assert plan.source == "chorales" and len(plan.parts) == 4
    voices = [plan.stem_meta[k]["voice"] for k in plan.parts]
    assert voices == list(VOICES)
    means = [np.mean([n.pitch for n in p.notes]) for p in plan.parts.values()]
    assert means == sorted(means, reverse=True)  # soprano above alto above tenor above bass
    for part in plan.parts.values():
        assert part.notes and min(n.start for n in part.notes) < 2.0
        assert max(n.start for n in part.notes) >= 10.0  # fills the requested length
    assert plan.meta["chorale"].endswith(".mxl") and plan.meta["key"] and "chorale" in plan.tags


def test_chorales_are_seeded_and_distinct_per_track():
    a, b = _song(0), _song(0)
    assert [(n.pitch, n.start) for n in a.parts[next(iter(a.parts))].notes] == [
        (n.pitch, n.start) for n in b.parts[next(iter(b.parts))].notes
    ]
    assert _song(1).meta["chorale"] != a.meta["chorale"]
