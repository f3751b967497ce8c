"""The mma source: MMA groove tracks become class stems with dropouts; seeded."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stemlink.lab.data.classes import CLASSES
from stemlink.lab.data.sources import compose

pytestmark = pytest.mark.skipif(shutil.which("mma") is None, reason="Debian mma not installed (bash setup.sh install)")


def test_mma_song_has_class_stems_and_is_seeded():
    a = compose("mma", np.random.default_rng([3, 1]), 12.0)
    b = compose("mma", np.random.default_rng([3, 1]), 12.0)
    assert a.source == "mma" and a.meta["style"].startswith("mma-") and "drums" in a.parts
    assert len(a.parts) >= 2
    assert all(type(p.program) is int for p in a.parts.values())
    for key, part in a.parts.items():
        assert key.split("_")[0] in CLASSES or key.rsplit("_", 1)[0] in CLASSES
        assert [(n.pitch, n.start) for n in part.notes] == [(n.pitch, n.start) for n in b.parts[key].notes]
        assert all(n.start < 13.0 for n in part.notes)
    sections = a.meta["sections"]
    assert sections and sections[0]["start"] == 0.0
    for key, part in a.parts.items():  # notes only where the section lets the stem play
        for n in part.notes:
            sec = max((s for s in sections if s["start"] <= n.start + 1e-9), key=lambda s: s["start"])
            assert key in sec["active"]
