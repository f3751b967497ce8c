"""`stemlink train gmsdi --preset NAME`: train the GMSDI score model on mixtures and their tags (issue 15).

Preset tables: `[model]` (-> `GMSDIConfig`), `[train]` (-> `TrainConfig`), `[data]` (-> `DataConfig`),
`[augment]` (-> `MixtureAugment`), `[objective]` (-> `GMSDIObjective`). The loop, run folder and
checkpoints are `stemlink.lab.train.runner`'s; torchrun works as for the other families.

Loss: EDM denoising score matching on the mixture, conditioned on its multi-hot tags; the prompt is
dropped (all-zero tags) with probability `prompt_dropout`, which classifier-free guidance and the
negative prompts of the samplers need.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import PresetError
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.nn.gmsdi import GMSDIConfig, build_gmsdi_denoiser
from stemlink.lab.train.gmsdi_data import MixtureAugment, gmsdi_batches
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig

FAMILY = "gmsdi"
PRESET_TABLES = ("model", "train", "data", "augment", "objective")


@dataclass(frozen=True)
class GMSDIObjective:
    prompt_dropout: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.prompt_dropout <= 1:
            raise ValueError("prompt_dropout must be in [0, 1]")


@dataclass(frozen=True)
class GMSDIPreset:
    name: str
    model: GMSDIConfig
    train: TrainConfig
    data: DataConfig
    augment: MixtureAugment
    objective: GMSDIObjective

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def load_gmsdi_preset(name_or_path: str) -> GMSDIPreset:
    name, values = read_train_preset(name_or_path, tables=PRESET_TABLES)
    try:
        model = GMSDIConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return GMSDIPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(MixtureAugment, values.get("augment", {}), f"{name}[augment]"),
        typed_table(GMSDIObjective, values.get("objective", {}), f"{name}[objective]"),
    )


def gmsdi_loss(denoiser: EDMDenoiser, batch: tuple[torch.Tensor, torch.Tensor], objective: GMSDIObjective) -> torch.Tensor:
    mix, tags = batch
    b = mix.shape[0]
    g = None if denoiser.training else torch.Generator(device=mix.device).manual_seed(0)
    keep = (torch.rand(b, 1, generator=g, device=mix.device) >= objective.prompt_dropout).float()
    sigma = denoiser.sample_sigmas(b, generator=g, device=mix.device)
    return denoiser.loss(mix, sigma, torch.randn(mix.shape, generator=g, device=mix.device), tags * keep)


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    preset = load_gmsdi_preset(args.preset)
    cfg, tcfg = preset.model, preset.train
    run = Run(FAMILY, Path(args.out or Path("runs") / preset.name), preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    run.start(build_gmsdi_denoiser(cfg))
    common = dict(tags=cfg.tags, length=cfg.window, sample_rate=cfg.sample_rate, batch=tcfg.batch_size, root=args.data)
    train_iter = gmsdi_batches(preset.data, preset.augment, seed=run.data_seed, **common)
    valid: list[Any] = []
    if run.dist.is_main and tcfg.valid_batches > 0:
        valid_iter = gmsdi_batches(preset.data, preset.augment, seed=99, split=preset.data.valid_split, **common)
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]

    def loss_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        assert isinstance(net, EDMDenoiser)
        return gmsdi_loss(net, batch, preset.objective)

    describe = f"gmsdi preset {preset.name}: {cfg.sample_rate} Hz mixtures, window {cfg.window}, {len(cfg.tags)} tags"
    return run.fit(loss_fn, train_iter, valid, describe=describe)
