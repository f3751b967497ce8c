"""Apply layer: exact lengths, mixture consistency, delay compensation, streaming == one-shot,
resampling round trips, seeded determinism, progress and cancellation (echo debug model)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from stemlink.audio.files import ArraySource, FileSource
from stemlink.audio.resample import array_reader, out_frames, resample_array, resample_span
from stemlink.engine.apply import ApplyConfig, WindowPlan, accompany_stream, collect, generate_stream, score, separate_stream
from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.echo import EchoModel
from stemlink.errors import Cancelled, InvalidInput
from stemlink.lab.export.echo import ECHO_TASKS
from stemlink.lab.nn.echo import ECHO_GAINS, ECHO_STEMS, EchoNet


def echo(rate: int = 16000, window: int = 2048, delay: int = 0, gains=ECHO_GAINS, tasks=ECHO_TASKS) -> EchoModel:
    """An in-memory echo model (no export): stems = gains x input delayed by `delay`."""
    spec = ModelSpec(
        name="echo",
        version="1",
        family="echo",
        tasks=tuple(tasks),
        format="torchscript",
        file="echo.pt",
        sha256="0" * 64,
        sample_rate=rate,
        stems=ECHO_STEMS,
        window=window,
        delay=delay,
    )
    return EchoModel(spec, EchoNet(gains, delay).eval())


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


@pytest.mark.parametrize("host_rate", [44100, 48000, 96000])
@pytest.mark.parametrize("model_rate", [8000, 16000, 22050])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_separate_exact_length_and_mixture_consistency(host_rate, model_rate, channels):
    frames = host_rate // 2 + 123  # not a multiple of anything
    mix = noise(channels, frames)
    # gains not summing to 1: only the mixture-consistency projection makes the stems sum to the mix
    model = echo(model_rate, window=1024, gains=(0.1, 0.2, 0.3, 0.1))
    out = collect(separate_stream(model, ArraySource(mix, host_rate)))
    assert out.shape == (4, channels, frames)
    assert np.abs(out.sum(axis=0) - mix).max() < 1e-6
    # channels are processed independently: silent channels give silent stems (before consistency)
    assert not np.allclose(out[:, 0], out[:, -1]) or channels == 1


def test_separate_channels_independent():
    mix = noise(2, 20000)
    mix[1] = 0.0
    out = collect(separate_stream(echo(22050, window=1024), ArraySource(mix, 44100)))
    assert np.abs(out[:, 1]).max() == 0.0
    # gains summing to 1: stems are gains x mix in the band below the model Nyquist
    ratio = np.sum(out[:, 0] * mix[0], axis=-1) / np.sum(mix[0] ** 2)
    assert np.all(ratio > 0)


@pytest.mark.parametrize("delay", [0, 37, 500])
def test_delay_compensation_same_rate_is_sample_exact(delay):
    frames, at = 10000, 4321
    x = np.zeros((1, frames), np.float32)
    x[0, at] = 1.0
    out = collect(accompany_stream(echo(16000, window=1024, delay=delay), ArraySource(x, 16000), context_stems=()))
    expected = np.zeros_like(out)
    expected[:, 0, at] = np.asarray(ECHO_GAINS, np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("host_rate,model_rate", [(44100, 16000), (48000, 22050), (96000, 8000)])
def test_delay_compensation_resampled_impulse_returns_at_same_sample(host_rate, model_rate):
    frames, at = host_rate, 30011
    x = np.zeros((2, frames), np.float32)
    x[:, at] = 1.0
    out = collect(accompany_stream(echo(model_rate, window=2048, delay=123), ArraySource(x, host_rate), context_stems=()))
    assert out.shape == (4, 2, frames)
    for s in range(4):
        assert int(np.argmax(np.abs(out[s, 0]))) == at


@pytest.mark.parametrize("block", [1000, 4096, 777])
@pytest.mark.parametrize("host_rate,model_rate", [(44100, 16000), (48000, 48000)])
def test_streaming_blocks_equal_one_shot(block, host_rate, model_rate):
    mix = noise(2, 3 * host_rate + 5)
    model = echo(model_rate, window=4096, delay=11)
    one = collect(separate_stream(model, ArraySource(mix, host_rate), config=ApplyConfig(block=0, batch=64)))
    blocks = list(separate_stream(model, ArraySource(mix, host_rate), config=ApplyConfig(block=block, batch=3)))
    assert max(b.shape[-1] for b in blocks) <= block
    np.testing.assert_allclose(np.concatenate(blocks, axis=-1), one, atol=1e-6)


def test_one_window_region_shorter_than_window():
    mix = noise(2, 50)
    out = collect(separate_stream(echo(16000, window=2048), ArraySource(mix, 44100)))
    assert out.shape == (4, 2, 50)
    assert np.abs(out.sum(0) - mix).max() < 1e-6


@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.25, 0.5])
def test_crossfade_weights_sum_to_one(overlap):
    plan = WindowPlan.build(frames=10000, window=1000, delay=100, overlap=overlap)
    total = np.zeros(plan.end)
    for k in range(plan.count):
        total[plan.start(k) : plan.start(k) + plan.span] += plan.weights(k)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert plan.end >= 10000


def test_overlap_out_of_range_is_rejected():
    with pytest.raises(InvalidInput, match="overlap"):
        ApplyConfig(overlap=0.7)


@pytest.mark.parametrize("a,b", [(44100, 16000), (48000, 22050), (96000, 8000), (16000, 44100), (44100, 48000)])
def test_resample_round_trip_band_limited_below_minus_80_db(a, b):
    t = np.arange(a) / a
    nyq = min(a, b) / 2
    x = sum(np.sin(2 * np.pi * f * nyq * t + p) for f, p in [(0.05, 0.0), (0.3, 1.0), (0.6, 2.0), (0.8, 0.5)])
    x = (0.2 * x)[None].astype(np.float32)
    y = resample_array(x, a, b)
    assert y.shape[-1] == out_frames(a, a, b)
    z = resample_array(y, b, a, frames=x.shape[-1])
    assert z.shape == x.shape
    inner = slice(a // 10, -a // 10)  # the signal is cut at both ends: judge the inside
    err_db = 10 * np.log10(np.mean((z[:, inner] - x[:, inner]) ** 2) / np.mean(x[:, inner] ** 2))
    assert err_db < -80, err_db


@pytest.mark.parametrize("a,b", [(44100, 16000), (22050, 48000), (44100, 44100)])
def test_resample_spans_equal_one_shot(a, b):
    x = noise(2, 9000)
    n = out_frames(9000, a, b)
    one = resample_span(array_reader(x), a, b, 0, n)
    cuts = [0, 1, 7, 160, 161, 2000, n]
    pieces = np.concatenate([resample_span(array_reader(x), a, b, s, e - s) for s, e in pairwise(cuts)], axis=-1)
    np.testing.assert_allclose(pieces, one, atol=1e-7)


def test_generate_seeded_dual_mono():
    model = echo(16000, window=1024)
    a = collect(generate_stream(model, 30000, 44100, 2, seed=7))
    b = collect(generate_stream(model, 30000, 44100, 2, seed=7, config=ApplyConfig(block=999)))
    c = collect(generate_stream(model, 30000, 44100, 2, seed=8))
    assert a.shape == (4, 2, 30000)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    np.testing.assert_array_equal(a[:, 0], a[:, 1])


def test_accompany_is_dual_mono_of_mid():
    ctx = noise(2, 8000)
    out = collect(accompany_stream(echo(8000, window=512), ArraySource(ctx, 8000), context_stems=("bass",)))
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_allclose(out[0, 0], ECHO_GAINS[0] * ctx.mean(axis=0), atol=1e-6)


def test_progress_reaches_total_and_cancel_propagates():
    model = echo(16000, window=1024)
    seen = []
    collect(
        separate_stream(
            model,
            ArraySource(noise(2, 16000), 16000),
            params=model.parse_params("separate", {"steps": 3}),
            callback=lambda d, t: seen.append((d, t)),
        )
    )
    assert seen[-1][0] == seen[-1][1] and all(a[0] <= b[0] for a, b in pairwise(seen))

    def cancel(done, total):
        if done >= 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        collect(separate_stream(model, ArraySource(noise(2, 16000), 16000), callback=cancel))


def test_score_identical_is_one_and_counts_windows():
    x = noise(2, 44100)
    value, windows = score(echo(16000, window=4000), ArraySource(x, 44100), ArraySource(x, 44100))
    assert windows == -(-16000 // 4000)
    assert value == pytest.approx(1.0, abs=1e-5)


def test_empty_region_is_invalid():
    with pytest.raises(InvalidInput):
        collect(separate_stream(echo(), ArraySource(np.zeros((2, 0), np.float32), 16000)))


def test_file_source_reads_region_zero_padded(tmp_path):
    from pedalboard.io import AudioFile

    x = noise(2, 5000)
    path = tmp_path / "x.wav"
    with AudioFile(str(path), "w", 48000, 2, bit_depth=32) as f:
        f.write(x)
    with FileSource(path, offset=1000, frames=2000) as src:
        assert (src.sample_rate, src.channels, src.frames) == (48000, 2, 2000)
        got = src.read(-10, 2020)
    np.testing.assert_array_equal(got[:, 10:2010], x[:, 1000:3000])
    assert not got[:, :10].any() and not got[:, 2010:].any()
    with pytest.raises(InvalidInput, match="outside"):
        FileSource(path, offset=4000, frames=2000)
    with pytest.raises(InvalidInput, match="not found"):
        FileSource(tmp_path / "missing.wav")


@pytest.mark.parametrize("host_rate", [44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_file_region_exact_length(tmp_path, host_rate, channels):
    """From a file region (not the whole file) at any rate/layout: exact length, stems sum to it."""
    from pedalboard.io import AudioFile

    x = noise(channels, host_rate)
    path = tmp_path / "x.wav"
    with AudioFile(str(path), "w", host_rate, channels, bit_depth=32) as f:
        f.write(x)
    offset, frames = 1234, host_rate // 3 + 1
    with FileSource(path, offset=offset, frames=frames) as src:
        out = collect(separate_stream(echo(16000, window=2048, delay=5), src, config=ApplyConfig(block=5000)))
    assert out.shape == (4, channels, frames)
    np.testing.assert_allclose(out.sum(axis=0), x[:, offset : offset + frames], atol=1e-6)


class ToneSource:
    """A synthetic stereo source computed on demand (nothing region-sized in memory)."""

    def __init__(self, frames: int, sample_rate: int):
        self.frames, self.sample_rate, self.channels = frames, sample_rate, 2

    def read(self, start: int, n: int) -> np.ndarray:
        t = np.arange(start, start + n)
        out = np.stack([np.sin(0.01 * t), np.cos(0.013 * t)]).astype(np.float32)
        out[:, (t < 0) | (t >= self.frames)] = 0.0
        return out


def test_memory_is_flat_in_region_length():
    """Peak Python-heap allocation while streaming 10x more audio stays within 1.2x."""
    import tracemalloc

    model = echo(8000, window=4096, delay=3)

    def peak(seconds: int) -> int:
        tracemalloc.start()
        total = 0
        for block in separate_stream(model, ToneSource(seconds * 16000, 16000), config=ApplyConfig(block=4096)):
            total += block.shape[-1]
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total == seconds * 16000
        return top

    for _ in separate_stream(model, ToneSource(16000, 16000)):  # warm-up (lazy imports, filter design)
        pass
    short, long = peak(2), peak(20)
    assert long < 1.2 * short, (short, long)


@pytest.mark.parametrize(
    "task, stems, names",
    [("separate", ("drums",), ["drums"]), ("extract", ("bass",), ["bass", "residual"]), ("remove", ("bass", "piano"), ["mix"])],
)
def test_run_task_holds_only_the_returned_stems(task, stems, names):
    """Memory: the result arrays' common buffer is exactly (returned stems, C, N) float32, and
    extract/remove still sum as defined (stems kept + residual == mix)."""
    from stemlink.contract import TaskRequest
    from stemlink.engine.tasks import run_task

    mix = noise(2, 30000)
    model = echo(16000, window=1024)
    result = run_task(model, TaskRequest(task=task, sample_rate=44100, inputs={"mix": mix}, stems=stems))
    assert list(result.stems) == names
    base = next(iter(result.stems.values())).base
    assert base is not None and base.nbytes == len(names) * mix.nbytes
    full = run_task(model, TaskRequest(task="separate", sample_rate=44100, inputs={"mix": mix})).stems
    if task == "extract":
        np.testing.assert_allclose(result.stems["bass"], full["bass"], atol=1e-6)
        np.testing.assert_allclose(result.stems["bass"] + result.stems["residual"], mix, atol=1e-6)
    if task == "remove":
        np.testing.assert_allclose(result.stems["mix"], mix - full["bass"] - full["piano"], atol=1e-6)


@pytest.mark.parametrize("host_rate", [383999, 1009])
def test_odd_host_rate_exact_length_and_bounded_filter(host_rate):
    """An odd host rate (no small ratio to the model's) is served by the bounded resampler:
    exact length, stems summing to the mix, and a filter table of at most `MAX_TAPS` values
    (the exact polyphase design for 383999 -> 8000 Hz would have 24.6M taps)."""
    from stemlink.audio.resample import MAX_TAPS, table_size

    x = noise(2, host_rate // 4)
    out = collect(separate_stream(echo(8000, window=2048, delay=3), ArraySource(x, host_rate), config=ApplyConfig(block=7777)))
    assert out.shape == (4, 2, x.shape[-1])
    np.testing.assert_allclose(out.sum(axis=0), x, atol=1e-5)
    assert max(table_size(host_rate, 8000), table_size(8000, host_rate)) <= MAX_TAPS
