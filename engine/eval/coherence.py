"""COCOLA evaluation: K-pair classification accuracy (paper eq. 8) and score distributions.

Everything works on embeddings, so the same functions serve a training-time `CocolaNet`
(encoder + W) and an exported model (`Scorer.embed` + `Scorer.similarity`):

    h1, h2: (N, D) embeddings of the two sub-mixes of N windows (pair n = (h1[n], h2[n]))
    weight: (D, D) bilinear similarity matrix W
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def k_pair_accuracy(h1: torch.Tensor, h2: torch.Tensor, weight: torch.Tensor, k: int) -> float:
    """Eq. 8 averaged over floor(N / K) consecutive groups of K pairs.

    In each group, anchor h1[k] is classified correctly when its own partner h2[k] has the
    highest similarity h1[k]^T W h2[j] among the K candidates of the group.
    """
    n = (h1.shape[0] // k) * k
    if n == 0:
        raise ValueError(f"need at least K={k} pairs, got {h1.shape[0]}")
    a = h1[:n].reshape(-1, k, h1.shape[1])
    b = h2[:n].reshape(-1, k, h2.shape[1])
    logits = a @ weight @ b.transpose(1, 2)  # (G, K, K)
    target = torch.arange(k, device=h1.device)
    return float((logits.argmax(dim=2) == target).float().mean())


@dataclass
class ScoreSummary:
    """Distribution of COCOLA scores for one kind of pair."""

    kind: str
    count: int
    mean: float
    std: float
    median: float
    p05: float
    p95: float

    @classmethod
    def of(cls, kind: str, scores: torch.Tensor) -> "ScoreSummary":
        s = scores.double()
        q = torch.quantile(s, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
        return cls(kind, int(s.numel()), float(s.mean()), float(s.std()), float(q[1]), float(q[0]), float(q[2]))


def pair_scores(h1: torch.Tensor, h2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) -> (N,) sim(h1[n], h2[n])."""
    return ((h1 @ weight) * h2).sum(dim=-1)


def derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of range(n) with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError(f"need n >= 2, got {n}")
    perm = torch.randperm(n, generator=generator)
    fixed = perm == torch.arange(n)
    if fixed.any():  # rotate the fixed points among themselves (or with a neighbour)
        idx = torch.nonzero(fixed).flatten()
        if idx.numel() == 1:
            j = (int(idx[0]) + 1) % n
            perm[idx[0]], perm[j] = perm[j].clone(), perm[idx[0]].clone()
        else:
            perm[idx] = perm[idx.roll(1)]
    return perm
