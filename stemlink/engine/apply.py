"""Apply a model to a region of any length, rate and channel count (the one shared apply layer).

Models see windows of exactly `model.window` samples at `model.sample_rate`: mono windows,
or stereo pairs for a model that declares `channels == 2` (see the stereo-pair policy below).
This module does the rest, streaming, so its own memory stays flat in region length (what a
caller keeps of the blocks is the caller's: see Memory below):

1. Windows (in the model-rate domain). With `span = window - delay` useful samples per
   window, `overlap = round(config.overlap * span)` and `hop = span - overlap`, window k
   reads model-rate input samples `[k*hop, k*hop + window)` and its output samples
   `[delay, window)` answer input samples `[k*hop, k*hop + span)` (delay compensation:
   output sample t of a network answers input sample t - delay).
2. Resampling host rate -> model rate per window, with margins (`stemlink.audio.resample`,
   exact-length and streaming-safe: a span converted alone equals the same span of a
   one-shot conversion).
3. Batching: `config.batch` mono windows per model call; progress `callback(done, total)`
   after every network step the model reports and after every call; cancellation = the
   callback raising (e.g. `Cancelled`), honoured within one step.
4. Overlap-add with raised-cosine crossfades (sin^2 up, cos^2 down, weights summing to 1;
   the region's first and last window are not faded at the outer edge).
5. Model rate -> host rate, emitted as consecutive host-rate blocks `(S, C, n)` whose lengths
   sum to exactly the region's `frames`. Block boundaries never change the audio.

Memory: the stream holds only the windows in flight and an overlap-add buffer of about
`batch` windows (~25 MB for the shipped models, whatever the region length). The product path
is not flat: `stemlink/engine/tasks.py` writes the blocks into one preallocated array (keeping
only the stems asked for) and the engine holds the request's input, so a request peaks at
~= input bytes x (1 + stems kept) + model (25 min stereo 44.1 kHz into 4 stems: 5.05x the
input; `bench/reliability-memory.json`). Only a caller that consumes the blocks as they come
(`stemlink/apps/bench/scale.py` without `--engine`) runs in flat memory.

Stereo and multichannel policy:
- separate: every channel is processed independently (channels are folded into the batch; for
  stereo-pair models, every pair: below),
  so a stereo (or 5.1) mix gives stereo (5.1) stems. Mixture consistency: after overlap-add
  and resampling back, the residual `mix - sum(stems)` (mostly the band above the model's
  Nyquist) is shared among the stems in proportion to their energy at the top of the model's
  band (`stemlink/engine/residual.py`; `ApplyConfig(residual="equal")` shares it equally), so the stems sum
  to the input exactly (float32 rounding only).
  Level: a separation window (model rate, one channel) quieter than `SEPARATION_RMS`
  (-20 dBFS, about the training mixes' level) is raised to it for the model and its stems
  lowered by the same gain; louder windows are untouched. A diffusion separator ignores a
  quiet input and returns loud stems that cancel (msdm-small on the demo song 40 dB down:
  stems 9-23 dB above the true ones, SI-SDR -27 dB; with the gain: as at full level,
  `stemlink/apps/bench/quiet_separation.py`). A window whose input peaks below `SILENCE_PEAK`
  (-80 dBFS) is not run at all: its stems are zero and the mixture consistency hands the
  mix to them, so digital silence in gives exact zeros out.
- accompany / generate: run once on the mid channel (mean of all channels) and return
  identical channels (dual mono), so a generated part is one coherent performance; a
  stereo-pair model (below) runs once on the stereo fold instead and its part stays stereo.
  `generate` has no input: it runs the generator for every window and crossfades them, so a
  region longer than one window is a chain of independent performances joined by crossfades
  (continuation across windows needs a model that can condition on the previous window).
  A model with `continues = True` (the riff family) is run window after window and given its own
  output of the previous window over the overlap (`previous=`), so it continues one performance
  and the crossfade joins two renderings of the same audio.
- score: both inputs are downmixed to mono, cut into non-overlapping windows, embedded, and
  the per-window similarities averaged.

Stereo-pair models (`model.channels == 2`; models without the attribute are mono, and run
exactly as described above): a stereo-native network (e.g. a user's demucs / MDX-Net /
RoFormer separator, `stemlink/engine/models/byo.py`) is fed (B, 2, W) windows of channel
pairs and must return (B, S, 2, W). The host channels are paired in order: (0, 1), (2, 3), ...
(5.1: L/R, C/LFE, Ls/Rs); an odd last channel (a mono region's only one, the 3rd of 3) is
duplicated to both inputs of its pair, and its stems are the mean of the pair's two outputs.
Everything else is as for mono models, one pair per lane: windows, resampling, batching
(`config.batch` pairs per call), crossfades, seeds (the pair's index as the channel),
mixture consistency (stems sum to the input exactly) and the level rule (one gain per pair,
from the RMS and peak of both channels, so the stereo image is kept). accompany / generate
with such a model (a stereo generator such as the Diff-A-Riff family): one lane, fed the host
region folded to stereo (`StereoSource`: left = mean of the even channels, right = mean of the
odd ones, mono on both), and its stereo output unfolded back (`unfold_stereo`: mono hosts get
the mean, even channels the left, odd channels the right).

Determinism: each model call gets a `torch.Generator` seeded from (seed, index of the call's
first window, its channel). The grouping of windows into calls depends only on the region
length, channel count and `config.batch`, so the same request and config give the same
audio, whatever block size the caller reads the output in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch

from stemlink.audio.files import AudioSource, MidSource, StereoSource, unfold_stereo
from stemlink.audio.resample import DEFAULT_FILTER, FilterSpec, input_span, out_frames, resample_span
from stemlink.engine.models.base import EngineModel, ProgressCallback
from stemlink.engine.residual import MODES as RESIDUAL_MODES
from stemlink.engine.residual import ResidualSplit
from stemlink.errors import InvalidInput, StemlinkError

SILENCE_PEAK = 1e-4  # -80 dBFS: a separation window whose input peak is lower is not given to the model
SEPARATION_RMS = 0.1  # -20 dBFS: quieter separation windows are raised to this RMS for the model (0 = off)
MAX_GAIN = 1e4  # +80 dB at most
# batch (B, W) float32 model-rate windows ((B, 2, W) for stereo-pair models; None for generate),
# batch size, generator[, previous= for continuing models: see `stream`] -> (B, S, W) ((B, S, 2, W))
WindowFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class ApplyConfig:
    """How a model is run over a region. `overlap` is a fraction of the useful window in [0, 0.5]."""

    overlap: float = 0.25
    batch: int = 4  # mono windows per model call
    block: int = 0  # max host frames per emitted block; 0 = whatever a model call completes
    filter: FilterSpec = DEFAULT_FILTER
    residual: str = "band"  # separation: how mix - sum(stems) is shared ("band" or "equal"; stemlink/engine/residual.py)

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap <= 0.5:
            raise InvalidInput(f"overlap must be within [0, 0.5], got {self.overlap}", field="overlap")
        if self.batch < 1:
            raise InvalidInput(f"batch must be >= 1, got {self.batch}", field="batch")
        if self.block < 0:
            raise InvalidInput(f"block must be >= 0, got {self.block}", field="block")
        if self.residual not in RESIDUAL_MODES:
            raise InvalidInput(f"residual must be one of {', '.join(RESIDUAL_MODES)}, got {self.residual!r}", field="residual")


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of a `frames`-long model-rate stream start, and their crossfades."""

    window: int
    delay: int
    frames: int
    overlap: int
    count: int

    @classmethod
    def build(cls, frames: int, window: int, delay: int, overlap: float) -> WindowPlan:
        span = window - delay
        if span < 2:
            raise StemlinkError(f"model window {window} with delay {delay} leaves no usable samples")
        fade = int(round(overlap * span))
        hop = span - fade
        count = 1 + max(0, -(-(frames - span) // hop))
        return cls(window=window, delay=delay, frames=frames, overlap=fade, count=count)

    @property
    def span(self) -> int:
        return self.window - self.delay

    @property
    def hop(self) -> int:
        return self.span - self.overlap

    def start(self, k: int) -> int:
        return k * self.hop

    @property
    def end(self) -> int:
        """One past the last model-rate sample any window writes."""
        return self.start(self.count - 1) + self.span

    def weights(self, k: int) -> np.ndarray:
        """(span,) crossfade weights of window k; overlapping weights of neighbours sum to 1."""
        w = np.ones(self.span, dtype=np.float32)
        if self.overlap:
            up = np.sin(0.5 * np.pi * (np.arange(self.overlap) + 0.5) / self.overlap) ** 2
            if k > 0:
                w[: self.overlap] = up
            if k < self.count - 1:
                w[self.span - self.overlap :] = 1.0 - up
        return w


def channel_pairs(channels: int) -> list[tuple[int, int]]:
    """The stereo pairs fed to a stereo-pair model: (0, 1), (2, 3), ...; an odd last channel is paired with itself."""
    return [(c, min(c + 1, channels - 1)) for c in range(0, channels, 2)]


def model_channels(model: Any) -> int:
    """1 (mono windows, the default) or 2 (stereo pairs): `model.channels`."""
    channels = getattr(model, "channels", 1)
    if channels not in (1, 2):
        raise StemlinkError(f"model {getattr(model, 'name', '?')!r} declares channels={channels!r}; the apply layer feeds 1 or 2")
    return int(channels)


def model_continues(model: Any) -> bool:
    """`model.continues`: its accompany/generate take `previous=` (see `stream`) and run window after window."""
    return bool(getattr(model, "continues", False))


def _previous(more: dict[str, Any]) -> dict[str, Any]:
    """The `previous=` keyword for a continuing model's call, as a tensor (absent for other models)."""
    if "previous" not in more:
        return {}
    prev = more["previous"]
    return {"previous": None if prev is None else torch.from_numpy(prev)}


def seed_for(seed: int, window: int, channel: int = 0) -> int:
    """A 63-bit seed derived from the request seed, a window index and a channel."""
    state = np.random.SeedSequence([int(seed) & (2**64 - 1), window, channel]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class _Progress:
    """Maps per-call network steps to one (done, total) over the whole region."""

    def __init__(self, callback: ProgressCallback | None, calls: int):
        self.callback, self.calls, self.call, self.steps = callback, calls, 0, 1

    def step(self, done: int, total: int) -> None:
        self.steps = max(int(total), 1)
        if self.callback is not None:
            self.callback(self.call * self.steps + int(done), self.calls * self.steps)

    def finish_call(self) -> None:
        self.call += 1
        if self.callback is not None:
            self.callback(self.call * self.steps, self.calls * self.steps)


class _Accumulator:
    """Model-rate overlap-add buffer (S, C, length) over samples [base, base + length)."""

    def __init__(self, stems: int, channels: int):
        self.base = 0
        self.data = np.zeros((stems, channels, 0), dtype=np.float32)

    def add(self, start: int, channel: int | slice, block: np.ndarray) -> None:
        end = start + block.shape[-1]
        if end > self.base + self.data.shape[-1]:
            grow = end - self.base - self.data.shape[-1]
            self.data = np.concatenate([self.data, np.zeros(self.data.shape[:2] + (grow,), np.float32)], axis=-1)
        assert start >= self.base, "window starts before the discarded part of the buffer"
        self.data[:, channel, start - self.base : end - self.base] += block

    def read(self, start: int, n: int, limit: int) -> np.ndarray:
        """(S*C, n) samples [start, start + n); zero before 0 and from `limit` on."""
        out = np.zeros(self.data.shape[:2] + (n,), dtype=np.float32)
        lo, hi = max(start, 0), min(start + n, limit, self.base + self.data.shape[-1])
        if hi > lo:
            assert lo >= self.base, "read before the discarded part of the buffer"
            out[..., lo - start : hi - start] = self.data[..., lo - self.base : hi - self.base]
        return out.reshape(-1, n)

    def discard_before(self, sample: int) -> None:
        cut = min(max(sample - self.base, 0), self.data.shape[-1])
        if cut:
            self.data = self.data[..., cut:].copy()
            self.base += cut


def stream(
    fn: WindowFn,
    *,
    source: AudioSource | None,
    frames: int,
    sample_rate: int,
    channels: int,
    model_rate: int,
    window: int,
    delay: int,
    stems: int,
    per_channel: bool,
    pairs: bool = False,
    consistency: bool = False,
    continues: bool = False,
    seed: int = 0,
    callback: ProgressCallback | None = None,
    config: ApplyConfig = ApplyConfig(),
) -> Iterator[np.ndarray]:
    """Run `fn` over a region; yield consecutive host-rate blocks (stems, channels, n).

    `source` (host rate) feeds the windows: every channel separately if `per_channel`, else
    its mid; `None` for generation. The yielded blocks sum to exactly `frames` samples.
    With `consistency` (separation), the stems of every block sum to the source's block.
    `pairs`: the model takes stereo pairs (`channel_pairs` of the fed channels, one lane each).
    `continues`: windows run one after another (all lanes of a window per call), and `fn` gets
    `previous=` the model's own output of the previous window over this window's first `overlap`
    samples ((b, stems, [2,] overlap); None for the first window), so it can continue it.
    """
    model_frames = out_frames(frames, sample_rate, model_rate)
    plan = WindowPlan.build(model_frames, window, delay, config.overlap)
    fed = channels if per_channel else (2 if pairs else 1)
    groups = channel_pairs(fed) if pairs else []
    lanes = len(groups) if pairs else fed
    downmix = StereoSource if pairs else MidSource
    feed = None if source is None else (source if per_channel else downmix(source))
    items = [(k, c) for k in range(plan.count) for c in range(lanes)]
    if continues:
        calls = [items[i : i + lanes] for i in range(0, len(items), lanes)]
    else:
        calls = [items[i : i + config.batch] for i in range(0, len(items), config.batch)]
    previous: np.ndarray | None = None
    progress = _Progress(callback, len(calls))
    acc = _Accumulator(stems, 2 * lanes if pairs else lanes)
    shape = (stems, 2, window) if pairs else (stems, window)
    split = ResidualSplit(stems, channels, sample_rate, model_rate, config.residual) if consistency else None
    emitted = 0
    for call in calls:
        k0, c0 = call[0]
        batch = None
        if feed is not None:
            windows = {
                k: resample_span(feed.read, sample_rate, model_rate, plan.start(k), window, config.filter) for k in {k for k, _ in call}
            }
            batch = np.stack([windows[k][list(groups[c])] if pairs else windows[k][c] for k, c in call])
        generator = torch.Generator().manual_seed(seed_for(seed, k0, c0))
        with torch.inference_mode():
            made = (
                fn(batch, len(call), generator, progress.step, previous=previous)
                if continues
                else fn(batch, len(call), generator, progress.step)
            )
        out = np.asarray(made.detach().cpu().numpy() if isinstance(made, torch.Tensor) else made, dtype=np.float32)
        if out.shape != (len(call), *shape):
            raise StemlinkError(f"model returned shape {out.shape}, expected {(len(call), *shape)}")
        if continues and plan.overlap:
            previous = out[..., delay + plan.hop : delay + plan.hop + plan.overlap].copy()
        for (k, c), y in zip(call, out, strict=True):
            acc.add(plan.start(k), slice(2 * c, 2 * c + 2) if pairs else c, y[..., delay:] * plan.weights(k))
        progress.finish_call()
        k_last, c_last = call[-1]
        last = call is calls[-1]
        final = plan.end if last else plan.start(k_last + (1 if c_last == lanes - 1 else 0))
        for block in _emit(acc, plan, emitted, final, last, frames, sample_rate, model_rate, config):
            yield _finish(block, source, emitted, stems, channels, split, fed if pairs else 0, unfold=pairs and not per_channel)
            emitted += block.shape[-1]
    assert emitted == frames, (emitted, frames)


def _emit(
    acc: _Accumulator,
    plan: WindowPlan,
    emitted: int,
    final: int,
    last: bool,
    frames: int,
    sample_rate: int,
    model_rate: int,
    config: ApplyConfig,
) -> Iterator[np.ndarray]:
    """Host-rate blocks (S*C, n) from `emitted` on, as far as model samples < `final` allow."""
    stop = frames
    if not last:
        stop = emitted
        step = max(config.block, 1024)
        while stop < frames:  # largest host frame whose model-rate input is final
            nxt = min(stop + step, frames)
            lo, n = input_span(model_rate, sample_rate, emitted, nxt - emitted, config.filter)
            if lo + n > final:
                break
            stop = nxt
    size = config.block or max(stop - emitted, 1)
    while emitted < stop:
        n = min(size, stop - emitted)
        yield resample_span(lambda s, m: acc.read(s, m, plan.end), model_rate, sample_rate, emitted, n, config.filter)
        emitted += n
        lo, _ = input_span(model_rate, sample_rate, emitted, 1, config.filter)
        acc.discard_before(lo)


def _finish(
    block: np.ndarray,
    source: AudioSource | None,
    start: int,
    stems: int,
    channels: int,
    split: ResidualSplit | None,
    fed: int = 0,
    *,
    unfold: bool = False,
) -> np.ndarray:
    """(S*lanes, n) -> (S, channels, n): stereo pairs back to `fed` channels (if `fed`), a stereo
    part unfolded to the host channels (if `unfold`), dual-mono broadcast and mixture consistency."""
    n = block.shape[-1]
    out = block.reshape(stems, -1, n)
    if unfold:
        out = unfold_stereo(out, channels)
    elif fed and out.shape[1] != fed:  # an odd last channel was duplicated into a pair: the mean of its two outputs
        out = np.concatenate([out[:, : fed - 1], out[:, fed - 1 :].mean(axis=1, keepdims=True, dtype=np.float32)], axis=1)
    if out.shape[1] != channels:
        out = np.repeat(out, channels, axis=1)
    if split is not None:
        assert source is not None, "mixture consistency needs the source"
        out = split(out, source.read(start, n))
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_region(source: AudioSource) -> None:
    if source.frames <= 0:
        raise InvalidInput(f"region is empty ({source.frames} frames)", field="frames")


def separate_stream(
    model: Any,
    source: AudioSource,
    *,
    params: Any = None,
    seed: int = 0,
    callback: ProgressCallback | None = None,
    config: ApplyConfig = ApplyConfig(),
) -> Iterator[np.ndarray]:
    """Separator over a host-rate source -> blocks (len(model.stems), C, n), summing to the mix."""
    _check_region(source)

    def fn(batch, b, generator, step):
        flat = batch.reshape(b, -1)  # a stereo pair's two channels share one level decision
        silent = np.abs(flat).max(axis=-1) < SILENCE_PEAK  # (b,) windows not worth separating
        if silent.all():
            return torch.zeros((b, len(model.stems), *batch.shape[1:]))
        rms = np.sqrt(np.mean(np.square(flat, dtype=np.float64), axis=-1))
        gain = torch.from_numpy(np.clip(SEPARATION_RMS / np.maximum(rms, 1e-12), 1.0, MAX_GAIN).astype(np.float32))
        out = torch.as_tensor(
            model.separate(
                torch.from_numpy(batch) * gain.reshape(b, *[1] * (batch.ndim - 1)), params=params, generator=generator, callback=step
            )
        )
        keep = (b, *[1] * (out.dim() - 1))
        out = out / gain.reshape(keep)
        return out.masked_fill(torch.from_numpy(silent).reshape(keep), 0.0) if silent.any() else out

    return stream(
        fn,
        source=source,
        frames=source.frames,
        sample_rate=source.sample_rate,
        channels=source.channels,
        per_channel=True,
        consistency=True,
        seed=seed,
        callback=callback,
        config=config,
        **_model_args(model),
    )


def accompany_stream(
    model: Any,
    source: AudioSource,
    *,
    context_stems: Sequence[str],
    params: Any = None,
    seed: int = 0,
    callback: ProgressCallback | None = None,
    config: ApplyConfig = ApplyConfig(),
    condition: Any = None,
) -> Iterator[np.ndarray]:
    """Accompanist on the mid of a context source -> blocks (len(model.stems), C, n), dual mono.
    `condition`: the model's own conditioning (`model.condition(...)`), passed to every window."""
    _check_region(source)
    extra = {} if condition is None else {"condition": condition}

    def fn(batch, b, generator, step, **more):
        return model.accompany(
            torch.from_numpy(batch),
            context_stems=tuple(context_stems),
            params=params,
            generator=generator,
            callback=step,
            **_previous(more),
            **extra,
        )

    return stream(
        fn,
        source=source,
        frames=source.frames,
        sample_rate=source.sample_rate,
        channels=source.channels,
        per_channel=False,
        continues=model_continues(model),
        seed=seed,
        callback=callback,
        config=config,
        **_model_args(model),
    )


def generate_stream(
    model: Any,
    frames: int,
    sample_rate: int,
    channels: int = 2,
    *,
    params: Any = None,
    seed: int = 0,
    callback: ProgressCallback | None = None,
    config: ApplyConfig = ApplyConfig(),
    condition: Any = None,
) -> Iterator[np.ndarray]:
    """Generator -> `frames` host-rate samples as blocks (len(model.stems), channels, n), dual mono
    (stereo for a stereo-pair model); `condition` as for `accompany_stream`."""
    extra = {} if condition is None else {"condition": condition}

    def fn(batch, b, generator, step, **more):
        return model.generate(b, params=params, generator=generator, callback=step, **_previous(more), **extra)

    return stream(
        fn,
        source=None,
        frames=frames,
        sample_rate=sample_rate,
        channels=channels,
        per_channel=False,
        continues=model_continues(model),
        seed=seed,
        callback=callback,
        config=config,
        **_model_args(model),
    )


class _ModelArgs(TypedDict):
    model_rate: int
    window: int
    delay: int
    stems: int
    pairs: bool


def _model_args(model: EngineModel) -> _ModelArgs:
    return _ModelArgs(
        model_rate=model.sample_rate, window=model.window, delay=model.delay, stems=len(model.stems), pairs=model_channels(model) == 2
    )


def score(
    model: Any, a: AudioSource, b: AudioSource, *, callback: ProgressCallback | None = None, config: ApplyConfig = ApplyConfig()
) -> tuple[float, int]:
    """Scorer over two host-rate sources (mono downmix, non-overlapping windows).

    Returns (mean similarity over windows, window count). Both sources must share their rate;
    the shorter one is zero-padded to the longer.
    """
    if a.sample_rate != b.sample_rate:
        raise InvalidInput(f"score inputs must share a sample rate, got {a.sample_rate} and {b.sample_rate}", field="sample_rate")
    frames = max(a.frames, b.frames)
    if min(a.frames, b.frames) <= 0:
        raise InvalidInput("score inputs must not be empty", field="frames")
    rate, window = model.sample_rate, model.window
    count = max(1, -(-out_frames(frames, a.sample_rate, rate) // window))
    sims: list[float] = []
    mids = [MidSource(a), MidSource(b)]
    for i in range(0, count, config.batch):
        ks = range(i, min(i + config.batch, count))
        x = [np.stack([resample_span(m.read, a.sample_rate, rate, k * window, window, config.filter)[0] for k in ks]) for m in mids]
        with torch.inference_mode():
            ea, eb = (model.embed(torch.from_numpy(v)) for v in x)
            sims += [float(s) for s in model.similarity(ea, eb).reshape(-1)]
        if callback is not None:
            callback(len(sims), count)
    return float(np.mean(sims)), count


def collect(blocks: Iterator[np.ndarray]) -> np.ndarray:
    """Concatenate a block stream into one (S, C, N) array (small regions and tests)."""
    return np.concatenate(list(blocks), axis=-1)
