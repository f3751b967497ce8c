"""Train a COCOLA encoder: `stemlink train cocola --preset NAME [--data DIR --out DIR --resume ...]`.

A preset (presets/train/cocola-*.toml) has three tables, each becoming one dataclass:
[model] -> `CocolaConfig` (via `build_cocola`), [train] -> `TrainConfig`, [data] -> `DataConfig`.

Each step draws B windows; for each, two disjoint non-empty sub-mixes (m1, m2) (the corpus'
`SubmixPairs`, or `SyntheticPairs` for smoke runs), adds Gaussian noise (sigma 1e-3) to both,
encodes all 2B clips in one pass and minimises eq. 3 on the (B, B) bilinear logits.
Logged: loss and in-batch accuracy every `log_every` steps, validation K=2 / K=8 accuracy on a
fixed set of validation pairs every `eval_every` steps, in `OUT/train.log` (text) and
`OUT/metrics.jsonl`. Checkpoints (`OUT/last.pt`, best validation K=2 in `OUT/best.pt`) describe
themselves: family, model config, train config, weights, optimizer, step, metrics.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, cast

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint, save_checkpoint, warm_start
from stemlink.lab.nn.cocola import CocolaConfig, CocolaNet, build_cocola, contrastive_loss, pair_accuracy
from stemlink.lab.train.loop import Budget, JsonlLog
from stemlink.lab.train.presets import read_train_preset, typed_table

if TYPE_CHECKING:
    from stemlink.lab.data import SubmixPairs


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    lr: float = 1e-3
    # Adam step size of W relative to `lr`. Adam moves every entry of the D x D matrix by ~lr
    # per step; on unit-norm embeddings that shifts a logit by at most ~lr * D.
    similarity_lr_scale: float = 1.0
    noise_sigma: float = 1e-3
    max_steps: int = 100_000
    max_minutes: float | None = None
    threads: int | None = None
    log_every: int = 10
    eval_every: int = 200
    eval_pairs: int = 256
    checkpoint_minutes: float = 5.0
    num_workers: int = 0


@dataclass(frozen=True)
class DataConfig:
    source: str = "corpus"  # "corpus" (stemlink.lab.data) | "synthetic"
    root: str | tuple[str, ...] = "data/corpus"  # one corpus folder, or several trained on together
    train_split: str = "train"
    valid_split: str = "valid"
    max_overlap: float = 0.5


def load_cocola_preset(name_or_path: str) -> tuple[dict[str, Any], TrainConfig, DataConfig]:
    """presets/train/NAME.toml (or a path) -> (model kwargs, TrainConfig, DataConfig)."""
    name, tables = read_train_preset(name_or_path, tables=("model", "train", "data"))
    model = dict(tables.get("model", {}))
    typed_table(CocolaConfig, model, f"{name}[model]")  # validate keys and types early
    return (
        model,
        typed_table(TrainConfig, tables.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, tables.get("data", {}), f"{name}[data]"),
    )


class SyntheticPairs(Dataset):
    """Pairs that share a musical 'moment' (pitch and rhythm) but not a timbre.

    Item i (deterministic in seed, i): a = sine at f0 gated by pulses at rate p; b = a brighter
    tone at a consonant multiple of f0 gated by the same pulses, shifted by a small offset.
    Returns (a, b), each (length,) float32.
    """

    def __init__(self, length: int, sample_rate: int, size: int = 10_000, seed: int = 0):
        self.length, self.sample_rate, self.size, self.seed = length, sample_rate, size, seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        u = torch.rand(5, generator=g)
        t = torch.arange(self.length, dtype=torch.float32) / self.sample_rate
        f0 = 110.0 * 2 ** (3 * u[0])  # 110-880 Hz
        rate = 1.0 + 7.0 * u[1]  # pulses per second
        phase = u[2]
        gate = ((t * rate + phase) % 1.0 < 0.35).float()
        ratio = (1.5, 2.0, 1.25, 3.0)[int(u[3] * 4) % 4]
        a = 0.3 * torch.sin(2 * math.pi * f0 * t) * gate
        b_tone = torch.sign(torch.sin(2 * math.pi * f0 * ratio * t)) * 0.1
        b = b_tone * gate * (0.5 + u[4])
        return a, b


def pair_dataset(data: DataConfig, split: str, sample_rate: int, length: int, seed: int) -> PairDataset:
    """The (a, b) sub-mix pair dataset for one split."""
    if data.source == "synthetic":
        return SyntheticPairs(
            length, sample_rate, size=20_000 if split == data.train_split else 512, seed=seed + (0 if split == data.train_split else 7919)
        )
    if data.source != "corpus":
        raise PresetError(f"data.source must be 'corpus' or 'synthetic', got {data.source!r}", field="data.source")
    from stemlink.lab.data import SubmixPairs, open_corpus

    roots = [data.root] if isinstance(data.root, str) else list(data.root)
    if not roots:
        raise PresetError("data.root names no corpus folder", field="data.root")
    parts = [
        SubmixPairs(open_corpus(root), split, sample_rate=sample_rate, length=length, max_overlap=data.max_overlap, seed=seed + 101 * i)
        for i, root in enumerate(roots)
    ]
    return parts[0] if len(parts) == 1 else ConcatPairs(parts)


class ConcatPairs(ConcatDataset):
    """Pairs from several corpora (e.g. procedural songs + chorales); forwards `set_epoch`.

    A new epoch re-draws each part's window grid, which can change its length, so the
    offsets into the parts are recomputed."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            cast("SubmixPairs", part).set_epoch(epoch)
        self.cumulative_sizes = self.cumsum(self.datasets)


