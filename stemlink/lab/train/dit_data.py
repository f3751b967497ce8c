"""Training items for the latent DiT (issue 14 part 2): (target latents, context latents,
embedding) from the corpus, encoded once by a frozen codec encoder and cached.

    cache = LatentCache.build(corpus_root, split, encoder, encoder_id)     # once per codec and split
    batches = dit_batches(cache, frames=215, batch=8, seed=0)             # endless
    target, context, embedding = next(batches)                            # (B, D, L), (B, D, L), (B, 0)

Latents are not additive, so every context is encoded from its own audio. Per track the cache
holds, at the codec's latent rate:
  stems     (K, D, L) float16  every class of the track alone
  contexts  (M, D, L) float16  for each class k: the mix of all other classes, then `extra_contexts`
                               random non-empty subsets of them (Diff-A-Riff's "random subset of the
                               remaining tracks")
  owner     (M,) int           the target class each context belongs to
  level_db  (K + M, L) float32 RMS in dBFS of the audio behind each latent frame (stems, then contexts)
in `<corpus>/.cache/latents-<encoder_id>-<split>/<track>.npz`, written atomically.

An item: a random track, a random target class, one of its contexts (the full rest of the mix with
probability `full_context`), a random crop of `frames` latent frames in which the target and the
context are both audible for at least half the frames, and (with an `EmbedSource`) the CLAP audio
embedding of another segment of the same target stem, as the paper does to avoid leakage.
Embeddings live in their own cache, `<corpus>/.cache/clap-<id>-<split>-s<samples per latent>/`:
embeddings (K, S, E) of half-overlapping CLAP windows of every stem, their latent-frame spans,
and which are audible; without an `EmbedSource` the embedding is (B, 0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stemlink.errors import InvalidInput

Encode = Callable[[torch.Tensor], torch.Tensor]  # (B, C, T) audio -> (B, D, L) latents


@dataclass(frozen=True)
class PairConfig:
    frames: int = 215  # latent frames per item (10 s at 21.5 Hz)
    extra_contexts: int = 2  # random context subsets per target, besides the full rest of the mix
    full_context: float = 0.5  # share of items whose context is the full rest of the mix
    audible_db: float = -50.0  # a latent frame counts as audible above this RMS

    def __post_init__(self) -> None:
        if self.frames < 1 or self.extra_contexts < 0 or not 0 <= self.full_context <= 1:
            raise ValueError("frames >= 1, extra_contexts >= 0 and full_context in [0, 1] are required")


@dataclass(frozen=True)
class LatentTrack:
    id: str
    classes: tuple[str, ...]
    stems: np.ndarray  # (K, D, L) float16
    contexts: np.ndarray  # (M, D, L) float16
    owner: np.ndarray  # (M,)
    level_db: np.ndarray  # (K + M, L)
    embeddings: np.ndarray | None = None  # (K, S, E) CLAP audio embeddings of S segments of each stem
    segments: np.ndarray | None = None  # (S, 2) latent-frame spans [first, last) of those segments
    segment_audible: np.ndarray | None = None  # (K, S) bool


def _frame_level_db(audio: np.ndarray, samples_per_latent: int, frames: int) -> np.ndarray:
    """(N, C, T) -> (N, frames) RMS in dBFS per latent frame (zero-padded to whole frames)."""
    n, _, t = audio.shape
    padded = np.zeros((n, frames * samples_per_latent), dtype=np.float64)
    mono = audio.mean(axis=1)
    padded[:, : min(t, padded.shape[1])] = mono[:, : padded.shape[1]]
    power = (padded.reshape(n, frames, samples_per_latent) ** 2).mean(-1)
    return (10 * np.log10(power + 1e-12)).astype(np.float32)


def _context_sets(classes: int, extra: int, rng: np.random.Generator) -> list[tuple[int, tuple[int, ...]]]:
    """(owner, members) for every target: the full rest first, then up to `extra` other random subsets."""
    out = []
    for k in range(classes):
        rest = tuple(i for i in range(classes) if i != k)
        if not rest:
            continue
        chosen = {rest}
        out.append((k, rest))
        for _ in range(4 * extra):
            if len(chosen) > extra:
                break
            pick = tuple(i for i in rest if rng.random() < 0.5)
            if pick and pick not in chosen:
                chosen.add(pick)
                out.append((k, pick))
    return out


def encode_track(audio: np.ndarray, encode: Encode, samples_per_latent: int, extra: int, seed: int) -> dict[str, np.ndarray]:
    """(K, C, T) class audio -> the arrays of one cache file."""
    rng = np.random.default_rng(seed)
    sets = _context_sets(audio.shape[0], extra, rng)
    mixes = np.stack([audio[list(members)].sum(axis=0) for _, members in sets]) if sets else audio[:0]
    every = np.concatenate([audio, mixes])
    with torch.no_grad():
        latents = torch.cat([encode(torch.from_numpy(every[i : i + 1]).float()) for i in range(len(every))]).numpy()
    frames = latents.shape[-1]
    return {
        "stems": latents[: len(audio)].astype(np.float16),
        "contexts": latents[len(audio) :].astype(np.float16),
        "owner": np.array([k for k, _ in sets], dtype=np.int64),
        "level_db": _frame_level_db(every, samples_per_latent, frames),
    }


@dataclass(frozen=True)
class EmbedSource:
    """The audio encoder the conditioning embeddings come from (the CLAP pair's audio tower)."""

    embed: Callable[[torch.Tensor], torch.Tensor]  # (B, window) mono -> (B, E)
    id: str  # cache key (its file's sha256 prefix)
    window: int  # samples per embedded segment, at the corpus cache rate


def embed_segments(audio: np.ndarray, source: EmbedSource, samples_per_latent: int) -> dict[str, np.ndarray]:
    """(K, C, T) class audio -> embeddings (K, S, E) of half-overlapping `window` segments, their
    latent-frame spans (S, 2) and which are audible (K, S)."""
    mono = audio.mean(axis=1)
    w = source.window
    starts = list(range(0, max(1, mono.shape[-1] - w + 1), w // 2))
    segs = np.zeros((mono.shape[0], len(starts), w), dtype=np.float32)
    for j, a in enumerate(starts):
        piece = mono[:, a : a + w]
        segs[:, j, : piece.shape[-1]] = piece
    rms = np.sqrt(np.mean(np.square(segs, dtype=np.float64), axis=-1))
    audible = rms > 10 ** (-50 / 20)
    scaled = segs * (0.1 / np.maximum(rms, 1e-6))[..., None].astype(np.float32)  # CLAP sees every stem at -20 dBFS
    with torch.no_grad():
        flat = torch.from_numpy(scaled.reshape(-1, w))
        emb = torch.cat([source.embed(flat[i : i + 16]) for i in range(0, len(flat), 16)]).numpy()
    spans = np.array([[a // samples_per_latent, (a + w) // samples_per_latent] for a in starts], dtype=np.int64)
    return {"embeddings": emb.reshape(mono.shape[0], len(starts), -1).astype(np.float16), "segments": spans, "segment_audible": audible}


def _atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


class LatentCache:
    def __init__(self, tracks: list[LatentTrack], latent_dim: int, embed_dim: int = 0):
        if not tracks:
            raise InvalidInput("the latent cache holds no track with two or more classes", field="data")
        self.tracks = tracks
        self.latent_dim = latent_dim
        self.embed_dim = embed_dim

    @classmethod
    def build(
        cls,
        root: str | os.PathLike,
        split: str,
        encode: Encode,
        encoder_id: str,
        *,
        sample_rate: int,
        samples_per_latent: int,
        extra_contexts: int = 2,
        embed: EmbedSource | None = None,
        verbose: bool = True,
    ) -> LatentCache:
        from stemlink.lab.data import open_corpus
        from stemlink.lab.data.cache import ensure_cached

        corpus = open_corpus(root)
        folder = corpus.cache_dir / f"latents-{encoder_id}-{split}-x{extra_contexts}"
        folder.mkdir(parents=True, exist_ok=True)
        emb_folder = corpus.cache_dir / f"clap-{embed.id}-{split}-s{samples_per_latent}" if embed else None
        if emb_folder is not None:
            emb_folder.mkdir(parents=True, exist_ok=True)
        cached = ensure_cached(corpus, corpus.tracks(split), sample_rate, mono=False, verbose=verbose)
        tracks: list[LatentTrack] = []
        for n, item in enumerate(cached):
            path = folder / f"{item.id}.npz"
            emb_path = emb_folder / f"{item.id}.npz" if emb_folder is not None else None
            if not path.exists() or (emb_path is not None and not emb_path.exists()):
                audio = np.asarray(np.load(item.audio_path, mmap_mode="r"))
                if not path.exists():
                    _atomic_npz(path, encode_track(audio, encode, samples_per_latent, extra_contexts, seed=n))
                if embed is not None and emb_path is not None and not emb_path.exists():
                    _atomic_npz(emb_path, embed_segments(audio, embed, samples_per_latent))
                if verbose:
                    print(f"[latents] {n + 1}/{len(cached)} {item.id} -> {path}", file=sys.stderr, flush=True)
            with np.load(path) as f:
                arrays = {k: f[k] for k in ("stems", "contexts", "owner", "level_db")}
            if emb_path is not None:
                with np.load(emb_path) as f:
                    arrays |= {k: f[k] for k in ("embeddings", "segments", "segment_audible")}
            track = LatentTrack(item.id, item.classes, **arrays)
            if len(track.owner):
                tracks.append(track)
        latent_dim = int(tracks[0].stems.shape[1]) if tracks else 0
        return cls(tracks, latent_dim, embed_dim=int(tracks[0].embeddings.shape[-1]) if tracks and tracks[0].embeddings is not None else 0)


def _embedding(track: LatentTrack, k: int, span: slice, rng: np.random.Generator) -> np.ndarray:
    """The conditioning embedding of target k: an audible segment of the same stem that does not
    overlap the item (the paper's no-leakage rule), else the audible one that overlaps it least."""
    assert track.embeddings is not None and track.segments is not None and track.segment_audible is not None
    lo, hi = span.start, span.stop
    overlap = np.clip(np.minimum(track.segments[:, 1], hi) - np.maximum(track.segments[:, 0], lo), 0, None)
    audible = track.segment_audible[k]
    free = np.flatnonzero(audible & (overlap == 0))
    if len(free):
        j = int(free[int(rng.integers(len(free)))])
    else:
        j = int(np.argmin(np.where(audible, overlap, np.iinfo(np.int64).max)))
    return track.embeddings[k, j].astype(np.float32)


def _draw(cache: LatentCache, cfg: PairConfig, rng: np.random.Generator, tries: int = 50) -> tuple[np.ndarray, ...] | None:
    track = cache.tracks[int(rng.integers(len(cache.tracks)))]
    k = int(track.owner[int(rng.integers(len(track.owner)))])
    options = np.flatnonzero(track.owner == k)
    m = int(options[0]) if rng.random() < cfg.full_context or len(options) == 1 else int(options[1 + rng.integers(len(options) - 1)])
    n_stems = track.stems.shape[0]
    length = track.stems.shape[-1]
    for _ in range(tries):
        start = int(rng.integers(0, max(1, length - cfg.frames + 1)))
        span = slice(start, start + cfg.frames)
        target_ok = (track.level_db[k, span] > cfg.audible_db).mean() >= 0.5
        context_ok = (track.level_db[n_stems + m, span] > cfg.audible_db).mean() >= 0.5
        if target_ok and context_ok:
            emb = _embedding(track, k, span, rng) if track.embeddings is not None else np.zeros(0, dtype=np.float32)
            return _fit(track.stems[k, :, span], cfg.frames), _fit(track.contexts[m, :, span], cfg.frames), emb
    return None


def _fit(x: np.ndarray, frames: int) -> np.ndarray:
    """(D, l) -> (D, frames), zero-padded at the end when the track is shorter than an item."""
    if x.shape[-1] == frames:
        return x.astype(np.float32)
    out = np.zeros((x.shape[0], frames), dtype=np.float32)
    out[:, : x.shape[-1]] = x
    return out


def dit_batches(cache: LatentCache, cfg: PairConfig, *, batch: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless (target (B, D, L), context (B, D, L), embedding (B, E)) float32 batches; E = 0 when
    the cache holds no embeddings."""
    rng = np.random.default_rng(seed)
    while True:
        items: list[tuple[np.ndarray, ...]] = []
        misses = 0
        while len(items) < batch:
            item = _draw(cache, cfg, rng)
            if item is None:
                misses += 1
                if misses > 100 * batch:
                    raise InvalidInput(f"no {cfg.frames}-frame window with an audible target and context in the cache", field="data")
                continue
            items.append(item)
        yield tuple(torch.from_numpy(np.stack([it[j] for it in items])) for j in range(3))  # type: ignore[misc]
