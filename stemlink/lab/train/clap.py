"""`stemlink train clap --preset NAME`: contrastive training of the CLAP pair (issue 14 part 3) on
single stems of the corpus and their descriptions.

Preset tables: `[model]` (-> `ClapPairConfig`), `[train]` (-> `TrainConfig`), `[data]`
(-> `DataConfig`: corpus root and splits, or `source = "synthetic"`), `[describe]` (-> `DescribeConfig`).
The loop, run folder and checkpoints are `stemlink.lab.train.runner`'s.

A fresh run first trains the word-piece tokenizer on descriptions of the training split's stems
(facts only, no audio read), and stores it in the model config, so every checkpoint and export
carries the tokenizer its text encoder was trained with; `--resume` and `--init CHECKPOINT` (a
training checkpoint of this family) keep it.
Loss: symmetric InfoNCE with CLAP's learned temperature; items with the same description are
not each other's negatives.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.data.descriptions import BRIGHTNESS, describe, stem_facts
from stemlink.lab.nn.clap import ClapPair, ClapPairConfig
from stemlink.lab.nn.text_tokenizer import encode, load_tokenizer_json, train_tokenizer
from stemlink.lab.train.clap_data import SYNTHETIC, DescribeConfig, DescribedStems
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig

FAMILY = "clap"
PRESET_TABLES = ("model", "train", "data", "describe")


@dataclass(frozen=True)
class ClapPreset:
    name: str
    model: ClapPairConfig
    train: TrainConfig
    data: DataConfig
    describe: DescribeConfig

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def load_clap_preset(name_or_path: str) -> ClapPreset:
    name, values = read_train_preset(name_or_path, tables=PRESET_TABLES)
    try:
        model = ClapPairConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return ClapPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(DescribeConfig, values.get("describe", {}), f"{name}[describe]"),
    )


def tokenizer_texts(root: str | None, split: str, per_stem: int = 12, seed: int = 0) -> list[str]:
    """Descriptions of every stem of a split, from its facts (random subsets, every brightness word)."""
    if root is None:
        return [name for name, _ in SYNTHETIC] * 4
    from stemlink.lab.data import open_corpus

    rng = np.random.default_rng(seed)
    words = [w for _, w in BRIGHTNESS]
    texts = []
    for track in open_corpus(root).tracks(split):
        for cls in track.stems:
            facts = stem_facts(track, cls)
            texts.append(describe(facts, rng, full=True))
            texts += [describe(facts, rng, brightness=words[i % len(words)]) for i in range(per_stem)]
    return texts


def _carried_config(args: argparse.Namespace, out: Path) -> ClapPairConfig | None:
    """The config (with its tokenizer) of the run being resumed, or of the checkpoint `--init` continues."""
    paths = ([out / "last.pt"] if args.resume else []) + ([Path(args.init)] if getattr(args, "init", None) else [])
    for path in paths:
        if path.is_file():
            return ClapPairConfig.from_dict(load_checkpoint(path, family=FAMILY)["config"])
    return None


def clap_batch(items: DescribedStems, size: int, tokenizer, max_tokens: int) -> tuple[torch.Tensor, ...]:
    audio, texts = items.batch(size)
    ids, mask = encode(tokenizer, texts, max_tokens)
    same = torch.tensor([[a == b for b in texts] for a in texts])
    return audio, ids, mask, same


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    preset = load_clap_preset(args.preset)
    tcfg = preset.train
    root = None if preset.data.source == "synthetic" else (args.data or preset.data.root)
    out = Path(args.out or Path("runs") / preset.name)
    cfg = _carried_config(args, out)
    if cfg is None:
        tok = train_tokenizer(tokenizer_texts(root, preset.data.split), vocab_size=preset.model.vocab_size)
        cfg = replace(preset.model, tokenizer=tok.to_str())
    tokenizer = load_tokenizer_json(cfg.tokenizer)
    if tokenizer.get_vocab_size() > cfg.vocab_size:
        raise PresetError(
            f"the tokenizer has {tokenizer.get_vocab_size()} tokens, more than [model] vocab_size {cfg.vocab_size}", field="model"
        )
    run = Run(FAMILY, out, preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    run.start(ClapPair(cfg))
    train_items = DescribedStems(
        root, preset.data.split, window=cfg.window, sample_rate=cfg.sample_rate, seed=run.data_seed, cfg=preset.describe
    )

    def batches(items: DescribedStems):
        while True:
            yield clap_batch(items, tcfg.batch_size, tokenizer, cfg.max_tokens)

    valid: list[Any] = []
    if run.dist.is_main and tcfg.valid_batches > 0:
        valid_items = DescribedStems(
            root, preset.data.valid_split, window=cfg.window, sample_rate=cfg.sample_rate, seed=99, cfg=preset.describe
        )
        valid = [clap_batch(valid_items, tcfg.batch_size, tokenizer, cfg.max_tokens) for _ in range(tcfg.valid_batches)]

    def loss_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        assert isinstance(net, ClapPair)
        audio, ids, mask, same = batch
        return net.contrastive_loss(net.embed_audio(audio), net.embed_text(ids, mask), same)

    describe_run = f"clap preset {preset.name}: {cfg.window / cfg.sample_rate:.1f} s windows, tokenizer {tokenizer.get_vocab_size()} tokens"
    return run.fit(loss_fn, batches(train_items), valid, describe=describe_run)
