"""Fixtures of the bridge tests (the echo export and `start_server` are shared, in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def stereo_mix():
    rng = np.random.default_rng(1)
    return (0.1 * rng.standard_normal((2, 20000))).astype(np.float32)
