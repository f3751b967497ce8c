"""`MSDMConfig`: everything that defines an MSDM network, and the one builder that uses it.

Training presets (`presets/train/msdm-*.toml`, section `[model]`) and the manifest entry's
`config` map both become `MSDMConfig(**kwargs)`; nothing below this layer sees raw dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict

if TYPE_CHECKING:  # the networks import torch; the config stays importable without it
    from stemlink.lab.nn.edm import EDMDenoiser


@dataclass(frozen=True)
class WaveformUNetConfig(ConfigDict):
    """The waveform U-Net and EDM constants MSDM and GMSDI share. `sample_rate`, `window`: the
    model's rate and training window (samples; a multiple of prod(factors))."""

    sample_rate: int = 8000
    window: int = 16384
    channels: tuple[int, ...] = (32, 48, 64, 96, 128)
    factors: tuple[int, ...] = (4, 4, 4, 4)
    blocks: tuple[int, ...] = (1, 1, 1, 2, 2)
    attentions: tuple[bool, ...] = (False, False, False, False, True)
    emb_dim: int = 128
    heads: int = 4
    kernel: int = 3
    sigma_data: float = 0.2
    p_mean: float = -3.0
    p_std: float = 1.0
    clamp: float = 1.0

    def __post_init__(self) -> None:
        for name in ("channels", "factors", "blocks", "attentions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.window % self.hop:
            raise InvalidInput(f"window {self.window} must be a multiple of prod(factors)={self.hop}", field="window")

    @property
    def hop(self) -> int:
        out = 1
        for f in self.factors:
            out *= f
        return out


@dataclass(frozen=True)
class MSDMConfig(WaveformUNetConfig):
    """Network and diffusion constants of one MSDM model. `stems`: source names, one U-Net
    channel each, in order."""

    LABEL: ClassVar[str] = "MSDM"

    stems: tuple[str, ...] = ("bass", "drums", "guitar", "piano")

    def __post_init__(self) -> None:
        object.__setattr__(self, "stems", tuple(self.stems))
        super().__post_init__()
        if len(self.stems) < 2:
            raise InvalidInput(f"MSDM needs at least 2 stems, got {self.stems}", field="stems")


def build_denoiser(config: MSDMConfig) -> EDMDenoiser:
    """MSDMConfig -> EDMDenoiser(UNet1D) with freshly initialised weights."""
    from stemlink.lab.nn.edm import EDMDenoiser
    from stemlink.lab.nn.unet1d import UNet1D

    n = len(config.stems)
    backbone = UNet1D(
        n,
        n,
        config.channels,
        config.factors,
        config.blocks,
        config.attentions,
        emb_dim=config.emb_dim,
        heads=config.heads,
        kernel=config.kernel,
    )
    return EDMDenoiser(backbone, sigma_data=config.sigma_data, clamp=config.clamp, p_mean=config.p_mean, p_std=config.p_std)
