"""The apply layer's stereo-pair policy: a model with `channels == 2` sees (B, 2, W) channel pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from stemlink.audio.files import ArraySource
from stemlink.engine.apply import ApplyConfig, channel_pairs, collect, generate_stream, separate_stream
from stemlink.engine.models.base import EngineModel, Generator, ModelSpec, Separator


class CrossTalk(EngineModel, Separator, Generator):
    """Stem "both" = (L + R) / 4 on both channels, "rest" = mix - both: wrong unless L and R arrive together."""

    channels = 2

    def __init__(self, rate: int = 44100, window: int = 4096):
        super().__init__(
            ModelSpec(
                name="crosstalk",
                version="1",
                family="test",
                tasks=("separate", "generate"),
                format="onnx",
                file="x.onnx",
                sha256="0" * 64,
                sample_rate=rate,
                stems=("both", "rest"),
                window=window,
            )
        )
        self.shapes: list[tuple[int, ...]] = []

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: Any) -> torch.Tensor:
        self.shapes.append(tuple(mix.shape))
        both = mix.sum(dim=1, keepdim=True).expand_as(mix) / 4
        return torch.stack([both, mix - both], dim=1)

    def generate(self, batch: int, *, params: Any, generator: torch.Generator, callback: Any) -> torch.Tensor:
        left = torch.ones(batch, 1, self.window) * 0.5
        return torch.stack([torch.cat([left, -left], dim=1), torch.zeros(batch, 2, self.window)], dim=1)


def tones(channels: int, frames: int) -> np.ndarray:
    t = np.arange(frames) / 44100
    return np.stack([0.3 * np.sin(2 * np.pi * (100 + 50 * c) * t) for c in range(channels)]).astype(np.float32)


def test_channel_pairs_duplicate_an_odd_last_channel():
    assert channel_pairs(1) == [(0, 0)]
    assert channel_pairs(2) == [(0, 1)]
    assert channel_pairs(5) == [(0, 1), (2, 3), (4, 4)]
    assert channel_pairs(6) == [(0, 1), (2, 3), (4, 5)]


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_pairs_reach_the_model_together_and_odd_channels_are_averaged(channels):
    model = CrossTalk()
    mix = tones(channels, 10_001)
    out = collect(separate_stream(model, ArraySource(mix, 44100), config=ApplyConfig(batch=3)))
    assert out.shape == (2, channels, 10_001)
    assert all(len(s) == 3 and s[1:] == (2, 4096) for s in model.shapes)
    expected = np.empty_like(mix)
    for a, b in channel_pairs(channels):
        expected[a] = expected[b] = (mix[a] + mix[b]) / 4  # a duplicated channel: (c + c) / 4 on both, mean = c / 2
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=0), mix, atol=1e-6)


def test_pairs_across_rates_keep_length_and_mixture_consistency():
    mix = tones(2, 48_001)
    out = collect(separate_stream(CrossTalk(), ArraySource(mix, 48000)))
    assert out.shape == (2, 2, 48_001)
    np.testing.assert_allclose(out.sum(axis=0), mix, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_generate_with_a_pair_model_keeps_its_stereo_image(channels):
    out = collect(generate_stream(CrossTalk(), 5000, 44100, channels=channels))
    assert out.shape == (2, channels, 5000)
    if channels == 1:
        np.testing.assert_allclose(out, 0.0, atol=1e-6)  # +0.5 and -0.5: a mono host gets the mean
    else:
        np.testing.assert_allclose(out[0, 0::2], 0.5, atol=1e-6)  # left on the even channels
        np.testing.assert_allclose(out[0, 1::2], -0.5, atol=1e-6)  # right on the odd ones


class StereoEcho(CrossTalk):
    """accompany returns its stereo context, swapped: L <- R, R <- L (so pairs must arrive in order)."""

    def __init__(self):
        super().__init__()
        self.spec = type(self.spec)(**{**self.spec.__dict__, "tasks": ("accompany",)})

    def accompany(self, context, *, context_stems, params, generator, callback):
        self.shapes.append(tuple(context.shape))
        return torch.stack([context.flip(1), torch.zeros_like(context)], dim=1)


def test_accompany_with_a_pair_model_reads_the_stereo_fold_and_keeps_stereo():
    from stemlink.engine.apply import accompany_stream

    model = StereoEcho()
    mix = tones(2, 9001)
    out = collect(accompany_stream(model, ArraySource(mix, 44100), context_stems=("rest",)))
    assert out.shape == (2, 2, 9001) and all(s[1] == 2 for s in model.shapes)
    np.testing.assert_allclose(out[0], mix[::-1], atol=1e-5)
    six = tones(6, 9001)  # 5.1: left = mean of channels 0, 2, 4; right = mean of 1, 3, 5
    out6 = collect(accompany_stream(StereoEcho(), ArraySource(six, 44100), context_stems=("rest",)))
    np.testing.assert_allclose(out6[0, 0], six[1::2].mean(0), atol=1e-5)
    np.testing.assert_allclose(out6[0, 3], six[0::2].mean(0), atol=1e-5)


class Ramp(CrossTalk):
    """A continuing stereo generator: each window is a ramp that starts where `previous` (its own
    last output over this window's first samples) starts, or at 0; right = -left."""

    continues = True

    def __init__(self, window: int = 4096):
        super().__init__(window=window)
        self.previous: list[tuple[int, ...] | None] = []

    def generate(self, batch, *, params, generator, callback, previous=None):
        self.previous.append(None if previous is None else tuple(previous.shape))
        start = torch.zeros(batch) if previous is None else previous[:, 0, 0, 0]
        left = start[:, None] + torch.arange(self.window, dtype=torch.float32)[None] / self.window
        return torch.stack([torch.stack([left, -left], 1), torch.zeros(batch, 2, self.window)], 1)


def test_a_continuing_model_runs_window_after_window_and_joins_without_seams():
    model = Ramp()
    frames = 20_000
    out = collect(generate_stream(model, frames, 44100, channels=2, config=ApplyConfig(batch=8)))
    overlap = round(0.25 * 4096)
    assert model.previous[0] is None and all(p == (1, 2, 2, overlap) for p in model.previous[1:])
    assert len(model.previous) > 4  # one window per call, although batch 8 would fit them all
    want = np.arange(frames, dtype=np.float32) / 4096  # one ramp across every window boundary
    np.testing.assert_allclose(out[0, 0], want, atol=1e-4)
    np.testing.assert_allclose(out[0, 1], -want, atol=1e-4)
