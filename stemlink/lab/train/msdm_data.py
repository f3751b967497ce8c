"""Training batches for MSDM: coherent multi-stem windows (B, S, T) at the model rate.

Sources:
- "corpus": the stem corpus read through `stemlink.lab.data` (`open_corpus`, `StemWindows`).
- "synthetic": procedurally generated stems (tones, noise bursts) for tests and smoke runs;
  no files needed.

Augmentations keep the stems of one window coherent (same time axis): a random gain per
stem, a random polarity per stem, and random stem dropout (a stem set to silence, as in
sections where an instrument rests); never more than S - 1 stems are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from stemlink.lab.data.windows import StemWindows


@dataclass(frozen=True)
class AugmentConfig:
    gain_db: tuple[float, float] = (-6.0, 3.0)
    polarity: bool = True
    stem_dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain_db", tuple(self.gain_db))


@dataclass(frozen=True)
class DataConfig:
    source: str = "corpus"  # "corpus" | "synthetic"
    root: str = "data/corpus"
    split: str = "train"
    valid_split: str = "valid"
    max_overlap: float = 0.5
    silence_rule: bool = True


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(B, S, T) -> (B, S, T) with per-stem gain, polarity and dropout."""
    b, s, _ = x.shape
    lo, hi = cfg.gain_db
    gain_db = torch.rand(b, s, 1, generator=generator) * (hi - lo) + lo
    x = x * (10.0 ** (gain_db / 20.0))
    if cfg.polarity:
        x = x * (torch.randint(0, 2, (b, s, 1), generator=generator) * 2 - 1)
    if cfg.stem_dropout > 0:
        keep = torch.rand(b, s, 1, generator=generator) >= cfg.stem_dropout
        all_dropped = ~keep.any(dim=1, keepdim=True)
        keep = keep | all_dropped  # never silence every stem
        x = x * keep
    return x


def synthetic_stems(batch: int, stems: int, length: int, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """Random but structured stems (B, S, length): stem k is a note sequence in its own
    register (low tones, noise hits, mid tones, high decaying tones cycling by k)."""
    t = torch.arange(length) / sample_rate
    out = torch.zeros(batch, stems, length)
    notes = 4
    seg = length // notes
    for k in range(stems):
        kind = k % 4
        for n in range(notes):
            span = slice(n * seg, length if n == notes - 1 else (n + 1) * seg)
            tt = t[span] - t[span][0]
            env = torch.exp(-tt[None, :] * (3.0 + 10.0 * (kind == 1)))
            if kind == 1:
                sig = torch.randn(batch, tt.numel(), generator=generator) * env
            else:
                base = {0: 60.0, 2: 200.0, 3: 500.0}[kind]
                f0 = base * 2 ** (torch.randint(0, 12, (batch, 1), generator=generator) / 12)
                sig = sum(torch.sin(2 * math.pi * f0 * h * tt[None, :]) / h for h in (1, 2, 3)) * env
            out[:, k, span] = 0.25 * sig
    return out


def _synthetic_batches(batch: int, stems: int, length: int, sample_rate: int, seed: int) -> Iterator[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    while True:
        yield synthetic_stems(batch, stems, length, sample_rate, g)


def corpus_windows(
    cfg: DataConfig, split: str, root: str, stems: tuple[str, ...], length: int, sample_rate: int, seed: int, *, mono: bool = True
) -> StemWindows:
    """The corpus's `StemWindows` for one split, as `cfg` describes them (every family's training windows)."""
    from stemlink.lab.data import StemWindows, open_corpus

    return StemWindows(
        open_corpus(root),
        split,
        stems=stems,
        sample_rate=sample_rate,
        length=length,
        max_overlap=cfg.max_overlap,
        silence_rule=cfg.silence_rule,
        mono=mono,
        seed=seed,
    )


def _corpus_batches(
    cfg: DataConfig, split: str, root: str, stems: tuple[str, ...], length: int, sample_rate: int, batch: int, seed: int
) -> Iterator[torch.Tensor]:
    windows = corpus_windows(cfg, split, root, stems, length, sample_rate, seed)
    g = torch.Generator().manual_seed(seed)
    epoch = 0
    while True:  # one "epoch" = len(windows) items drawn at random; then re-jitter the grid
        for _ in range(max(1, len(windows) // batch)):
            idx = torch.randint(0, len(windows), (batch,), generator=g).tolist()
            yield torch.stack([torch.as_tensor(windows[i], dtype=torch.float32) for i in idx])
        epoch += 1
        windows.set_epoch(epoch)


def batches(
    cfg: DataConfig,
    *,
    stems: tuple[str, ...],
    length: int,
    sample_rate: int,
    batch: int,
    seed: int,
    split: str | None = None,
    root: str | None = None,
) -> Iterator[torch.Tensor]:
    """Endless iterator of (batch, S, length) float32 stem windows."""
    if cfg.source == "synthetic":
        return _synthetic_batches(batch, len(stems), length, sample_rate, seed)
    if cfg.source == "corpus":
        return _corpus_batches(cfg, split or cfg.split, root or cfg.root, stems, length, sample_rate, batch, seed)
    from stemlink.errors import InvalidInput

    raise InvalidInput(f"data.source {cfg.source!r} is not one of 'corpus', 'synthetic'", field="data.source")
