"""Per-track float32 `.npy` caches at a model rate, so training never decodes or resamples.

Files are decoded and resampled by `stemlink.audio` (`files.read_audio`, `resample.resample_array`),
the reader and resampler that serve requests, so a model is trained on audio resampled exactly
as the engine resamples what it is given. For each (rate, channels) the cache folder
`<rate>hz-<mono|stereo>-<resampler>` (`resample.fingerprint()`: a different resampler never
reuses a cache made by another) holds, per track:

    <folder>/<track>.npy          float32 (K, C, T): the K classes
    <folder>/<track>.energy.npy   float64 (K, T // BLOCK): sum of squares of the mono signal per block
    <folder>/<track>.json         classes, length (written last)

Files are written to a temporary name and renamed (atomic), the .json last, so two processes
building the same cache at once both end with complete files and a reader never sees a
half-written one. Arrays are opened as read-only memmaps.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stemlink.audio.files import read_audio
from stemlink.audio.resample import fingerprint, resample_array
from stemlink.lab.data.corpus import Corpus, Track

BLOCK = 64  # samples per energy block


@dataclass(frozen=True)
class CachedTrack:
    id: str
    classes: tuple[str, ...]
    length: int
    audio_path: Path
    energy_path: Path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def load_track_audio(track: Track, sample_rate: int, channels: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Decode, sum per class, resample and fit channels -> (classes, float32 (K, C, T))."""
    classes = tuple(sorted(track.stems))
    arrays = []
    for cls in classes:
        parts = []
        for path in track.stems[cls]:
            audio, rate = read_audio(path)
            audio = resample_array(audio, rate, sample_rate)
            parts.append(audio.mean(axis=0, keepdims=True) if channels == 1 else _to_stereo(audio))
        total = np.zeros((channels, max(p.shape[-1] for p in parts)), dtype=np.float32)
        for part in parts:
            total[:, : part.shape[-1]] += part
        arrays.append(total)
    n = max(a.shape[-1] for a in arrays)
    out = np.zeros((len(arrays), channels, n), dtype=np.float32)
    for k, a in enumerate(arrays):
        out[k, :, : a.shape[-1]] = a
    return classes, out


def _to_stereo(audio: np.ndarray) -> np.ndarray:
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] == 2:
        return audio
    return np.stack([audio[0::2].mean(0), audio[1::2].mean(0)])  # >2 channels: fold L/R


def block_energy(audio: np.ndarray) -> np.ndarray:
    """(K, C, T) -> (K, T // BLOCK) float64 sum of squares of the channel-mean signal."""
    mono = audio.mean(axis=1, dtype=np.float64)
    nb = mono.shape[-1] // BLOCK
    return (mono[:, : nb * BLOCK] ** 2).reshape(mono.shape[0], nb, BLOCK).sum(-1)


def cache_folder(corpus: Corpus, sample_rate: int, mono: bool) -> Path:
    """Where the cache of `corpus` at `sample_rate` lives; named after the resampler that made it."""
    return corpus.cache_dir / f"{sample_rate}hz-{'mono' if mono else 'stereo'}-{fingerprint()}"


def ensure_cached(corpus: Corpus, tracks: list[Track], sample_rate: int, mono: bool = True, verbose: bool = True) -> list[CachedTrack]:
    """Build (once) and describe the cache of `tracks` at `sample_rate`."""
    folder = cache_folder(corpus, sample_rate, mono)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    missing = [t for t in tracks if not (folder / f"{_safe(t.id)}.json").exists()]
    if missing and verbose:
        print(
            f"[data] caching {len(missing)} tracks at {sample_rate} Hz ({'mono' if mono else 'stereo'}) -> {folder}",
            file=sys.stderr,
            flush=True,
        )
    for track in tracks:
        name = _safe(track.id)
        info_path = folder / f"{name}.json"
        audio_path, energy_path = folder / f"{name}.npy", folder / f"{name}.energy.npy"
        if not info_path.exists():
            classes, audio = load_track_audio(track, sample_rate, 1 if mono else 2)
            _atomic_save(audio_path, audio)
            _atomic_save(energy_path, block_energy(audio))
            tmp = info_path.with_name(f".{info_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"id": track.id, "classes": list(classes), "length": int(audio.shape[-1])}))
            os.replace(tmp, info_path)
        info = json.loads(info_path.read_text())
        out.append(CachedTrack(track.id, tuple(info["classes"]), int(info["length"]), audio_path, energy_path))
    return out
