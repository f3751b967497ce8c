"""`stemlink train msdm --preset NAME`: train the Multi-Source Diffusion Model.

The preset (`presets/train/NAME.toml`) has sections `[model]` (-> `MSDMConfig`), `[train]`
(-> `TrainConfig`), `[data]` (-> `DataConfig`) and `[augment]` (-> `AugmentConfig`), turned
into typed configs by `load_msdm_preset` only. A run folder holds `last.pt` (self-describing
checkpoint: configs, weights, EMA weights, optimizer, step, wall time, metrics),
`loss.jsonl` (one record per log interval) and whatever the caller redirects stdout to.

Multi-process: `torchrun --nproc_per_node N -m stemlink train msdm --preset NAME` (gloo on
CPU, nccl on CUDA); rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint, save_checkpoint, warm_start
from stemlink.lab.nn.config import MSDMConfig, build_denoiser
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.train.loop import EMA, Budget, JsonlLog, agreed_stop, cleanup_distributed, init_distributed, scheduled_lr
from stemlink.lab.train.msdm_data import AugmentConfig, DataConfig, augment, batches
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table

FAMILY = "msdm"
PRESET_TABLES = {"model", "train", "data", "augment"}


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8  # per process
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 25
    checkpoint_minutes: float = 5.0
    valid_batches: int = 2
    threads: int = 1


@dataclass(frozen=True)
class MSDMPreset:
    name: str
    model: MSDMConfig
    train: TrainConfig
    data: DataConfig
    augment: AugmentConfig

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def preset_from_dict(name: str, values: Mapping[str, Any]) -> MSDMPreset:
    """The one builder: preset mapping -> typed configs (errors name the section and key)."""
    unknown = sorted(set(values) - PRESET_TABLES)
    if unknown:
        raise PresetError(f"preset {name!r} has unknown sections {unknown}; allowed: {sorted(PRESET_TABLES)}", field="preset")
    model_values = dict(values.get("model", {}))
    try:
        model = MSDMConfig.from_dict(model_values)
    except Exception as exc:  # InvalidInput / TypeError from the dataclass
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return MSDMPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(AugmentConfig, values.get("augment", {}), f"{name}[augment]"),
    )


def load_msdm_preset(name_or_path: str) -> MSDMPreset:
    """`msdm-cpu` -> presets/train/msdm-cpu.toml, or a path to a TOML file."""
    name, tables = read_train_preset(name_or_path, tables=tuple(PRESET_TABLES))
    return preset_from_dict(name, tables)


class _LossStep(nn.Module):
    """forward(x0, sigma, noise) -> loss, so DDP's forward hooks see the whole computation."""

    def __init__(self, denoiser: EDMDenoiser):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.denoiser.loss(x0, sigma, noise)


