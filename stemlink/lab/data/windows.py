"""Training datasets over a corpus: fixed-length windows of stems, sub-mix pairs, prompts.

All three are `torch.utils.data.Dataset`s over one split, built on the same window index:

- windows of `length` samples at `sample_rate`; consecutive windows of a track start `hop =
  ceil((1 - max_overlap) * length)` samples apart (rounded up to the 64-sample energy block),
  so no two windows of the same track overlap by more than `max_overlap` (COCOLA's r);
  with `jitter` (default) every track's grid is shifted by a seeded random offset that
  changes with `set_epoch(epoch)`; `jitter=False` gives the fixed grid (e.g. MSDM's
  evaluation protocol: 4 s windows, 2 s hop = max_overlap 0.5).
- a stem is *silent* in a window when ||x||_2 / length < 1.5e-5 on its channel-mean signal
  (`is_silent` of the MSDM code, threshold 1.5e-5).
- `StemWindows` (MSDM): with `silence_rule=True`, windows where fewer than two of the
  requested stems are non-silent are dropped. This is the MSDM rule ("filtering out silent
  chunks and chunks consisting of only one source"): a silent window has no non-silent stem
  and a single-source window has one; with two non-silent stems the mix is non-silent too
  unless they cancel exactly, which we do not test for.
- `SubmixPairs` (COCOLA): windows with at least two non-silent stems; item i draws two
  disjoint non-empty subsets of the window's non-silent stems and returns their sums.
- `StemPrompts` (CompoNet/GMSDI): windows with at least one non-silent stem; item i draws a
  non-empty output subset and a (possibly empty) disjoint input subset, with text prompts.

Randomness per item comes from numpy Generator([seed, epoch, i]), so items do not depend on
which DataLoader worker reads them. Audio is read from the `.npy` memmap cache
(`cache.ensure_cached`), built once per (corpus, rate, channels) by the first dataset that
needs it. Memmaps are opened lazily per process, so multi-worker DataLoaders are safe.
`set_epoch` must be called before the DataLoader iterator is created (non-persistent workers).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from stemlink.errors import InvalidInput
from stemlink.lab.data.cache import BLOCK, CachedTrack, ensure_cached
from stemlink.lab.data.classes import MSDM_STEMS
from stemlink.lab.data.corpus import Corpus, Track

SILENCE_THRESHOLD = 1.5e-5  # MSDM is_silent: ||x||_2 / num_samples < threshold


class _WindowDataset(torch.utils.data.Dataset):
    """Shared window index, cache and memmap handling (see module docstring)."""

    min_nonsilent = 1

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        stems: tuple[str, ...] | None,
        sample_rate: int,
        length: int,
        max_overlap: float,
        mono: bool,
        seed: int,
        jitter: bool,
    ):
        if length < BLOCK:
            raise InvalidInput(f"length must be >= {BLOCK} samples, got {length}", field="length")
        if not 0.0 <= max_overlap < 1.0:
            raise InvalidInput(f"max_overlap must be in [0, 1), got {max_overlap}", field="max_overlap")
        self.corpus, self.split = corpus, split
        self.stems = tuple(stems) if stems is not None else None
        self.sample_rate, self.length, self.max_overlap = int(sample_rate), int(length), float(max_overlap)
        self.mono, self.seed, self.jitter = mono, int(seed), jitter
        self.hop = max(BLOCK, int(math.ceil((1.0 - self.max_overlap) * self.length / BLOCK)) * BLOCK)
        self.tracks: list[Track] = corpus.tracks(split)
        self._cached: list[CachedTrack] = ensure_cached(corpus, self.tracks, self.sample_rate, mono)
        self._energy = [np.load(c.energy_path) for c in self._cached]
        self._mm: dict[int, np.ndarray] = {}
        self._pid = os.getpid()
        self.epoch = 0
        self._build_index()

    # ---------------------------------------------------------------- index
    def classes_of(self, ti: int) -> tuple[str, ...]:
        """Classes considered for track `ti` (the requested stems, or all of the track's)."""
        return self.stems if self.stems is not None else self._cached[ti].classes

    def _build_index(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        tis, starts, masks = [], [], []
        for ti, ct in enumerate(self._cached):
            limit = ct.length - self.length
            offset = 0
            if self.jitter and limit > 0:
                offset = int(rng.integers(0, min(self.hop, limit) // BLOCK + 1)) * BLOCK
            grid = range(offset, limit + 1, self.hop) if limit >= 0 else range(0, 1)
            energy = self._energy[ti]
            rows = [ct.classes.index(c) if c in ct.classes else -1 for c in self.classes_of(ti)]
            for start in grid:
                b0, b1 = start // BLOCK, (start + self.length) // BLOCK
                e = energy[:, b0:b1].sum(axis=1)
                loud = np.sqrt(e) / self.length >= SILENCE_THRESHOLD
                mask = np.array([r >= 0 and bool(loud[r]) for r in rows], dtype=bool)
                if self._keep(mask):
                    tis.append(ti)
                    starts.append(start)
                    masks.append(mask)
        if not tis:
            raise InvalidInput(
                f"no usable {self.length}-sample windows in split {self.split!r} of {self.corpus.root} "
                f"(silence rule: >= {self.min_nonsilent} non-silent stems)",
                field="split",
            )
        self._track_idx = np.asarray(tis)
        self._starts = np.asarray(starts)
        self._masks = masks

    def _keep(self, nonsilent: np.ndarray) -> bool:
        return int(nonsilent.sum()) >= self.min_nonsilent

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the per-track window offsets (and per-item choices) for a new epoch."""
        if epoch != self.epoch:
            self.epoch = int(epoch)
            if self.jitter:
                self._build_index()

    def __len__(self) -> int:
        return len(self._starts)

    def window(self, i: int) -> tuple[str, int, tuple[str, ...]]:
        """(track id, start sample, non-silent classes) of window i."""
        ti = int(self._track_idx[i])
        classes = self.classes_of(ti)
        return self._cached[ti].id, int(self._starts[i]), tuple(c for c, m in zip(classes, self._masks[i], strict=True) if m)

    # ---------------------------------------------------------------- audio
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mm"] = {}
        return state

    def _audio(self, ti: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._mm, self._pid = {}, os.getpid()
        mm = self._mm.get(ti)
        if mm is None:
            mm = np.load(self._cached[ti].audio_path, mmap_mode="r")
            self._mm[ti] = mm
        return mm

    def _read(self, i: int) -> tuple[int, dict[str, np.ndarray]]:
        """Window i as {class: float32 (C, length)} for the track's classes."""
        ti, start = int(self._track_idx[i]), int(self._starts[i])
        audio = self._audio(ti)
        chunk = np.array(audio[:, :, start : start + self.length], dtype=np.float32)
        if chunk.shape[-1] < self.length:
            chunk = np.pad(chunk, ((0, 0), (0, 0), (0, self.length - chunk.shape[-1])))
        return ti, {c: chunk[k] for k, c in enumerate(self._cached[ti].classes)}

    def _out(self, x: np.ndarray) -> torch.Tensor:
        """(C, L) -> (L,) when mono else (C, L)."""
        return torch.from_numpy(x[0] if self.mono else x)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(i)])


class StemWindows(_WindowDataset):
    """MSDM windows: item i -> float32 tensor (S, length) (mono) or (S, 2, length).

    Stems in the order of `stems`; a stem the track does not have is zeros.
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        stems: tuple[str, ...] = MSDM_STEMS,
        sample_rate: int = 16000,
        length: int = 32768,
        max_overlap: float = 0.5,
        mono: bool = True,
        silence_rule: bool = True,
        seed: int = 0,
        jitter: bool = True,
    ):
        self.silence_rule = silence_rule
        super().__init__(
            corpus,
            split,
            stems=tuple(stems),
            sample_rate=sample_rate,
            length=length,
            max_overlap=max_overlap,
            mono=mono,
            seed=seed,
            jitter=jitter,
        )

    def _keep(self, nonsilent: np.ndarray) -> bool:
        return not self.silence_rule or int(nonsilent.sum()) >= 2

    def __getitem__(self, i: int) -> torch.Tensor:
        _, audio = self._read(i)
        channels = 1 if self.mono else 2
        zeros = np.zeros((channels, self.length), dtype=np.float32)
        assert self.stems is not None  # StemWindows always passes its stems
        stacked = np.stack([audio.get(s, zeros) for s in self.stems])
        return torch.from_numpy(stacked[:, 0] if self.mono else stacked)


class SubmixPairs(_WindowDataset):
    """COCOLA pairs: item i -> (a, b), two sums of disjoint non-empty sets of non-silent stems
    of the same window, each (length,) (mono) or (2, length). `stems=None`: all classes."""

    min_nonsilent = 2

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        stems: tuple[str, ...] | None = None,
        sample_rate: int = 16000,
        length: int = 80000,
        max_overlap: float = 0.5,
        mono: bool = True,
        seed: int = 0,
        jitter: bool = True,
    ):
        super().__init__(
            corpus, split, stems=stems, sample_rate=sample_rate, length=length, max_overlap=max_overlap, mono=mono, seed=seed, jitter=jitter
        )

    def subsets(self, i: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The two disjoint stem subsets item i uses."""
        _, _, loud = self.window(i)
        rng = self._rng(i)
        order = [loud[k] for k in rng.permutation(len(loud))]
        n1 = int(rng.integers(1, len(order)))
        n2 = int(rng.integers(1, len(order) - n1 + 1))
        return tuple(sorted(order[:n1])), tuple(sorted(order[n1 : n1 + n2]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = self.subsets(i)
        _, audio = self._read(i)
        a = np.asarray(np.sum([audio[c] for c in first], axis=0, dtype=np.float32))
        b = np.asarray(np.sum([audio[c] for c in second], axis=0, dtype=np.float32))
        return self._out(a), self._out(b)


class StemPrompts(_WindowDataset):
    """CompoNet/GMSDI prompts: item i -> dict with
    "input" / "output": sub-mixes (length,) (or (2, length)); "input" may be all zeros;
    "input_stems" / "output_stems": comma-separated classes; "input_tags" / "output_tags":
    the stems' tags joined with ", "; "prompt": "in: <input tags>; out: <output tags>".
    """

    min_nonsilent = 1

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        stems: tuple[str, ...] | None = None,
        sample_rate: int = 16000,
        length: int = 163840,
        max_overlap: float = 0.5,
        mono: bool = True,
        seed: int = 0,
        jitter: bool = True,
    ):
        super().__init__(
            corpus, split, stems=stems, sample_rate=sample_rate, length=length, max_overlap=max_overlap, mono=mono, seed=seed, jitter=jitter
        )

    def subsets(self, i: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(input stems, output stems) of item i: output non-empty, disjoint from input."""
        _, _, loud = self.window(i)
        rng = self._rng(i)
        order = [loud[k] for k in rng.permutation(len(loud))]
        n_out = int(rng.integers(1, len(order) + 1))
        n_in = int(rng.integers(0, len(order) - n_out + 1))
        return tuple(sorted(order[n_out : n_out + n_in])), tuple(sorted(order[:n_out]))

    def __getitem__(self, i: int) -> dict:
        inputs, outputs = self.subsets(i)
        ti, audio = self._read(i)
        track = self.tracks[ti]
        zeros = np.zeros_like(next(iter(audio.values())))
        mix_in = np.asarray(np.sum([audio[c] for c in inputs], axis=0, dtype=np.float32)) if inputs else zeros
        mix_out = np.asarray(np.sum([audio[c] for c in outputs], axis=0, dtype=np.float32))
        tags_in = ", ".join(t for c in inputs for t in track.tags(c)[:2])
        tags_out = ", ".join(t for c in outputs for t in track.tags(c)[:2])
        return {
            "input": self._out(mix_in),
            "output": self._out(mix_out),
            "input_stems": ",".join(inputs),
            "output_stems": ",".join(outputs),
            "input_tags": tags_in,
            "output_tags": tags_out,
            "prompt": f"in: {tags_in or 'nothing'}; out: {tags_out}",
        }


class SoloStems(_WindowDataset):
    """Single stems: item i -> (track index, class, audio) for one non-silent class of window i,
    drawn at random; audio (length,) (mono) or (2, length). `stems=None`: all classes. For
    encoders that describe one instrument at a time (the CLAP pair)."""

    min_nonsilent = 1

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        *,
        stems: tuple[str, ...] | None = None,
        sample_rate: int = 44100,
        length: int = 220500,
        max_overlap: float = 0.5,
        mono: bool = True,
        seed: int = 0,
        jitter: bool = True,
    ):
        super().__init__(
            corpus, split, stems=stems, sample_rate=sample_rate, length=length, max_overlap=max_overlap, mono=mono, seed=seed, jitter=jitter
        )

    def __getitem__(self, i: int) -> tuple[int, str, torch.Tensor]:
        _, _, loud = self.window(i)
        cls = loud[int(self._rng(i).integers(len(loud)))]
        ti, audio = self._read(i)
        return ti, cls, self._out(audio[cls])
