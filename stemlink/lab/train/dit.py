"""`stemlink train dit --preset NAME`: train the latent DiT of the Diff-A-Riff family (issue 14
part 2) with EDM on the latents of a shipped codec.

Preset tables: `[model]` (-> `LatentDiTConfig`), `[train]` (-> `TrainConfig`), `[data]`
(-> `DataConfig`: corpus root and splits), `[latents]` (-> `LatentSource`: which codec encodes the
corpus), `[pairs]` (-> `PairConfig`), `[objective]` (-> `DiTObjective`). The loop, run folder and
checkpoints are `stemlink.lab.train.runner`'s.

Loss: EDM's weighted denoising score matching on the target latents, ln(sigma) ~ N(p_mean, p_std^2);
or, for `[model] parameterization = "consistency"` (C-DiT, part 5), consistency training
(`stemlink.lab.nn.consistency`) with its step schedule over `[objective] schedule_steps`.
Classifier-free guidance is learned by dropping the context (with probability `context_dropout`)
and the embedding (`embedding_dropout`), independently per item. The codec is frozen: its latents
are cached once per codec (`stemlink.lab.train.dit_data`), so a new codec means a new cache and a
new DiT.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import InvalidInput, PresetError
from stemlink.lab.nn.consistency import ConsistencyDenoiser
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.nn.latent_dit import LatentDiTConfig, build_latent_denoiser
from stemlink.lab.train.dit_data import EmbedSource, LatentCache, PairConfig, dit_batches
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig

FAMILY = "dit"
PRESET_TABLES = ("model", "train", "data", "latents", "pairs", "objective")


@dataclass(frozen=True)
class LatentSource:
    codec: str = "stft-codec"  # manifest name of the codec pair (NAME.encoder is used)
    clap: str = ""  # manifest name of the CLAP pair whose audio embeddings condition the DiT ("" = none)
    exports: str = ""  # exports folder holding them ("" = the project's exports/)


@dataclass(frozen=True)
class DiTObjective:
    context_dropout: float = 0.2
    embedding_dropout: float = 0.2
    schedule_steps: int = 20000  # consistency models: steps over which the consistency step shrinks

    def __post_init__(self) -> None:
        if not (0 <= self.context_dropout <= 1 and 0 <= self.embedding_dropout <= 1):
            raise ValueError("dropout probabilities must be in [0, 1]")


@dataclass(frozen=True)
class DiTPreset:
    name: str
    model: LatentDiTConfig
    train: TrainConfig
    data: DataConfig
    latents: LatentSource
    pairs: PairConfig
    objective: DiTObjective

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def load_dit_preset(name_or_path: str) -> DiTPreset:
    name, values = read_train_preset(name_or_path, tables=PRESET_TABLES)
    try:
        model = LatentDiTConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return DiTPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(LatentSource, values.get("latents", {}), f"{name}[latents]"),
        typed_table(PairConfig, values.get("pairs", {}), f"{name}[pairs]"),
        typed_table(DiTObjective, values.get("objective", {}), f"{name}[objective]"),
    )


def open_encoder(source: LatentSource, latent_dim: int):
    """The frozen codec encoder the latents come from -> (CodecModel, cache id)."""
    from stemlink.engine.models.codec import CodecModel
    from stemlink.engine.registry import ModelRegistry

    registry = ModelRegistry(source.exports or None, device="cpu", threads=torch.get_num_threads(), user_models=False)
    name = f"{source.codec}.encoder"
    if not registry.has(name):
        raise InvalidInput(
            f"codec {source.codec!r} is not in {registry.exports_dir} (export one with `stemlink export codec`)", field="codec"
        )
    encoder = registry.get(name)
    if not isinstance(encoder, CodecModel) or encoder.latent_dim != latent_dim:
        raise InvalidInput(f"{name} does not give {latent_dim}-channel latents, which [model] latent_dim asks for", field="latent_dim")
    return encoder, encoder.spec.sha256[:12]


def _check_same_codec(path: str | Path | None, cfg: LatentDiTConfig) -> None:
    """A DiT continues only on the latents it was trained on."""
    if path is None or not Path(path).is_file():
        return
    from stemlink.engine.registry import read_manifest
    from stemlink.lab.checkpoints import load_checkpoint

    path = Path(path)
    if path.suffix in (".onnx", ".pt") and (path.parent / "manifest.json").is_file():  # a shipped export: its manifest entry
        entries = [m for m in read_manifest(path.parent).get("models", []) if m.get("file") == path.name]
        was = entries[0].get("config", {}).get("codec_sha256", "") if entries else ""
    else:
        was = load_checkpoint(path, family=FAMILY).get("config", {}).get("codec_sha256", "")
    if was and was != cfg.codec_sha256:
        raise InvalidInput(
            f"{path} was trained on the latents of codec encoder {was[:12]}, but {cfg.codec!r} is now {cfg.codec_sha256[:12]}: "
            "start a new run (a new codec means a new latent space)",
            field="codec",
        )


def dit_loss(
    denoiser: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], objective: DiTObjective, progress: float = 0.0
) -> torch.Tensor:
    """EDM denoising loss, or the consistency loss at `progress` (0..1) of its step schedule."""
    target, context, embedding = batch
    b = target.shape[0]
    # validation (eval mode) uses fixed noise, so its loss is comparable from checkpoint to checkpoint
    g = None if denoiser.training else torch.Generator(device=target.device).manual_seed(0)
    noise = torch.randn(target.shape, generator=g, device=target.device)
    has_context = (torch.rand(b, generator=g, device=target.device) >= objective.context_dropout).float()
    has_embedding = (torch.rand(b, generator=g, device=target.device) >= objective.embedding_dropout).float()
    if embedding.shape[-1] == 0:
        has_embedding = torch.zeros(b, device=target.device)
    cond = (context, embedding, has_context, has_embedding)
    if isinstance(denoiser, ConsistencyDenoiser):
        return denoiser.loss(target, noise, progress, *cond, generator=g)
    assert isinstance(denoiser, EDMDenoiser)
    sigma = denoiser.sample_sigmas(b, generator=g, device=target.device)
    return denoiser.loss(target, sigma, noise, *cond)


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    preset = load_dit_preset(args.preset)
    tcfg = preset.train
    encoder, encoder_id = open_encoder(preset.latents, preset.model.latent_dim)
    cfg = replace(preset.model, codec=preset.latents.codec, codec_sha256=encoder.spec.sha256)
    embed = None
    if preset.latents.clap:
        from stemlink.lab.train.bridge import ClapSource, open_clap

        clap_audio, _ = open_clap(ClapSource(preset.latents.clap, preset.latents.exports))
        if clap_audio.sample_rate != encoder.geometry.sample_rate:
            raise InvalidInput(
                f"CLAP pair {preset.latents.clap!r} runs at {clap_audio.sample_rate} Hz, the codec at {encoder.geometry.sample_rate}",
                field="clap",
            )
        embed = EmbedSource(clap_audio.embed_audio, clap_audio.spec.sha256[:12], clap_audio.window)
        cfg = replace(cfg, embed_dim=clap_audio.dim, clap=preset.latents.clap, clap_sha256=clap_audio.spec.sha256)
    out = Path(args.out or Path("runs") / preset.name)
    _check_same_codec(out / "last.pt" if args.resume else None, cfg)
    _check_same_codec(getattr(args, "init", None), cfg)
    run = Run(FAMILY, out, preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    root = args.data or preset.data.root
    geometry = encoder.geometry

    def cache(split: str) -> LatentCache:
        return LatentCache.build(
            root,
            split,
            encoder.encode,
            encoder_id,
            sample_rate=geometry.sample_rate,
            samples_per_latent=geometry.samples_per_latent,
            extra_contexts=preset.pairs.extra_contexts,
            embed=embed,
        )

    run.start(build_latent_denoiser(cfg))
    train_iter = dit_batches(cache(preset.data.split), preset.pairs, batch=tcfg.batch_size, seed=run.data_seed)
    valid: list[Any] = []
    if run.dist.is_main and tcfg.valid_batches > 0:
        valid_iter = dit_batches(cache(preset.data.valid_split), preset.pairs, batch=tcfg.batch_size, seed=99)
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]

    def loss_fn(net: nn.Module, batch: Any) -> torch.Tensor:
        return dit_loss(net, batch, preset.objective, progress=run.step / max(preset.objective.schedule_steps, 1))

    describe = (
        f"dit preset {preset.name}: {cfg.parameterization} {cfg.depth} x {cfg.dim} DiT over {preset.latents.codec} latents "
        f"({cfg.latent_dim} x {geometry.latent_rate:.2f} Hz, codec {encoder_id}), {preset.pairs.frames} frames per item"
    )
    return run.fit(loss_fn, train_iter, valid, describe=describe)
