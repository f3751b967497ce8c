"""Training batches for GMSDI: mixtures and random sub-mixes with the tags of the stems they hold,
never a separated stem as a target (issue 15).

    batches = gmsdi_batches(data, aug, tags=TAGS, length=16384, sample_rate=8000, batch=8, seed=0)
    mix, z = next(batches)          # (B, 1, T) mono mixtures, (B, V) multi-hot tags

Per item, from a corpus window of every class (`StemWindows`, no silence rule): the non-silent
stems; the full mix with probability `full_mix`, else a random sub-mix of at least two of them
(a window whose mix naturally holds one instrument stays that mix: it is still a mixture of the
track, not a stem taken out of one); a random level (`rms_db`). The tags are exactly the stems
summed. `source = "synthetic"`: tones and noise mixtures for tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from stemlink.errors import InvalidInput
from stemlink.lab.train.msdm_data import DataConfig, corpus_windows, synthetic_stems


@dataclass(frozen=True)
class MixtureAugment:
    full_mix: float = 0.5
    rms_db: tuple[float, float] = (-30.0, -14.0)
    silence_db: float = -50.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rms_db", tuple(self.rms_db))
        if not 0 <= self.full_mix <= 1:
            raise ValueError(f"full_mix must be in [0, 1], got {self.full_mix}")


def mixture_item(stems: np.ndarray, rng: np.random.Generator, aug: MixtureAugment) -> tuple[np.ndarray, np.ndarray] | None:
    """(S, T) stems of one window -> (mixture (T,), multi-hot (S,)), or None when all are silent."""
    level = 10 * np.log10(np.mean(np.square(stems, dtype=np.float64), axis=-1) + 1e-12)
    loud = np.flatnonzero(level > aug.silence_db)
    if len(loud) == 0:
        return None
    if len(loud) == 1 or rng.random() < aug.full_mix:
        pick = loud
    else:
        size = int(rng.integers(2, len(loud) + 1))
        pick = np.sort(rng.choice(loud, size=size, replace=False))
    mix = stems[pick].sum(axis=0)
    rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
    mix = mix * (10 ** (rng.uniform(*aug.rms_db) / 20) / max(rms, 1e-8))
    tags = np.zeros(len(stems), dtype=np.float32)
    tags[pick] = 1.0
    return mix.astype(np.float32), tags


def gmsdi_batches(
    data: DataConfig,
    aug: MixtureAugment,
    *,
    tags: tuple[str, ...],
    length: int,
    sample_rate: int,
    batch: int,
    seed: int,
    split: str | None = None,
    root: str | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (mixture (B, 1, length), tags (B, V)) float32 batches."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    if data.source == "synthetic":
        while True:
            stems = synthetic_stems(batch, len(tags), length, sample_rate, g).numpy()
            drawn = [mixture_item(stems[b], rng, aug) for b in range(batch)]
            yield _stack([i for i in drawn if i is not None])
    if data.source != "corpus":
        raise InvalidInput(f"data.source {data.source!r} is not one of 'corpus', 'synthetic'", field="data.source")
    windows = corpus_windows(replace_rule(data), split or data.split, root or data.root, tags, length, sample_rate, seed)
    epoch = 0
    while True:
        for _ in range(max(1, len(windows) // batch)):
            items: list[tuple[np.ndarray, np.ndarray]] = []
            while len(items) < batch:
                item = mixture_item(np.asarray(windows[int(rng.integers(len(windows)))]), rng, aug)
                if item is not None:
                    items.append(item)
            yield _stack(items)
        epoch += 1
        windows.set_epoch(epoch)


def replace_rule(data: DataConfig) -> DataConfig:
    """GMSDI reads every window with at least one sounding stem (no MSDM two-stem rule)."""
    from dataclasses import replace

    return replace(data, silence_rule=False)


def _stack(items: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.stack([m for m, _ in items]))[:, None], torch.from_numpy(np.stack([t for _, t in items]))
