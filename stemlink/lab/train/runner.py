"""The optimisation loop the newer families share (`bandsplit`, `codec`, `dit`): AdamW with
linear warm-up, gradient clipping, EMA, resume, a JSONL log, `curve/` EMA snapshots and a
self-describing `last.pt`.

    run = Run(family, out, preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    net = run.start(net)                       # --init / --resume handled here
    run.fit(loss_fn, train_iter, valid, describe="...")

`loss_fn(net, batch) -> scalar` is the family's; everything else is here. The run folder holds
`last.pt` (configs, weights, EMA weights, optimizer, step, wall and CPU time, metrics),
`loss.jsonl`, and `curve/step-NNNNNN.pt` EMA snapshots every `snapshot_minutes` (what
`stemlink eval curve` reads). Multi-process training follows torchrun's environment.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.lab.checkpoints import load_checkpoint, save_checkpoint, warm_start
from stemlink.lab.train.loop import EMA, Budget, JsonlLog, agreed_stop, cleanup_distributed, init_distributed, scheduled_lr

Batch = Any  # a tensor, or a tuple of tensors (moved to the device as a whole)
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return type(batch)(to_device(b, device) for b in batch)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    decay_steps: int = 0  # > 0: cosine decay from lr to min_lr over this many steps after the warm-up
    min_lr: float = 0.0
    grad_clip: float = 5.0
    ema_decay: float = 0.995
    log_every: int = 10
    checkpoint_minutes: float = 5.0
    snapshot_minutes: float = 5.0
    valid_batches: int = 2
    threads: int = 1


class _LossStep(nn.Module):
    """The loss as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, net: nn.Module, loss_fn: LossFn):
        super().__init__()
        self.net, self.loss_fn = net, loss_fn

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.loss_fn(self.net, batch)


class Run:
    def __init__(
        self, family: str, out: Path, *, preset: Mapping[str, Any], config: Mapping[str, Any], train: TrainConfig, args: argparse.Namespace
    ):
        self.family, self.out, self.preset, self.config, self.tcfg, self.args = family, Path(out), preset, config, train, args
        torch.set_num_threads(args.threads or train.threads)
        self.dist = init_distributed(args.device)
        self.ckpt_path = self.out / "last.pt"
        self.step, self.wall_before, self.cpu_before = 0, 0.0, 0.0
        self.init_note: str | None = None
        self.metrics: dict[str, float] = {}

    @property
    def resuming(self) -> bool:
        return bool(self.args.resume) and self.ckpt_path.is_file()

    @property
    def data_seed(self) -> int:
        """Different per rank and per resumed step, so a resumed run sees new windows."""
        return self.args.seed * 1000 + self.dist.rank + 7919 * self.step

    def say(self, text: str) -> None:
        if self.dist.is_main:
            print(text, flush=True)

    def start(self, net: nn.Module, *, init: Callable[[nn.Module, str], str] = warm_start) -> nn.Module:
        """Move `net` to the device, warm-start (--init, through `init(net, path) -> note`) or resume
        (--resume); builds EMA and optimiser."""
        torch.manual_seed(self.args.seed)
        self.net = net.to(self.dist.device)
        if getattr(self.args, "init", None) and not self.resuming:
            self.init_note = init(self.net, self.args.init)
            self.say(f"initialised from {self.init_note}")
        self.ema = EMA(self.net, self.tcfg.ema_decay)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=self.tcfg.lr, weight_decay=self.tcfg.weight_decay)
        if self.resuming:
            state = load_checkpoint(self.ckpt_path, map_location=self.dist.device, family=self.family)
            self.net.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["optimizer"])
            self.step, self.wall_before = int(state["step"]), float(state["wall_time"])
            self.cpu_before = float(state.get("cpu_time", self.wall_before))
            self.init_note = state.get("init")
            self.say(f"resumed from {self.ckpt_path} at step {self.step} ({self.wall_before / 60:.1f} min)")
        return self.net

    def fit(self, loss_fn: LossFn, train_iter: Iterator[Batch], valid: Sequence[Batch], *, describe: str) -> nn.Module:
        tcfg, dist, net, ema, opt = self.tcfg, self.dist, self.net, self.ema, self.opt
        stepper: nn.Module = _LossStep(net, loss_fn)
        if dist.world_size > 1:
            stepper = torch.nn.parallel.DistributedDataParallel(stepper)
        log = JsonlLog(self.out / "loss.jsonl", enabled=dist.is_main)
        budget = Budget(self.args.max_steps, self.args.max_minutes)
        cpu_start = time.process_time()

        def wall() -> float:
            return self.wall_before + budget.elapsed

        def cpu() -> float:  # this process's CPU seconds: the bake-off's x axis (fair when runs share cores)
            return self.cpu_before + time.process_time() - cpu_start

        @torch.no_grad()
        def valid_loss() -> float:
            ema.module.eval()
            return sum(float(loss_fn(ema.module, to_device(v, dist.device))) for v in valid) / max(len(valid), 1)

        def common() -> dict[str, Any]:
            return dict(family=self.family, config=dict(self.config), step=self.step, wall_time=wall(), cpu_time=cpu(), init=self.init_note)

        def snapshot() -> None:
            save_checkpoint(self.out / "curve" / f"step-{self.step:06d}.pt", ema=ema.state_dict(), **common())

        def checkpoint() -> None:
            self.metrics["valid_loss_ema"] = valid_loss() if valid else float("nan")
            save_checkpoint(
                self.ckpt_path,
                preset=dict(self.preset),
                model=net.state_dict(),
                ema=ema.state_dict(),
                optimizer=opt.state_dict(),
                metrics=dict(self.metrics),
                **common(),
            )
            log.write(step=self.step, wall=wall(), cpu=cpu(), **self.metrics)
            self.say(f"checkpoint step {self.step} valid_loss_ema {self.metrics['valid_loss_ema']:.4f} -> {self.ckpt_path}")

        n_params = sum(p.numel() for p in net.parameters())
        self.say(f"{describe}, {n_params / 1e6:.2f}M params, batch {tcfg.batch_size} x {dist.world_size} procs, device {dist.device}")
        last_ckpt = last_snap = t_log = time.monotonic()
        losses: list[float] = []
        while not agreed_stop(budget.done(self.step), dist.world_size):
            x = to_device(next(train_iter), dist.device)
            lr = scheduled_lr(self.step, tcfg.lr, tcfg.warmup_steps, tcfg.decay_steps, tcfg.min_lr)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = stepper(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip))
            opt.step()
            ema.update(net, self.step)
            self.step += 1
            losses.append(float(loss.detach()))
            if dist.is_main and self.step % tcfg.log_every == 0:
                now = time.monotonic()
                self.metrics["train_loss"] = sum(losses) / len(losses)
                rate = (now - t_log) / tcfg.log_every
                log.write(
                    step=self.step, wall=wall(), cpu=cpu(), loss=self.metrics["train_loss"], grad_norm=grad_norm, lr=lr, sec_per_step=rate
                )
                print(
                    f"step {self.step} loss {self.metrics['train_loss']:.4f} grad {grad_norm:.3f} {rate:.3f} s/step "
                    f"wall {wall() / 60:.1f} min cpu {cpu() / 60:.1f} min",
                    flush=True,
                )
                losses.clear()
                t_log = now
            if dist.is_main and time.monotonic() - last_snap >= tcfg.snapshot_minutes * 60:
                snapshot()
                last_snap = time.monotonic()
            if dist.is_main and time.monotonic() - last_ckpt >= tcfg.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.monotonic()
        if dist.is_main:
            snapshot()
            checkpoint()
        cleanup_distributed()
        return net
