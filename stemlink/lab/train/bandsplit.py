"""`stemlink train bandsplit --preset NAME`: train a band-split mask separator.

Preset tables: `[model]` (-> `BandSplitConfig`), `[train]` (-> `TrainConfig`), `[data]`
(-> `DataConfig`), `[augment]` (-> `SeparatorAugment`). The run folder holds `last.pt`
(self-describing: configs, weights, EMA weights, optimizer, step, wall time, metrics),
`loss.jsonl`, and `curve/step-NNNNNN.pt` EMA snapshots every `snapshot_minutes` (what the
learning-curve evaluation reads: `stemlink eval curve`).

Loss per stem, on the masked mix (so the model is trained on exactly what it serves): L1 of
the waveform plus L1 of the real and imaginary STFT, both divided by the mix RMS of the item
(level-invariant). Multi-process: `torchrun --nproc_per_node N -m stemlink train bandsplit ...`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.engine.spectral import apply_masks, as_channels, stft
from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint, save_checkpoint, warm_start
from stemlink.lab.nn.bandsplit import BandSplitConfig, BandSplitNet
from stemlink.lab.train.loop import EMA, Budget, JsonlLog, agreed_stop, cleanup_distributed, init_distributed, warmup_lr
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import read_train_preset, typed_table
from stemlink.lab.train.separator_data import SeparatorAugment, separator_batches

FAMILY = "bandsplit"
PRESET_TABLES = ("model", "train", "data", "augment")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 5.0
    ema_decay: float = 0.995
    log_every: int = 10
    checkpoint_minutes: float = 5.0
    snapshot_minutes: float = 5.0
    valid_batches: int = 2
    threads: int = 1


@dataclass(frozen=True)
class BandSplitPreset:
    name: str
    model: BandSplitConfig
    train: TrainConfig
    data: DataConfig
    augment: SeparatorAugment

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model.to_dict(),
            "train": asdict(self.train),
            "data": asdict(self.data),
            "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.augment).items()},
        }


def preset_from_dict(name: str, values: Mapping[str, Any]) -> BandSplitPreset:
    """The one builder: preset mapping -> typed configs (errors name the section and key)."""
    try:
        model = BandSplitConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return BandSplitPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(SeparatorAugment, values.get("augment", {}), f"{name}[augment]"),
    )


def load_bandsplit_preset(name_or_path: str) -> BandSplitPreset:
    name, tables = read_train_preset(name_or_path, tables=PRESET_TABLES)
    return preset_from_dict(name, tables)


def separation_loss(net: nn.Module, stems: torch.Tensor, config: BandSplitConfig) -> torch.Tensor:
    """(B, S, T) true stems -> scalar loss of `net` separating their sum."""
    b, s, t = stems.shape
    mix = stems.sum(dim=1)
    spec = stft(mix, config.n_fft, config.hop)
    masks = net(as_channels(spec))
    est = apply_masks(spec, masks, config.n_fft, config.hop, t)
    scale = mix.pow(2).mean(dim=-1).add(1e-8).sqrt()[:, None, None]  # (B, 1, 1)
    wave = ((est - stems).abs() / scale).mean()
    target = stft(stems.reshape(b * s, t), config.n_fft, config.hop).reshape(b, s, *spec.shape[-2:])
    est_spec = masks * spec[:, None]
    spec_err = torch.view_as_real(est_spec - target).abs().mean(dim=(2, 3, 4))  # (B, S)
    return wave + (spec_err / scale[:, :, 0]).mean()


class _LossStep(nn.Module):
    def __init__(self, net: BandSplitNet):
        super().__init__()
        self.net = net

    def forward(self, stems: torch.Tensor) -> torch.Tensor:
        return separation_loss(self.net, stems, self.net.config)


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    """Run training as described by `args` (see `stemlink train`); returns the trained network."""
    preset = load_bandsplit_preset(args.preset)
    cfg, tcfg = preset.model, preset.train
    torch.set_num_threads(args.threads or tcfg.threads)
    dist = init_distributed(args.device)
    out = Path(args.out or Path("runs") / preset.name)
    ckpt_path = out / "last.pt"
    torch.manual_seed(args.seed)
    net = BandSplitNet(cfg).to(dist.device)
    init_note = None
    if getattr(args, "init", None) and not (args.resume and ckpt_path.is_file()):
        init_note = warm_start(net, args.init)
        if dist.is_main:
            print(f"initialised from {init_note}", flush=True)
    ema = EMA(net, tcfg.ema_decay)
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    step, wall_before, cpu_before = 0, 0.0, 0.0
    if args.resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=dist.device, family=FAMILY)
        net.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, wall_before = int(state["step"]), float(state["wall_time"])
        cpu_before = float(state.get("cpu_time", wall_before))
        init_note = state.get("init")
        if dist.is_main:
            print(f"resumed from {ckpt_path} at step {step} ({wall_before / 60:.1f} min)", flush=True)
    stepper: nn.Module = _LossStep(net)
    if dist.world_size > 1:
        stepper = torch.nn.parallel.DistributedDataParallel(stepper)
    data_seed = args.seed * 1000 + dist.rank + 7919 * step
    common = dict(stems=cfg.stems, length=cfg.window, sample_rate=cfg.sample_rate, batch=tcfg.batch_size, root=args.data)
    train_iter = separator_batches(preset.data, preset.augment, seed=data_seed, **common)
    valid: list[torch.Tensor] = []
    if dist.is_main and tcfg.valid_batches > 0:
        valid_iter = separator_batches(
            preset.data,
            preset.augment,
            seed=99,
            split=preset.data.valid_split,
            augment_audio=False,
            **common,
        )
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]
    log = JsonlLog(out / "loss.jsonl", enabled=dist.is_main)
    budget = Budget(args.max_steps, args.max_minutes)
    last_ckpt = last_snap = time.monotonic()
    losses: list[float] = []
    metrics: dict[str, float] = {}

    cpu_start = time.process_time()

    def wall() -> float:
        return wall_before + budget.elapsed

    def cpu() -> float:  # this process's CPU seconds: the bake-off's x axis (fair when runs share cores)
        return cpu_before + time.process_time() - cpu_start

    @torch.no_grad()
    def valid_loss() -> float:
        ema.module.eval()
        return sum(float(separation_loss(ema.module, v.to(dist.device), cfg)) for v in valid) / max(len(valid), 1)

    def snapshot() -> None:
        path = out / "curve" / f"step-{step:06d}.pt"
        save_checkpoint(
            path, family=FAMILY, config=cfg.to_dict(), ema=ema.state_dict(), step=step, wall_time=wall(), cpu_time=cpu(), init=init_note
        )

    def checkpoint() -> None:
        metrics["valid_loss_ema"] = valid_loss() if valid else float("nan")
        save_checkpoint(
            ckpt_path,
            family=FAMILY,
            preset=preset.to_dict(),
            config=cfg.to_dict(),
            model=net.state_dict(),
            ema=ema.state_dict(),
            optimizer=opt.state_dict(),
            step=step,
            wall_time=wall(),
            cpu_time=cpu(),
            metrics=dict(metrics),
            init=init_note,
        )
        log.write(step=step, wall=wall(), cpu=cpu(), **metrics)
        print(f"checkpoint step {step} valid_loss_ema {metrics['valid_loss_ema']:.4f} -> {ckpt_path}", flush=True)

    if dist.is_main:
        n_params = sum(p.numel() for p in net.parameters())
        print(
            f"bandsplit preset {preset.name}: core {cfg.core}, {n_params / 1e6:.2f}M params, {cfg.sample_rate} Hz, "
            f"window {cfg.window}, batch {tcfg.batch_size} x {dist.world_size} procs, device {dist.device}",
            flush=True,
        )
    t_log = time.monotonic()
    while not agreed_stop(budget.done(step), dist.world_size):
        x = next(train_iter).to(dist.device)
        for group in opt.param_groups:
            group["lr"] = warmup_lr(step, tcfg.lr, tcfg.warmup_steps)
        loss = stepper(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip))
        opt.step()
        ema.update(net, step)
        step += 1
        losses.append(float(loss.detach()))
        if dist.is_main and step % tcfg.log_every == 0:
            now = time.monotonic()
            metrics["train_loss"] = sum(losses) / len(losses)
            rate = (now - t_log) / tcfg.log_every
            log.write(
                step=step,
                wall=wall(),
                cpu=cpu(),
                loss=metrics["train_loss"],
                grad_norm=grad_norm,
                lr=warmup_lr(step, tcfg.lr, tcfg.warmup_steps),
                sec_per_step=rate,
            )
            print(
                f"step {step} loss {metrics['train_loss']:.4f} grad {grad_norm:.3f} {rate:.3f} s/step wall {wall() / 60:.1f} min cpu {cpu() / 60:.1f} min",
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
