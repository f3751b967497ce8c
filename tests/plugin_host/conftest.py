"""Shared fixtures of the host tests."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile


@pytest.fixture
def cli_workdir(tmp_path, monkeypatch):
    """tmp_path as the working folder of a CLI run: no engine address, presets under it,
    and `mix.wav` (1 s of stereo noise at 44.1 kHz, 16-bit) in it."""
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.setenv("STEMLINK_PRESETS", str(tmp_path / "presets"))
    monkeypatch.chdir(tmp_path)
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 44100))).astype(np.float32)
    with AudioFile(str(tmp_path / "mix.wav"), "w", 44100, 2, bit_depth=16) as f:
        f.write(x)
    return tmp_path
