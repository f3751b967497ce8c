"""`stemlink train bridge --preset NAME`: train CLAP_beta (issue 14 part 4), the diffusion MLP that
maps CLAP text embeddings to CLAP audio embeddings, on pairs made by a shipped CLAP pair.

Preset tables: `[model]` (-> `BridgeConfig`), `[train]` (-> `TrainConfig`), `[data]` (-> `DataConfig`),
`[clap]` (-> `ClapSource`: which exported pair embeds), `[pairs]` (-> `BridgePairs`).

Pairs: `windows` single-stem windows of the split (`DescribedStems`), each embedded by the CLAP audio
encoder, and `texts_per_window` random descriptions of it embedded by the text encoder; made once
per CLAP pair and kept in the run folder (`pairs-<sha>.pt`). Loss: EDM on the audio embedding given
the text embedding, the text dropped with probability `text_dropout` (unconditional sampling).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import InvalidInput, PresetError
from stemlink.lab.nn.bridge import BridgeConfig, build_bridge
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.train.clap_data import DescribeConfig, DescribedStems
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig

FAMILY = "bridge"
PRESET_TABLES = ("model", "train", "data", "clap", "pairs")


@dataclass(frozen=True)
class ClapSource:
    name: str = "clap-small"  # manifest name of the pair (NAME.audio, NAME.text)
    exports: str = ""  # exports folder ("" = the project's)


@dataclass(frozen=True)
class BridgePairs:
    windows: int = 3000
    texts_per_window: int = 4
    valid_windows: int = 200
    text_dropout: float = 0.1


@dataclass(frozen=True)
class BridgePreset:
    name: str
    model: BridgeConfig
    train: TrainConfig
    data: DataConfig
    clap: ClapSource
    pairs: BridgePairs

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def load_bridge_preset(name_or_path: str) -> BridgePreset:
    name, values = read_train_preset(name_or_path, tables=PRESET_TABLES)
    try:
        model = BridgeConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return BridgePreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(ClapSource, values.get("clap", {}), f"{name}[clap]"),
        typed_table(BridgePairs, values.get("pairs", {}), f"{name}[pairs]"),
    )


def open_clap(source: ClapSource):
    from stemlink.engine.models.clap import ClapEncoderModel
    from stemlink.engine.registry import ModelRegistry

    registry = ModelRegistry(source.exports or None, device="cpu", threads=torch.get_num_threads(), user_models=False)
    if not registry.has(f"{source.name}.audio") or not registry.has(f"{source.name}.text"):
        raise InvalidInput(
            f"CLAP pair {source.name!r} is not in {registry.exports_dir} (export one with `stemlink export clap`)", field="clap"
        )
    audio, text = registry.get(f"{source.name}.audio"), registry.get(f"{source.name}.text")
    assert isinstance(audio, ClapEncoderModel) and isinstance(text, ClapEncoderModel)
    return audio, text


@torch.no_grad()
def make_pairs(audio_enc, text_enc, items: DescribedStems, windows: int, texts_per_window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (audio embeddings (N, D), text embeddings (N, D)), N = windows * texts_per_window."""
    audio_emb, text_emb = [], []
    for _ in range(windows):
        audio, first = items.item()
        texts = [first] + [items.describe_again() for _ in range(texts_per_window - 1)]  # more descriptions of the same window
        audio_emb.append(audio_enc.embed_audio(torch.from_numpy(audio)[None]).expand(texts_per_window, -1))
        text_emb.append(text_enc.embed_text(texts))
    return torch.cat(audio_emb), torch.cat(text_emb)


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    preset = load_bridge_preset(args.preset)
    tcfg, pc = preset.train, preset.pairs
    audio_enc, text_enc = open_clap(preset.clap)
    cfg = replace(preset.model, clap=preset.clap.name, clap_sha256=audio_enc.spec.sha256)
    if cfg.embed_dim != audio_enc.dim:
        raise InvalidInput(f"[model] embed_dim {cfg.embed_dim} is not the CLAP pair's {audio_enc.dim}", field="embed_dim")
    out = Path(args.out or Path("runs") / preset.name)
    run = Run(FAMILY, out, preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    root = None if preset.data.source == "synthetic" else (args.data or preset.data.root)
    cache = out / f"pairs-{audio_enc.spec.sha256[:12]}-{text_enc.spec.sha256[:12]}.pt"
    if cache.is_file():
        tensors = torch.load(cache, weights_only=True)
    else:
        kw = dict(window=audio_enc.window, sample_rate=audio_enc.sample_rate, cfg=DescribeConfig())
        train_pairs = make_pairs(
            audio_enc, text_enc, DescribedStems(root, preset.data.split, seed=0, **kw), pc.windows, pc.texts_per_window
        )
        valid_pairs = make_pairs(audio_enc, text_enc, DescribedStems(root, preset.data.valid_split, seed=99, **kw), pc.valid_windows, 1)
        tensors = {"train": torch.stack(train_pairs), "valid": torch.stack(valid_pairs)}
        out.mkdir(parents=True, exist_ok=True)
        torch.save(tensors, cache)
    run.start(build_bridge(cfg))
    g = torch.Generator().manual_seed(run.data_seed)

    def batches(pairs: torch.Tensor, seed_gen: torch.Generator):
        while True:
            idx = torch.randint(0, pairs.shape[1], (tcfg.batch_size,), generator=seed_gen)
            yield pairs[0, idx], pairs[1, idx]

    valid = [(tensors["valid"][0], tensors["valid"][1])] if tcfg.valid_batches > 0 else []

    def loss_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        assert isinstance(net, EDMDenoiser)
        audio, text = batch
        gen = None if net.training else torch.Generator().manual_seed(0)
        b = audio.shape[0]
        sigma = net.sample_sigmas(b, generator=gen)
        has_text = (torch.rand(b, generator=gen) >= pc.text_dropout).float()
        return net.loss(audio, sigma, torch.randn(audio.shape, generator=gen), text, has_text)

    describe = f"bridge preset {preset.name}: {cfg.blocks} x {cfg.hidden} MLP over {preset.clap.name} embeddings, {tensors['train'].shape[1]} pairs"
    return run.fit(loss_fn, batches(tensors["train"], g), valid, describe=describe)
