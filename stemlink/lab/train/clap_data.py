"""Training batches for the CLAP pair: single-stem windows with their descriptions.

    items = DescribedStems(corpus_root, "train", window=220500, sample_rate=44100, seed=0)
    audio, texts = items.batch(32)          # (B, window) mono at random levels, B descriptions

Per item (one seeded generator): a random single-stem window of any class the track has
(`SoloStems`), its level drawn from `rms_db`, and a random description of it
(`stemlink.lab.data.descriptions`: a subset of its facts plus a brightness word measured on the
window). `source = "synthetic"` (tests): tones and noise named by what they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from stemlink.lab.data.descriptions import brightness_word, describe, stem_facts


@dataclass(frozen=True)
class DescribeConfig:
    rms_db: tuple[float, float] = (-35.0, -12.0)
    full_share: float = 0.2  # share of items described by all their facts

    def __post_init__(self) -> None:
        object.__setattr__(self, "rms_db", tuple(self.rms_db))


SYNTHETIC = (("low sine tone", 80.0), ("high sine tone", 1200.0), ("noise burst", 0.0))


class DescribedStems:
    def __init__(self, root: str | None, split: str, *, window: int, sample_rate: int, seed: int, cfg: DescribeConfig = DescribeConfig()):
        self.window, self.sample_rate, self.cfg = window, sample_rate, cfg
        self.rng = np.random.default_rng(seed)
        self.synthetic = root is None
        if root is not None:
            from stemlink.lab.data import SoloStems, open_corpus

            self.items = SoloStems(open_corpus(root), split, sample_rate=sample_rate, length=window, seed=seed)
        self.epoch = 0
        self.drawn = 0
        self._last: tuple[dict[str, str], str | None] = ({}, None)
        self._last_name = ""

    def _level(self, x: np.ndarray) -> np.ndarray:
        rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
        return x if rms < 1e-7 else x * (10 ** (self.rng.uniform(*self.cfg.rms_db) / 20) / rms)

    def _synthetic(self) -> tuple[np.ndarray, str]:
        name, freq = SYNTHETIC[int(self.rng.integers(len(SYNTHETIC)))]
        t = np.arange(self.window) / self.sample_rate
        x = self.rng.standard_normal(self.window) if freq == 0 else np.sin(2 * np.pi * freq * (1 + 0.05 * self.rng.random()) * t)
        return x.astype(np.float32), name

    def item(self) -> tuple[np.ndarray, str]:
        if self.synthetic:
            x, self._last_name = self._synthetic()
            return self._level(x).astype(np.float32), self._last_name
        ti, cls, audio = self.items[int(self.rng.integers(len(self.items)))]
        self.drawn += 1
        if self.drawn >= len(self.items):  # a new window grid every epoch
            self.epoch, self.drawn = self.epoch + 1, 0
            self.items.set_epoch(self.epoch)
        x = audio.numpy()
        self._last = (stem_facts(self.items.tracks[ti], cls), brightness_word(x, self.sample_rate))
        return self._level(x).astype(np.float32), self.describe_again()

    def describe_again(self) -> str:
        """Another random description of the last item drawn."""
        if self.synthetic:
            return self._last_name
        facts, brightness = self._last
        return describe(facts, self.rng, brightness=brightness, full=self.rng.random() < self.cfg.full_share)

    def batch(self, size: int) -> tuple[torch.Tensor, list[str]]:
        pairs = [self.item() for _ in range(size)]
        return torch.from_numpy(np.stack([a for a, _ in pairs])), [t for _, t in pairs]
