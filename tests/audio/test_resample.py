"""The one resampler: exact lengths at any rate, spans equal one shot, and a filter table bounded
in size whatever the ratio (an odd host rate such as 383999 Hz must not design a 24.6M-tap filter)."""

from __future__ import annotations

import tracemalloc
from itertools import pairwise

import numpy as np
import pytest

from stemlink.audio.resample import (
    DEFAULT_FILTER,
    KERNEL_STEPS,
    FilterSpec,
    array_reader,
    fingerprint,
    input_span,
    out_frames,
    polyphase,
    resample_array,
    resample_span,
    table_size,
)

KERNEL = FilterSpec(max_taps=0)  # forces the bounded kernel method for every pair
ODD = [(383999, 8000), (8000, 383999), (383999, 44100), (99991, 16000), (1009, 22050)]


def tones(rate: int, other: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    nyq = min(rate, other) / 2
    x = sum(np.sin(2 * np.pi * f * nyq * t + p) for f, p in [(0.05, 0.0), (0.3, 1.0), (0.6, 2.0), (0.8, 0.5)])
    return (0.2 * x)[None].astype(np.float32)


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


@pytest.mark.parametrize("a,b", ODD)
def test_odd_rates_design_a_bounded_table(a, b):
    assert not polyphase(a, b)
    assert table_size(a, b) <= 2 * (2 * DEFAULT_FILTER.zeros * KERNEL_STEPS)  # ~33-37k values, not 2 * 32 * max(up, down)
    assert table_size(44100, 48000) == 2 * 32 * 160 + 1 and polyphase(44100, 48000)  # common pairs keep the polyphase filter
    assert table_size(44100, 44100) == 0


def test_odd_rate_span_allocates_megabytes_not_a_gigabyte():
    """Converting one 4096-sample model window from a 383999 Hz host stream: the old exact
    polyphase design took ~1.2 GB; the bounded kernel stays within a few tens of MB."""
    x = noise(2, 400_000)
    tracemalloc.start()
    try:
        y = resample_span(array_reader(x), 383999, 8000, 100, 4096)
        back = resample_span(array_reader(y), 8000, 383999, 0, 50_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.shape == (2, 4096) and back.shape == (2, 50_000)
    assert peak < 64 * 2**20, peak


@pytest.mark.parametrize("a,b", [*ODD, (44100, 16000), (16000, 44100), (48000, 22050)])
def test_kernel_round_trip_band_limited_below_minus_80_db(a, b):
    spec = KERNEL if polyphase(a, b) else DEFAULT_FILTER
    x = tones(a, b)
    y = resample_array(x, a, b, spec=spec)
    assert y.shape[-1] == out_frames(x.shape[-1], a, b)
    z = resample_array(y, b, a, frames=x.shape[-1], spec=spec)
    inner = slice(a // 10, -a // 10)
    err_db = 10 * np.log10(np.mean((z[:, inner] - x[:, inner]) ** 2) / np.mean(x[:, inner] ** 2))
    assert err_db < -80, err_db


@pytest.mark.parametrize("a,b", [(44100, 16000), (22050, 48000), (8000, 44100)])
def test_kernel_agrees_with_polyphase(a, b):
    """Both methods compute the same filter: outputs agree far below the -80 dB design target."""
    x = tones(a, b)
    poly, kern = resample_array(x, a, b), resample_array(x, a, b, spec=KERNEL)
    err_db = 10 * np.log10(np.mean((poly - kern) ** 2) / np.mean(poly**2))
    assert err_db < -95, err_db


@pytest.mark.parametrize("a,b", ODD[:3])
def test_kernel_spans_equal_one_shot_and_read_only_their_input_span(a, b):
    x = noise(2, 20_000 if a > b else 1000)
    n = out_frames(x.shape[-1], a, b)
    one = resample_span(array_reader(x), a, b, 0, n)
    cuts = [0, 1, 7, 160, 161, n // 2, n - 3, n]
    pieces = np.concatenate([resample_span(array_reader(x), a, b, s, e - s) for s, e in pairwise(cuts)], axis=-1)
    np.testing.assert_array_equal(pieces, one)  # each output depends on its exact position only
    seen = []

    def read(start, count):
        seen.append((start, count))
        return array_reader(x)(start, count)

    resample_span(read, a, b, 123, 456)
    assert seen == [input_span(a, b, 123, 456)]


@pytest.mark.parametrize("rate", [1000, 1001, 7999, 44099, 191999, 383999, 384000])
@pytest.mark.parametrize("model_rate", [8000, 44100])
def test_exact_output_length_and_timeline_at_any_rate(rate, model_rate):
    """Exact lengths both ways, and output sample k at input position k * in / out: a unit
    impulse at host sample p comes back (host -> model -> host) peaking at p."""
    frames = rate // 5 + 3
    p = frames // 2
    x = np.zeros((1, frames), np.float32)
    x[0, p] = 1.0
    y = resample_array(x, rate, model_rate)
    assert y.shape[-1] == out_frames(frames, rate, model_rate)
    z = resample_array(y, model_rate, rate, frames=frames)
    assert z.shape == (1, frames)
    assert abs(int(np.argmax(z[0])) - p) <= max(1, rate // model_rate // 2)


def test_fingerprint_names_the_filter():
    assert fingerprint() != fingerprint(FilterSpec(zeros=16))
    assert fingerprint() != fingerprint(KERNEL)
    assert fingerprint() == fingerprint(FilterSpec())
