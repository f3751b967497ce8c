"""Reconstruction quality of audio codecs on held-out stereo audio, side by side in one run
(`stemlink eval codec`, issue 14 part 1).

Items: deterministic stereo windows of a corpus split (`codec_items`): for every window, its mix
and one of its non-silent stems (seeded pick), each levelled to -20 dBFS RMS. Systems:
  identity        the STFT analysis/synthesis every STFT system shares (the metrics' floor)
  mel-griffinlim  128-band log-mel at 2048/512 (22,050 values/s for stereo), inverted by the
                  filterbank's pseudo-inverse and 64 iterations of fast Griffin-Lim
  codec           an exported `NAME.encoder` / `NAME.decoder` pair, or a training checkpoint
Figures per system: multi-resolution STFT distance, log-mel distance (`audio_distance`), SI-SDR
(dB, mean over channels and items), values per second of the representation, and decode speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from stemlink.engine import spectral
from stemlink.lab.eval.audio_distance import log_mel, mel_basis, mel_distance, multires_stft_distance
from stemlink.lab.eval.separation import si_sdr

Codec = Callable[[torch.Tensor], torch.Tensor]  # (B, C, T) -> (B, C, T)
LEVEL_DB = -20.0


def codec_items(root: str, split: str, *, seconds: float, limit: int, sample_rate: int = 44100, seed: int = 0) -> list[torch.Tensor]:
    """Up to 2 * `limit` stereo items (2, T): each window's mix and one non-silent stem; `split` may
    join several splits with commas (train,valid,test: a whole held-out corpus)."""
    from stemlink.lab.data import StemWindows, open_corpus
    from stemlink.lab.train.codec_data import loud_stems

    stems = ("bass", "drums", "guitar", "piano")
    length = int(round(seconds * sample_rate))
    corpus = open_corpus(root)
    sets = [
        StemWindows(corpus, part, stems=stems, sample_rate=sample_rate, length=length, mono=False, jitter=False, seed=seed)
        for part in split.split(",")
    ]
    index = [(ws, i) for ws in sets for i in range(len(ws))]
    rng = np.random.default_rng(seed)
    picks = np.linspace(0, len(index) - 1, min(limit, len(index))).round().astype(int)
    items: list[torch.Tensor] = []
    for k in picks:
        ws, i = index[int(k)]
        w = ws[i].float()  # (S, 2, T)
        loud = loud_stems(w, -50.0)
        items.append(w.sum(dim=0))
        if loud:
            items.append(w[loud[int(rng.integers(0, len(loud)))]])
    return [x * (10 ** (LEVEL_DB / 20) / x.pow(2).mean().sqrt().clamp_min(1e-8)) for x in items]


def identity_round_trip(n_fft: int = 2048, hop: int = 512) -> Codec:
    def run(audio: torch.Tensor) -> torch.Tensor:
        b, c, t = audio.shape
        flat = audio.reshape(b * c, t)
        return spectral.istft(spectral.stft(flat, n_fft, hop), n_fft, hop, t).reshape(b, c, t)

    return run


def mel_griffin_lim(
    sample_rate: int, *, n_fft: int = 2048, hop: int = 512, n_mels: int = 128, iterations: int = 64, seed: int = 0
) -> Codec:
    """Log-mel analysis -> pseudo-inverse filterbank -> fast Griffin-Lim (momentum 0.99)."""
    inverse = torch.linalg.pinv(mel_basis(sample_rate, n_fft, n_mels).double()).float()  # (n_mels, F)

    def run(audio: torch.Tensor) -> torch.Tensor:
        b, c, t = audio.shape
        mel_power = 10 ** log_mel(audio, sample_rate, n_fft, hop, n_mels)  # (B*C, M, N): what the representation keeps
        magnitude = torch.einsum("bmn,mf->bfn", mel_power, inverse).clamp_min(0).sqrt()
        g = torch.Generator().manual_seed(seed)
        angles = torch.exp(2j * math.pi * torch.rand(magnitude.shape, generator=g))
        previous = torch.zeros_like(angles)
        for _ in range(iterations):
            rebuilt = spectral.stft(spectral.istft(magnitude * angles, n_fft, hop, t), n_fft, hop)
            accelerated = rebuilt + 0.99 * (rebuilt - previous)
            previous = rebuilt
            angles = accelerated / accelerated.abs().clamp_min(1e-8)
        return spectral.istft(magnitude * angles, n_fft, hop, t).reshape(b, c, t)

    return run


@dataclass
class CodecScores:
    system: str
    values_per_second: float
    stft_distance: float = 0.0
    mel_distance: float = 0.0
    si_sdr: float = 0.0
    items: int = 0
    seconds: float = 0.0  # wall time of the system over all items
    audio_seconds: float = 0.0

    def add(self, est: torch.Tensor, ref: torch.Tensor, sample_rate: int) -> None:
        n = self.items
        self.stft_distance = (self.stft_distance * n + float(multires_stft_distance(est, ref))) / (n + 1)
        self.mel_distance = (self.mel_distance * n + float(mel_distance(est, ref, sample_rate))) / (n + 1)
        self.si_sdr = (self.si_sdr * n + float(si_sdr(ref, est).clamp(max=100.0).mean())) / (n + 1)
        self.items = n + 1
        self.audio_seconds += ref.shape[-1] / sample_rate

    def record(self) -> dict:
        return {
            "system": self.system,
            "items": self.items,
            "values_per_second": round(self.values_per_second, 1),
            "stft_distance": round(self.stft_distance, 4),
            "mel_distance": round(self.mel_distance, 4),
            "si_sdr": round(self.si_sdr, 2),
            "x_realtime": round(self.audio_seconds / max(self.seconds, 1e-9), 1),
        }


@torch.no_grad()
def score_codec(system: str, codec: Codec, items: list[torch.Tensor], sample_rate: int, values_per_second: float) -> CodecScores:
    scores = CodecScores(system, values_per_second)
    for x in items:
        start = time.perf_counter()
        y = codec(x[None])
        scores.seconds += time.perf_counter() - start
        scores.add(y[0], x, sample_rate)
    return scores
