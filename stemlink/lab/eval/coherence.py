"""COCOLA evaluation: K-pair classification accuracy (paper eq. 8) and score distributions.

Everything works on embeddings, so the same functions serve a training-time `CocolaNet`
(encoder + W) and an exported model (`Scorer.embed` + `Scorer.similarity`):

    h1, h2: (N, D) embeddings of the two sub-mixes of N windows (pair n = (h1[n], h2[n]))
    weight: (D, D) bilinear similarity matrix W
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    def of(cls, kind: str, scores: torch.Tensor) -> ScoreSummary:
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


@dataclass
class PairEmbeddings:
    """Embeddings of N sub-mix pairs plus where each window came from."""

    h1: torch.Tensor  # (N, D)
    h2: torch.Tensor  # (N, D)
    tracks: list[str]
    starts: list[int]  # window start, samples at the model rate


def embed_pairs(
    embed: Callable[[torch.Tensor], torch.Tensor], dataset: Any, count: int, *, seed: int = 0, batch: int = 32
) -> PairEmbeddings:
    """Embed `count` seeded-random pairs of a `SubmixPairs`-like dataset (items (a, b), `window(i)`)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:count].tolist()
    h1, h2, tracks, starts = [], [], [], []
    for i in range(0, len(idx), batch):
        items = [dataset[j] for j in idx[i : i + batch]]
        with torch.inference_mode():
            h1.append(embed(torch.stack([torch.as_tensor(a).float() for a, _ in items])))
            h2.append(embed(torch.stack([torch.as_tensor(b).float() for _, b in items])))
        for j in idx[i : i + batch]:
            track, start, _ = dataset.window(j)
            tracks.append(track)
            starts.append(start)
    return PairEmbeddings(torch.cat(h1).float(), torch.cat(h2).float(), tracks, starts)


def score_distributions(pairs: PairEmbeddings, weight: torch.Tensor, length: int, *, seed: int = 0) -> list[ScoreSummary]:
    """COCOLA score of ground-truth pairs vs random pairs from different tracks vs pairs from the
    same track at a different, non-overlapping time (|start difference| >= length)."""
    g = torch.Generator().manual_seed(seed)
    n = pairs.h1.shape[0]
    truth = pair_scores(pairs.h1, pairs.h2, weight)
    all_scores = pairs.h1 @ weight @ pairs.h2.t()  # (N, N), row = anchor
    tracks = pairs.tracks
    starts = torch.tensor(pairs.starts)
    same_track = torch.tensor([[tracks[i] == tracks[j] for j in range(n)] for i in range(n)])
    far = (starts[:, None] - starts[None, :]).abs() >= length
    other, same_far = [], []
    for i in range(n):
        others = torch.nonzero(~same_track[i]).flatten()
        if others.numel():
            other.append(all_scores[i, others[torch.randint(others.numel(), (1,), generator=g)]])
        candidates = torch.nonzero(same_track[i] & far[i]).flatten()
        if candidates.numel():
            same_far.append(all_scores[i, candidates[torch.randint(candidates.numel(), (1,), generator=g)]])
    out = [ScoreSummary.of("ground truth (same window)", truth)]
    if other:
        out.append(ScoreSummary.of("random (different track)", torch.cat(other)))
    if same_far:
        out.append(ScoreSummary.of("same track, different time", torch.cat(same_far)))
    return out


class SplitUnion:
    """Several `SubmixPairs`-like datasets seen as one (items and `window(i)`)."""

    def __init__(self, parts: list[Any]):
        self.parts = parts
        self.offsets = [0]
        for part in parts:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def _locate(self, i: int) -> tuple[Any, int]:
        k = max(j for j, off in enumerate(self.offsets[:-1]) if off <= i)
        return self.parts[k], i - self.offsets[k]

    def __getitem__(self, i: int) -> Any:
        part, j = self._locate(i)
        return part[j]

    def window(self, i: int) -> Any:
        part, j = self._locate(i)
        return part.window(j)


def _scorer(args: Any) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, int, int, str]:
    """(embed fn, W, sample rate, window, label) from --checkpoint or an exported --model."""
    if args.checkpoint:
        from stemlink.lab.export.cocola import load_cocola

        net, state = load_cocola(args.checkpoint)
        cfg = net.config
        return (
            net.encoder,
            net.similarity.weight.detach(),
            cfg.sample_rate,
            cfg.clip_samples,
            f"checkpoint {args.checkpoint} (step {state.get('step')})",
        )
    from stemlink.engine.models.cocola import CocolaModel
    from stemlink.engine.registry import ModelRegistry
    from stemlink.errors import InvalidInput

    model = ModelRegistry(args.exports, device="cpu").get(args.model, args.format)
    if not isinstance(model, CocolaModel):
        raise InvalidInput(f"--model {args.model!r} is family {model.spec.family!r}; coherence needs a 'cocola' model", field="model")
    return model.embed, model.weight, model.sample_rate, model.window, f"{model.name} ({model.spec.format})"


def main(argv: list[str] | None = None) -> int:
    """`python -m stemlink.lab.eval.coherence (--model NAME | --checkpoint CKPT) --data DIR ...`"""
    import argparse
    import json
    from dataclasses import asdict

    parser = argparse.ArgumentParser(description="COCOLA K-pair accuracy and score distributions on a corpus split")
    parser.add_argument("--model", default="cocola-small")
    parser.add_argument("--format", default=None, help="onnx | torchscript (default: the registry's choice)")
    parser.add_argument("--exports", default=None)
    parser.add_argument("--checkpoint", default=None, help="evaluate a training checkpoint instead of an export")
    parser.add_argument("--data", action="append", required=True, help="corpus root (repeatable)")
    parser.add_argument("--split", default="test", help="split name, or several joined by commas (e.g. train,valid,test)")
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from stemlink.lab.data import SubmixPairs, open_corpus

    embed, weight, rate, window, label = _scorer(args)
    results: dict[str, Any] = {"model": label, "split": args.split, "seed": args.seed, "sets": {}}
    for root in args.data:
        corpus = open_corpus(root)
        data = SplitUnion(
            [
                SubmixPairs(corpus, split, sample_rate=rate, length=window, max_overlap=0.5, seed=args.seed, jitter=False)
                for split in args.split.split(",")
            ]
        )
        pairs = embed_pairs(embed, data, args.pairs, seed=args.seed)
        n = pairs.h1.shape[0]
        acc = {f"K={k}": k_pair_accuracy(pairs.h1, pairs.h2, weight, k) for k in args.ks if k <= n}
        dists = score_distributions(pairs, weight, window, seed=args.seed)
        results["sets"][str(root)] = {
            "pairs": n,
            "tracks": len(set(pairs.tracks)),
            "windows": len(data),
            "accuracy": acc,
            "scores": [asdict(d) for d in dists],
        }
        print(f"{root} [{args.split}] {n} pairs from {len(set(pairs.tracks))} tracks, model {label}")
        print("  accuracy " + "  ".join(f"{k} {v * 100:.1f}% ({n // int(k[2:])} groups)" for k, v in acc.items()))
        for d in dists:
            print(
                f"  score {d.kind:28s} n={d.count:5d} mean {d.mean:8.3f} std {d.std:7.3f} "
                f"median {d.median:8.3f} [p05 {d.p05:8.3f}, p95 {d.p95:8.3f}]"
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