# the (a, b) sub-mix pair datasets training reads (sized, indexable)
PairDataset = Union[SyntheticPairs, "SubmixPairs", ConcatPairs]


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def fixed_pairs(dataset: PairDataset, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` pairs drawn once (seeded) from `dataset` -> (a, b), each (count, T)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:count].tolist()
    pairs = [dataset[i] for i in idx]
    return (torch.stack([_as_tensor(p[0]).float() for p in pairs]), torch.stack([_as_tensor(p[1]).float() for p in pairs]))


@torch.no_grad()
def embed_batched(encoder: torch.nn.Module, audio: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """(N, T) -> (N, D), in batches."""
    return torch.cat([encoder(audio[i : i + batch]) for i in range(0, audio.shape[0], batch)])


@torch.no_grad()
def validate(net: CocolaNet, a: torch.Tensor, b: torch.Tensor, ks: tuple[int, ...] = (2, 8)) -> dict[str, float]:
    """K-pair accuracy (eq. 8) over consecutive groups of K fixed validation pairs."""
    from stemlink.lab.eval.coherence import k_pair_accuracy

    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    h1 = embed_batched(net.encoder, a.to(device))
    h2 = embed_batched(net.encoder, b.to(device))
    out = {f"val_acc_k{k}": k_pair_accuracy(h1, h2, net.similarity.weight, k) for k in ks}
    net.train(was_training)
    return out


class RunLog:
    """Appends human lines to OUT/train.log and JSON records to OUT/metrics.jsonl."""

    def __init__(self, out: Path):
        self.text = out / "train.log"
        self.jsonl = JsonlLog(out / "metrics.jsonl")

    def line(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        with open(self.text, "a") as f:
            f.write(f"{stamp} {message}\n")
        print(message, flush=True)

    def record(self, **values: Any) -> None:
        self.jsonl.write(**values)


def save(
    path: Path, net: CocolaNet, optimizer: torch.optim.Optimizer, step: int, train: TrainConfig, data: DataConfig, metrics: dict[str, Any]
) -> None:
    """Atomic write of a self-describing checkpoint (`stemlink.lab.checkpoints`)."""
    save_checkpoint(
        path,
        family="cocola",
        cls="CocolaNet",
        config=net.config.to_dict(),
        train_config=asdict(train),
        data_config=asdict(data),
        model=net.state_dict(),
        optimizer=optimizer.state_dict(),
        step=step,
        metrics=dict(metrics),
    )


def _infinite(loader: DataLoader, epoch: int):
    while True:
        if hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def train(
    model_kwargs: dict[str, Any],
    train_cfg: TrainConfig,
    data_cfg: DataConfig,
    out: Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    seed: int = 0,
    init: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) training until max_steps or max_minutes; returns the last metrics."""
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out)
    torch.manual_seed(seed)
    net = build_cocola(**model_kwargs).to(device)
    cfg = net.config
    w_scale = train_cfg.similarity_lr_scale
    groups: list[dict[str, Any]] = [
        {"params": list(net.encoder.parameters())},
        {"params": list(net.similarity.parameters()), "lr": train_cfg.lr * w_scale},
    ]
    optimizer = torch.optim.Adam(groups, lr=train_cfg.lr)
    step, best, metrics = 0, -1.0, {}
    last = out / "last.pt"
    if init and not (resume and last.is_file()):
        log.line(f"initialised from {warm_start(net, init)}")
    if resume and last.is_file():
        state = load_checkpoint(last, map_location=device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, metrics = state["step"], state.get("metrics", {})
        best = metrics.get("best_val_acc_k2", -1.0)
        log.line(f"resumed from {last} at step {step}")
    n_params = sum(p.numel() for p in net.parameters())
    log.line(
        f"cocola {cfg.backbone} {n_params / 1e6:.2f}M params, clip {cfg.clip_samples} samples @ {cfg.sample_rate} Hz, "
        f"batch {train_cfg.batch_size}, device {device}, threads {torch.get_num_threads()}"
    )

    train_set = pair_dataset(data_cfg, data_cfg.train_split, cfg.sample_rate, cfg.clip_samples, seed)
    val_set = pair_dataset(data_cfg, data_cfg.valid_split, cfg.sample_rate, cfg.clip_samples, seed + 1)
    val_a, val_b = fixed_pairs(val_set, min(train_cfg.eval_pairs, len(val_set)), seed=1234)
    log.line(f"data: {len(train_set)} train items, {len(val_set)} valid items, {val_a.shape[0]} fixed valid pairs")
    g = torch.Generator().manual_seed(seed * 7 + step)
    loader = DataLoader(
        train_set, batch_size=train_cfg.batch_size, shuffle=True, drop_last=True, num_workers=train_cfg.num_workers, generator=g
    )
    batches = _infinite(loader, epoch=step)

    budget = Budget(train_cfg.max_steps, train_cfg.max_minutes)
    last_ckpt = time.time()
    net.train()
    window_loss, window_acc, window_n, t_window = 0.0, 0.0, 0, time.time()
    while not budget.done(step):
        a, b = next(batches)
        a, b = _as_tensor(a).float().to(device), _as_tensor(b).float().to(device)
        a = a + train_cfg.noise_sigma * torch.randn_like(a)
        b = b + train_cfg.noise_sigma * torch.randn_like(b)
        h = net.encoder(torch.cat([a, b]))
        logits = net.similarity.matrix(h[: a.shape[0]], h[a.shape[0] :])
        loss = contrastive_loss(logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        window_loss += loss.item()
        window_acc += pair_accuracy(logits.detach())
        window_n += 1
        if step % train_cfg.log_every == 0:
            dt = (time.time() - t_window) / window_n
            metrics.update(step=step, loss=window_loss / window_n, batch_acc=window_acc / window_n, sec_per_step=dt)
            log.line(
                f"step {step} loss {metrics['loss']:.4f} batch_acc(K={train_cfg.batch_size}) {metrics['batch_acc']:.3f} {dt:.2f}s/step"
            )
            log.record(**metrics, elapsed_min=budget.elapsed / 60)
            window_loss, window_acc, window_n, t_window = 0.0, 0.0, 0, time.time()
        if step % train_cfg.eval_every == 0:
            metrics.update(validate(net, val_a, val_b))
            log.line(f"step {step} validation K=2 acc {metrics['val_acc_k2']:.3f} K=8 acc {metrics['val_acc_k8']:.3f}")
            log.record(step=step, **{k: v for k, v in metrics.items() if k.startswith("val_")})
            if metrics["val_acc_k2"] > best:
                best = metrics["best_val_acc_k2"] = metrics["val_acc_k2"]
                save(out / "best.pt", net, optimizer, step, train_cfg, data_cfg, metrics)
            t_window = time.time()
        if time.time() - last_ckpt > 60 * train_cfg.checkpoint_minutes:
            save(last, net, optimizer, step, train_cfg, data_cfg, metrics)
            last_ckpt = time.time()
    metrics.update(validate(net, val_a, val_b))
    log.line(f"done at step {step}: validation K=2 acc {metrics['val_acc_k2']:.3f} K=8 acc {metrics['val_acc_k8']:.3f}")
    if metrics["val_acc_k2"] > best:
        metrics["best_val_acc_k2"] = metrics["val_acc_k2"]
        save(out / "best.pt", net, optimizer, step, train_cfg, data_cfg, metrics)
    save(last, net, optimizer, step, train_cfg, data_cfg, metrics)
    return metrics


def main(args: argparse.Namespace) -> int:
    """Entry point of `stemlink train cocola`."""
    from dataclasses import replace

    model_kwargs, train_cfg, data_cfg = load_cocola_preset(args.preset)
    overrides = {
        k: v for k, v in (("max_steps", args.max_steps), ("max_minutes", args.max_minutes), ("threads", args.threads)) if v is not None
    }
    train_cfg = replace(train_cfg, **overrides)
    if args.data:
        data_cfg = replace(data_cfg, root=args.data)
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.set_flush_denormal(True)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out or Path("runs") / Path(args.preset).stem)
    train(model_kwargs, train_cfg, data_cfg, out, resume=args.resume, device=device, seed=args.seed, init=getattr(args, "init", None))
    return 0
