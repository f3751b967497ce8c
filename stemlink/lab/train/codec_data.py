"""Training batches for the audio codec: (B, 2, T) stereo windows of everything the latent
models will encode — whole mixes, single stems and submixes — at a random level.

Per item, from one seeded generator: a corpus window (S, 2, T); a random non-empty subset of its
non-silent stems (`mix_share` of the items take all of them, `single_share` exactly one); the
sum at an RMS drawn from `rms_db`; a left/right swap with probability 0.5.
`source = "synthetic"` gives stereo test tones and noise for tests, no files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from stemlink.errors import InvalidInput
from stemlink.lab.train.msdm_data import DataConfig, corpus_windows, synthetic_stems


@dataclass(frozen=True)
class CodecAugment:
    mix_share: float = 0.4
    single_share: float = 0.4
    rms_db: tuple[float, float] = (-32.0, -12.0)
    silence_db: float = -60.0  # a stem quieter than this in the window counts as silent

    def __post_init__(self) -> None:
        object.__setattr__(self, "rms_db", tuple(self.rms_db))
        if not (0 <= self.mix_share and 0 <= self.single_share and self.mix_share + self.single_share <= 1):
            raise ValueError(f"mix_share and single_share must be >= 0 with a sum <= 1, got {self.mix_share}, {self.single_share}")


def _level(x: torch.Tensor, rng: np.random.Generator, cfg: CodecAugment) -> torch.Tensor:
    rms = float(x.pow(2).mean().sqrt())
    if rms < 1e-6:
        return x
    return x * (10 ** (rng.uniform(*cfg.rms_db) / 20) / rms)


def loud_stems(stems: torch.Tensor, silence_db: float) -> list[int]:
    loudness = 10 * torch.log10(stems.pow(2).mean(dim=(1, 2)) + 1e-12)
    return [int(i) for i in torch.nonzero(loudness > silence_db).flatten()]


def submix(stems: torch.Tensor, rng: np.random.Generator, cfg: CodecAugment) -> torch.Tensor | None:
    """(S, 2, T) -> (2, T): the sum of a random subset of the non-silent stems, levelled and maybe
    swapped; None when every stem is silent (the caller draws another window)."""
    loud = loud_stems(stems, cfg.silence_db)
    if not loud:
        return None
    draw = rng.random()
    if draw < cfg.mix_share:
        pick = loud
    elif draw < cfg.mix_share + cfg.single_share:
        pick = [loud[int(rng.integers(0, len(loud)))]]
    else:
        pick = [i for i in loud if rng.random() < 0.5] or [loud[0]]
    x = _level(stems[pick].sum(dim=0), rng, cfg)
    return x.flip(0) if rng.random() < 0.5 else x


def codec_batches(
    data: DataConfig,
    aug: CodecAugment,
    *,
    stems: tuple[str, ...],
    length: int,
    sample_rate: int,
    batch: int,
    seed: int,
    split: str | None = None,
    root: str | None = None,
) -> Iterator[torch.Tensor]:
    """Endless (batch, 2, length) float32 stereo windows."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if data.source == "synthetic":
        while True:
            left = synthetic_stems(batch, len(stems), length, sample_rate, g)
            right = synthetic_stems(batch, len(stems), length, sample_rate, g)
            both = torch.stack((left, right), dim=2)  # (B, S, 2, T): synthetic stems are never silent
            yield torch.stack([x for b in range(batch) if (x := submix(both[b], rng, aug)) is not None])
    if data.source != "corpus":
        raise InvalidInput(f"data.source {data.source!r} is not one of 'corpus', 'synthetic'", field="data.source")
    windows = corpus_windows(data, split or data.split, root or data.root, stems, length, sample_rate, seed, mono=False)
    epoch = 0
    while True:
        for _ in range(max(1, len(windows) // batch)):
            items: list[torch.Tensor] = []
            while len(items) < batch:
                x = submix(windows[int(torch.randint(0, len(windows), (1,), generator=g))].float(), rng, aug)
                if x is not None:
                    items.append(x)
            yield torch.stack(items)
        epoch += 1
        windows.set_epoch(epoch)
