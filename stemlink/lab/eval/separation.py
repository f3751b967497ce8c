"""Source-separation evaluation: SI-SDR, the MSDM protocol, the mixture baseline and an
oracle ideal-ratio-mask (IRM) upper bound, all on the same windows.

MSDM protocol (thesis sec. 6.3.2): 4 s windows with a 2 s hop over the test split, windows
with <= 1 non-silent stem skipped (`StemWindows(..., silence_rule=True, jitter=False)`);
the mixture is the sum of the evaluated stems. Per window and stem:

    SI-SDR(x, x^) = 10 log10((||a x||^2 + eps) / (||a x - x^||^2 + eps)),  a = (x.x^ + eps) / (||x||^2 + eps)
    SI-SDRi = SI-SDR(x, x^) - SI-SDR(x, y)          (eps = 1e-8, as in the paper)

A (window, stem) pair whose reference is silent has no meaningful SI-SDR and is left out of
that stem's average (counts are reported). Metrics are computed at the model's rate, or, with
`served(model, rate)`, at any host rate through the engine's own path (the apply layer's
resampling, windows, crossfades and mixture consistency): at 44.1 kHz that scores the whole
band, so a model that returns nothing above 4 kHz is scored on what it misses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

EPS = 1e-8
SILENCE_THRESHOLD = 1.5e-5  # ||x||_2 / T below this = silent (MSDM is_silent)


def si_sdr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """(..., T), (..., T) -> (...) SI-SDR in dB (the paper's eps-regularised form)."""
    ref, est = reference.double(), estimate.double()
    alpha = ((ref * est).sum(-1, keepdim=True) + eps) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((target - est).pow(2).sum(-1) + eps))


def is_silent(x: torch.Tensor, threshold: float = SILENCE_THRESHOLD) -> torch.Tensor:
    """(..., T) -> (...) bool."""
    return x.double().pow(2).sum(-1).sqrt() / x.shape[-1] < threshold


def oracle_irm(stems: torch.Tensor, n_fft: int = 512, hop: int = 128, power: float = 2.0) -> torch.Tensor:
    """Ideal ratio mask separation. (B, S, T) true stems -> (B, S, T) estimates from their mix.

    Mask_s = |X_s|^p / sum_j |X_j|^p applied to the mixture STFT (p = 2: the ideal Wiener
    mask). Estimates sum to the mixture up to STFT round-off.
    """
    b, s, t = stems.shape
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(stems.reshape(b * s, t).double(), n_fft, hop, window=window, return_complex=True)
    spec = spec.reshape(b, s, *spec.shape[-2:])
    mag = spec.abs().pow(power)
    mask = mag / (mag.sum(dim=1, keepdim=True) + 1e-20)
    est = mask * spec.sum(dim=1, keepdim=True)
    out = torch.istft(est.reshape(b * s, *est.shape[-2:]), n_fft, hop, window=window, length=t)
    return out.reshape(b, s, t).float()


@dataclass
class SeparationScores:
    """Per-stem SI-SDRi lists over the evaluated (window, stem) pairs with a non-silent reference."""

    stems: tuple[str, ...]
    improvement: dict[str, list[float]] = field(default_factory=dict)
    sdr: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    audio_seconds: float = 0.0

    def add(self, reference: torch.Tensor, estimate: torch.Tensor) -> None:
        """reference, estimate: (B, S, T); the mixture is reference.sum(1)."""
        mix = reference.sum(dim=1, keepdim=True).expand_as(reference)
        sdr = si_sdr(reference, estimate)
        base = si_sdr(reference, mix)
        silent = is_silent(reference)
        for k, name in enumerate(self.stems):
            for i in range(reference.shape[0]):
                if not bool(silent[i, k]):
                    self.improvement.setdefault(name, []).append(float(sdr[i, k] - base[i, k]))
                    self.sdr.setdefault(name, []).append(float(sdr[i, k]))

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {}
        means = []
        for name in self.stems:
            vals = self.improvement.get(name, [])
            out[f"{name}_sisdri"] = sum(vals) / len(vals) if vals else float("nan")
            out[f"{name}_n"] = len(vals)
            if vals:
                means.append(out[f"{name}_sisdri"])
        out["avg_sisdri"] = sum(means) / len(means) if means else float("nan")
        if self.audio_seconds:
            out["rtf"] = self.seconds / self.audio_seconds
        return out


Separate = Callable[[torch.Tensor], torch.Tensor]  # (B, T) mix -> (B, S, T)


def served(model: Any, sample_rate: int, *, params: Any = None, seed: int = 0, config: Any = None) -> Separate:
    """`model` as the engine serves it, on (B, T) mono mixes at `sample_rate` (any rate):
    `stemlink.engine.apply.separate_stream` per item (resampling, windows, crossfades,
    mixture consistency), so the stems sum to each mix exactly."""
    from stemlink.audio.files import ArraySource
    from stemlink.engine.apply import ApplyConfig, collect, separate_stream

    apply_config = config or ApplyConfig()

    def run(mix: torch.Tensor) -> torch.Tensor:
        out = []
        for row in mix.float().numpy():
            blocks = separate_stream(model, ArraySource(row[None], sample_rate), params=params, seed=seed, config=apply_config)
            out.append(torch.from_numpy(collect(blocks)[:, 0]))
        return torch.stack(out)

    return run


def evaluate(
    separate: Separate, windows: Sequence[torch.Tensor], stems: Sequence[str], *, batch: int = 8, sample_rate: int = 0
) -> SeparationScores:
    """Run `separate` over `windows` (each (S, T)) in batches and score every window."""
    scores = SeparationScores(tuple(stems))
    for start in range(0, len(windows), batch):
        ref = torch.stack(list(windows[start : start + batch])).float()
        t0 = time.perf_counter()
        with torch.no_grad():
            est = separate(ref.sum(dim=1))
        scores.seconds += time.perf_counter() - t0
        scores.audio_seconds += ref.shape[0] * ref.shape[-1] / sample_rate if sample_rate else 0.0
        scores.add(ref, est)
    return scores


def protocol_windows(
    root: str,
    split: str,
    stems: Sequence[str],
    sample_rate: int,
    *,
    seconds: float = 4.0,
    hop_seconds: float = 2.0,
    limit: int | None = None,
    multiple_of: int = 1,
) -> list[torch.Tensor]:
    """MSDM-protocol windows (S, T) of the corpus split at `sample_rate`, in corpus order.

    `split` may name several splits joined by commas ("train,valid,test": a whole held-out
    corpus). T = seconds * sample_rate rounded down to `multiple_of`; `limit` takes windows
    spread evenly over the whole list (not only the first tracks)."""
    from stemlink.lab.data import StemWindows, open_corpus

    length = int(seconds * sample_rate) // multiple_of * multiple_of
    overlap = 1.0 - hop_seconds / seconds
    corpus = open_corpus(root)
    items = []
    for name in split.split(","):
        ds = StemWindows(
            corpus,
            name.strip(),
            stems=tuple(stems),
            sample_rate=sample_rate,
            length=length,
            max_overlap=overlap,
            silence_rule=True,
            jitter=False,
            seed=0,
        )
        items += [(ds, i) for i in range(len(ds))]
    if limit is not None and limit < len(items):
        items = [items[round(k * (len(items) - 1) / max(limit - 1, 1))] for k in range(limit)]
    return [ds[i] for ds, i in items]
