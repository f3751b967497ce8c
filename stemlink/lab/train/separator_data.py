"""Training batches for separators: (B, S, T) stem windows, remixed and timbre-augmented.

Demucs-style augmentation, in this order, all drawn from one seeded generator:
1. remix: with probability `remix`, each stem of an item comes from a different random window
   (usually another track), so the model cannot lean on one arrangement's coherence;
2. timbre (`timbre`, per stem): a random pedalboard chain of EQ (peak/shelf), high/low-pass,
   compression, saturation, reverb and (rarely) a small pitch shift, so instruments and
   recordings it has not heard look less new;
3. per-stem gain, polarity and stem dropout (`stemlink.lab.train.msdm_data.augment`).
The mix is always the sum of the augmented stems. Without pedalboard installed, `timbre > 0`
is an error naming the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from stemlink.errors import InvalidInput, MissingDependency
from stemlink.lab.train.msdm_data import AugmentConfig, DataConfig, augment, corpus_windows, synthetic_stems


@dataclass(frozen=True)
class SeparatorAugment:
    remix: float = 0.5  # probability that an item's stems come from independent windows
    timbre: float = 0.6  # probability of a pedalboard chain on each stem
    pitch: float = 0.05  # probability of a +-1 semitone shift within a chain (slow)
    gain_db: tuple[float, float] = (-9.0, 3.0)
    polarity: bool = True
    stem_dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain_db", tuple(self.gain_db))
        for name in ("remix", "timbre", "pitch", "stem_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # ValueError: the preset reader names the table
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def level(self) -> AugmentConfig:
        return AugmentConfig(gain_db=self.gain_db, polarity=self.polarity, stem_dropout=self.stem_dropout)


def timbre_chain(rng: np.random.Generator, sample_rate: int, pitch: float):
    """A random pedalboard chain (1-4 effects) for one stem."""
    try:
        import pedalboard as pb
    except ImportError as exc:
        raise MissingDependency("timbre augmentation needs pedalboard: pip install pedalboard") from exc
    top = 0.45 * sample_rate
    options = [
        lambda: pb.PeakFilter(
            cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(80), np.log(8000)))), gain_db=rng.uniform(-9, 9), q=rng.uniform(0.5, 3)
        ),
        lambda: pb.LowShelfFilter(cutoff_frequency_hz=rng.uniform(80, 400), gain_db=rng.uniform(-8, 8)),
        lambda: pb.HighShelfFilter(cutoff_frequency_hz=rng.uniform(2000, min(10000, top)), gain_db=rng.uniform(-10, 8)),
        lambda: pb.HighpassFilter(cutoff_frequency_hz=rng.uniform(20, 250)),
        lambda: pb.LowpassFilter(cutoff_frequency_hz=min(rng.uniform(3000, 20000), top)),
        lambda: pb.Compressor(
            threshold_db=rng.uniform(-30, -8), ratio=rng.uniform(1.5, 6), attack_ms=rng.uniform(1, 30), release_ms=rng.uniform(40, 300)
        ),
        lambda: pb.Distortion(drive_db=rng.uniform(2, 15)),
        lambda: pb.Reverb(room_size=rng.uniform(0.1, 0.8), wet_level=rng.uniform(0.05, 0.35), dry_level=1.0, damping=rng.uniform(0.2, 0.8)),
        lambda: pb.Chorus(rate_hz=rng.uniform(0.3, 2), depth=rng.uniform(0.1, 0.4), mix=rng.uniform(0.2, 0.5)),
    ]
    picks = rng.choice(len(options), size=int(rng.integers(1, 5)), replace=False)
    effects = [options[i]() for i in sorted(picks)]
    if rng.random() < pitch:
        effects.append(pb.PitchShift(semitones=float(rng.uniform(-1, 1))))
    return pb.Pedalboard(effects)


def apply_timbre(stems: np.ndarray, sample_rate: int, cfg: SeparatorAugment, rng: np.random.Generator) -> np.ndarray:
    """(B, S, T) float32 -> the same shape; each non-silent stem gets a chain with prob `timbre`,
    then is brought back to its original RMS (timbre changes, level stays for `augment`)."""
    out = stems.copy()
    for b in range(stems.shape[0]):
        for s in range(stems.shape[1]):
            x = stems[b, s]
            rms = float(np.sqrt(np.mean(x * x)))
            if rms < 1e-5 or rng.random() >= cfg.timbre:
                continue
            y = timbre_chain(rng, sample_rate, cfg.pitch)(x[None, :], sample_rate, reset=True)[0]
            y = np.nan_to_num(y[: x.shape[-1]], nan=0.0, posinf=0.0, neginf=0.0)
            y_rms = float(np.sqrt(np.mean(y * y)))
            out[b, s] = y * (rms / y_rms) if y_rms > 1e-7 else x
    return out


def separator_batches(
    data: DataConfig,
    aug: SeparatorAugment,
    *,
    stems: tuple[str, ...],
    length: int,
    sample_rate: int,
    batch: int,
    seed: int,
    split: str | None = None,
    root: str | None = None,
    augment_audio: bool = True,
) -> Iterator[torch.Tensor]:
    """Endless (batch, S, length) float32 stem windows; `augment_audio=False` for validation."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if data.source == "synthetic":
        while True:
            x = synthetic_stems(batch, len(stems), length, sample_rate, g)
            yield augment(x, aug.level, g) if augment_audio else x
    if data.source != "corpus":
        raise InvalidInput(f"data.source {data.source!r} is not one of 'corpus', 'synthetic'", field="data.source")
    windows = corpus_windows(data, split or data.split, root or data.root, stems, length, sample_rate, seed)
    s, epoch = len(stems), 0
    while True:
        n = len(windows)  # the jittered grid of each epoch has its own window count
        for _ in range(max(1, n // batch)):
            idx = torch.randint(0, n, (batch,), generator=g).tolist()
            x = torch.stack([windows[i] for i in idx]).float()
            if augment_audio and aug.remix > 0:
                for b in range(batch):
                    if rng.random() < aug.remix:
                        for k in range(s):
                            x[b, k] = windows[int(rng.integers(0, n))][k]
            if augment_audio:
                if aug.timbre > 0:
                    x = torch.from_numpy(apply_timbre(x.numpy(), sample_rate, aug, rng))
                x = augment(x, aug.level, g)
            yield x
        epoch += 1
        windows.set_epoch(epoch)
