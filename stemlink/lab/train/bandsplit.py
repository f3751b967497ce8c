"""`stemlink train bandsplit --preset NAME`: train a band-split mask separator.

Preset tables: `[model]` (-> `BandSplitConfig`), `[train]` (-> `TrainConfig`), `[data]`
(-> `DataConfig`), `[augment]` (-> `SeparatorAugment`). The loop, run folder and checkpoints
are `stemlink.lab.train.runner`'s.

Loss per stem, on the masked mix (so the model is trained on exactly what it serves): L1 of
the waveform plus L1 of the real and imaginary STFT, both divided by the mix RMS of the item
(level-invariant). Multi-process: `torchrun --nproc_per_node N -m stemlink train bandsplit ...`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.engine.spectral import apply_masks, as_channels, stft
from stemlink.errors import PresetError
from stemlink.lab.nn.bandsplit import BandSplitConfig, BandSplitNet
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig
from stemlink.lab.train.separator_data import SeparatorAugment, separator_batches

FAMILY = "bandsplit"
PRESET_TABLES = ("model", "train", "data", "augment")


@dataclass(frozen=True)
class BandSplitPreset:
    name: str
    model: BandSplitConfig
    train: TrainConfig
    data: DataConfig
    augment: SeparatorAugment

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


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


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    """Run training as described by `args` (see `stemlink train`); returns the trained network."""
    preset = load_bandsplit_preset(args.preset)
    cfg, tcfg = preset.model, preset.train
    run = Run(FAMILY, Path(args.out or Path("runs") / preset.name), preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    run.start(BandSplitNet(cfg))
    common = dict(stems=cfg.stems, length=cfg.window, sample_rate=cfg.sample_rate, batch=tcfg.batch_size, root=args.data)
    train_iter = separator_batches(preset.data, preset.augment, seed=run.data_seed, **common)
    valid: list[torch.Tensor] = []
    if run.dist.is_main and tcfg.valid_batches > 0:
        valid_iter = separator_batches(preset.data, preset.augment, seed=99, split=preset.data.valid_split, augment_audio=False, **common)
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]

    def loss_fn(net: nn.Module, stems: torch.Tensor) -> torch.Tensor:
        return separation_loss(net, stems, cfg)

    describe = f"bandsplit preset {preset.name}: core {cfg.core}, {cfg.sample_rate} Hz, window {cfg.window}"
    return run.fit(loss_fn, train_iter, valid, describe=describe)