@torch.no_grad()
def _valid_loss(model: EDMDenoiser, valid: list[torch.Tensor], device: torch.device) -> float:
    """Loss on fixed validation windows at fixed noise levels (deterministic)."""
    g = torch.Generator().manual_seed(1234)
    total, count = 0.0, 0
    for x0 in valid:
        for log_sigma in (-5.0, -3.0, -1.0):
            sigma = torch.full((x0.shape[0],), math.exp(log_sigma))
            noise = torch.randn(x0.shape, generator=g)
            total += float(model.loss(x0.to(device), sigma.to(device), noise.to(device)))
            count += 1
    return total / max(count, 1)


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    """Run training as described by `args` (see `stemlink train`); returns the trained denoiser."""
    preset = load_msdm_preset(args.preset)
    cfg, tcfg = preset.model, preset.train
    torch.set_num_threads(args.threads or tcfg.threads)
    dist = init_distributed(args.device)
    out = Path(args.out or Path("runs") / preset.name)
    ckpt_path = out / "last.pt"
    torch.manual_seed(args.seed)  # identical init on every rank
    model = build_denoiser(cfg).to(dist.device)
    init_note = None
    if getattr(args, "init", None) and not (args.resume and ckpt_path.is_file()):
        init_note = warm_start(model, args.init)
        if dist.is_main:
            print(f"initialised from {init_note}", flush=True)
    ema = EMA(model, tcfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    step, wall_before = 0, 0.0
    if args.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=dist.device)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, wall_before = int(state["step"]), float(state["wall_time"])
        init_note = state.get("init")
        if dist.is_main:
            print(f"resumed from {ckpt_path} at step {step} ({wall_before / 60:.1f} min)", flush=True)
    stepper: nn.Module = _LossStep(model)
    if dist.world_size > 1:
        stepper = torch.nn.parallel.DistributedDataParallel(stepper)
    data_seed = args.seed * 1000 + dist.rank + 7919 * step  # a resumed run sees new windows
    train_iter = batches(
        preset.data, stems=cfg.stems, length=cfg.window, sample_rate=cfg.sample_rate, batch=tcfg.batch_size, seed=data_seed, root=args.data
    )
    valid: list[torch.Tensor] = []
    if dist.is_main and tcfg.valid_batches > 0:
        valid_iter = batches(
            preset.data,
            stems=cfg.stems,
            length=cfg.window,
            sample_rate=cfg.sample_rate,
            batch=tcfg.batch_size,
            seed=99,
            split=preset.data.valid_split,
            root=args.data,
        )
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]
    g = torch.Generator().manual_seed(data_seed + 1)
    log = JsonlLog(out / "loss.jsonl", enabled=dist.is_main)
    budget = Budget(args.max_steps, args.max_minutes)
    last_ckpt = time.monotonic()
    losses: list[float] = []
    metrics: dict[str, float] = {}

    def checkpoint() -> None:
        metrics["valid_loss_ema"] = _valid_loss(ema.module, valid, dist.device) if valid else float("nan")
        save_checkpoint(
            ckpt_path,
            family=FAMILY,
            preset=preset.to_dict(),
            config=cfg.to_dict(),
            model=model.state_dict(),
            ema=ema.state_dict(),
            optimizer=opt.state_dict(),
            step=step,
            wall_time=wall_before + budget.elapsed,
            metrics=dict(metrics),
            init=init_note,
        )
        log.write(step=step, wall=wall_before + budget.elapsed, **{k: v for k, v in metrics.items()})
        print(f"checkpoint step {step} valid_loss_ema {metrics['valid_loss_ema']:.4f} -> {ckpt_path}", flush=True)

    if dist.is_main:
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"msdm preset {preset.name}: {n_params / 1e6:.2f}M params, {cfg.sample_rate} Hz, window {cfg.window}, "
            f"batch {tcfg.batch_size} x {dist.world_size} procs, device {dist.device}",
            flush=True,
        )
    t_log = time.monotonic()
    while not agreed_stop(budget.done(step), dist.world_size):
        x0 = augment(next(train_iter), preset.augment, g).to(dist.device)
        sigma = model.sample_sigmas(x0.shape[0], generator=g).to(dist.device)
        noise = torch.randn(x0.shape, generator=g).to(dist.device)
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(step, tcfg.lr, tcfg.warmup_steps)
        loss = stepper(x0, sigma, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip))
        opt.step()
        ema.update(model, step)
        step += 1
        losses.append(float(loss.detach()))
        if dist.is_main and step % tcfg.log_every == 0:
            now = time.monotonic()
            metrics["train_loss"] = sum(losses) / len(losses)
            rate = (now - t_log) / tcfg.log_every
            log.write(
                step=step,
                wall=wall_before + budget.elapsed,
                loss=metrics["train_loss"],
                grad_norm=grad_norm,
                lr=scheduled_lr(step, tcfg.lr, tcfg.warmup_steps),
                sec_per_step=rate,
            )
            print(
                f"step {step} loss {metrics['train_loss']:.4f} grad {grad_norm:.3f} {rate:.3f} s/step "
                f"wall {(wall_before + budget.elapsed) / 60:.1f} min",
                flush=True,
            )
            losses.clear()
            t_log = now
        if dist.is_main and time.monotonic() - last_ckpt >= tcfg.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.monotonic()
    if dist.is_main:
        checkpoint()
    cleanup_distributed()
    return model
