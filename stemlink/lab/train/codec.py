"""`stemlink train codec --preset NAME`: train the stereo STFT codec (issue 14 part 1).

Preset tables: `[model]` (-> `STFTCodecConfig`), `[train]` (-> `TrainConfig`), `[data]`
(-> `DataConfig`), `[augment]` (-> `CodecAugment`), `[objective]` (-> `CodecObjective`). The loop,
run folder and checkpoints are `stemlink.lab.train.runner`'s.

Loss (no discriminator: a CPU budget buys more from more steps than from a GAN):
  stft    x multi-resolution STFT distance (spectral convergence + log magnitude, 512/1024/2048)
  mel     x log-mel L1 (128 mels)
  complex x L1 of the 0.3-power compressed complex STFT at the codec's resolution, both signals
            divided by the reference's RMS: ties the decoder's phase to the input's
  wave    x waveform L1 / RMS
During training, Gaussian noise of std `latent_noise` is added to the latent before decoding, so the
decoder tolerates the small errors a latent diffusion model makes. `freeze_encoder = true` trains the
decoder alone from `--init` (an export pair): the latent space, and every DiT trained on it, stays
valid while the decoder improves (`stemlink export codec --parts decoder` replaces only the decoder).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stemlink.errors import PresetError
from stemlink.lab.checkpoints import warm_start
from stemlink.lab.eval.audio_distance import compressed_spectrum_distance, mel_distance, multires_stft_distance
from stemlink.lab.nn.stft_codec import STFTCodec, STFTCodecConfig
from stemlink.lab.train.codec_data import CodecAugment, codec_batches
from stemlink.lab.train.msdm_data import DataConfig
from stemlink.lab.train.presets import preset_to_dict, read_train_preset, typed_table
from stemlink.lab.train.runner import Run, TrainConfig

FAMILY = "codec"
PRESET_TABLES = ("model", "train", "data", "augment", "objective")
STEMS = ("bass", "drums", "guitar", "piano")


@dataclass(frozen=True)
class CodecObjective:
    window: int = 65536  # training crop, samples
    stft: float = 1.0
    mel: float = 1.0
    complex: float = 1.0
    wave: float = 0.0
    latent_noise: float = 0.02
    freeze_encoder: bool = False  # train the decoder only: the latent space (and every DiT trained on it) stays valid

    def __post_init__(self) -> None:
        if self.window < 1024:
            raise ValueError(f"window must be >= 1024 samples, got {self.window}")
        if min(self.stft, self.mel, self.complex, self.wave, self.latent_noise) < 0:
            raise ValueError("loss weights and latent_noise must be >= 0")


@dataclass(frozen=True)
class CodecPreset:
    name: str
    model: STFTCodecConfig
    train: TrainConfig
    data: DataConfig
    augment: CodecAugment
    objective: CodecObjective

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)


def load_codec_preset(name_or_path: str) -> CodecPreset:
    name, values = read_train_preset(name_or_path, tables=PRESET_TABLES)
    try:
        model = STFTCodecConfig.from_dict(dict(values.get("model", {})))
    except Exception as exc:
        raise PresetError(f"[model] of preset {name!r} is invalid: {exc}", field="model") from exc
    return CodecPreset(
        name,
        model,
        typed_table(TrainConfig, values.get("train", {}), f"{name}[train]"),
        typed_table(DataConfig, values.get("data", {}), f"{name}[data]"),
        typed_table(CodecAugment, values.get("augment", {}), f"{name}[augment]"),
        typed_table(CodecObjective, values.get("objective", {}), f"{name}[objective]"),
    )


def reconstruction_loss(codec: STFTCodec, audio: torch.Tensor, objective: CodecObjective) -> torch.Tensor:
    """(B, C, T) audio -> scalar loss of `codec` reconstructing it."""
    if objective.freeze_encoder:
        with torch.no_grad():
            latent = codec.encode(audio)
    else:
        latent = codec.encode(audio)
    if codec.training and objective.latent_noise > 0:
        latent = latent + objective.latent_noise * torch.randn_like(latent)
    est = codec.decode(latent, audio.shape[-1])
    rms = audio.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-3)  # -60 dBFS floor
    loss = objective.stft * multires_stft_distance(est, audio) + objective.mel * mel_distance(est, audio, codec.config.sample_rate)
    if objective.complex:
        geometry = codec.config.geometry
        loss = loss + objective.complex * compressed_spectrum_distance(est / rms, audio / rms, geometry.n_fft, geometry.hop)
    if objective.wave:
        loss = loss + objective.wave * ((est - audio).abs() / rms).mean()
    return loss


def warm_start_codec(codec: nn.Module, path: str) -> str:
    """--init: a training checkpoint, or a shipped export `exports/NAME.encoder.pt` (its sibling
    `NAME.decoder.pt` is read too)."""
    assert isinstance(codec, STFTCodec)
    if not str(path).endswith(".encoder.pt"):
        return warm_start(codec, path)
    decoder = str(path)[: -len(".encoder.pt")] + ".decoder.pt"
    return f"{warm_start(codec.encoder, path)} + {warm_start(codec.decoder, decoder)}"


def main(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> nn.Module:
    preset = load_codec_preset(args.preset)
    cfg, tcfg, objective = preset.model, preset.train, preset.objective
    run = Run(FAMILY, Path(args.out or Path("runs") / preset.name), preset=preset.to_dict(), config=cfg.to_dict(), train=tcfg, args=args)
    codec = STFTCodec(cfg)
    if objective.freeze_encoder:
        if not (getattr(args, "init", None) or args.resume):
            raise PresetError("[objective] freeze_encoder needs --init (the codec whose encoder is kept) or --resume", field="objective")
        codec.encoder.requires_grad_(False)
    run.start(codec, init=warm_start_codec)
    common = dict(stems=STEMS, length=objective.window, sample_rate=cfg.sample_rate, batch=tcfg.batch_size, root=args.data)
    train_iter = codec_batches(preset.data, preset.augment, seed=run.data_seed, **common)
    valid: list[torch.Tensor] = []
    if run.dist.is_main and tcfg.valid_batches > 0:
        valid_iter = codec_batches(preset.data, preset.augment, seed=99, split=preset.data.valid_split, **common)
        valid = [next(valid_iter) for _ in range(tcfg.valid_batches)]

    def loss_fn(net: nn.Module, audio: torch.Tensor) -> torch.Tensor:
        assert isinstance(net, STFTCodec)
        return reconstruction_loss(net, audio, objective)

    describe = (
        f"codec preset {preset.name}: {cfg.sample_rate} Hz x {cfg.channels} ch -> {cfg.latent_dim} x {cfg.latent_rate:.2f} Hz latent "
        f"({cfg.compression:.0f}x), window {objective.window}"
    )
    return run.fit(loss_fn, train_iter, valid, describe=describe)
