"""GMSDI (issue 15): one tag-conditioned score model over mixtures, S_theta(y, z, sigma), trained on
mixtures only; every MSDM capability comes from inference (`stemlink.engine.sampling.gmsdi`).

    cfg = GMSDIConfig()
    den = build_gmsdi_denoiser(cfg)                 # D(x (B, 1, T), sigma (B,), tags (B, V)) -> (B, 1, T)
    z = tag_vector(["bass", "drums"], cfg.tags)     # (V,) multi-hot: the tags of the stems a mixture holds

The text side is the paper's z_1 (x) ... (x) z_K as a set encoding: a multi-hot vector over the tag
vocabulary (every class the corpus renderer knows), projected into the U-Net's noise embedding.
Why not a T5 encoder: the tags are a closed vocabulary of ten words the renderer writes; a text
encoder trained from scratch on them learns the same set embedding with more parameters and a
tokenizer to ship, and a multi-hot vector makes "the tags of a sub-mix" exactly the union of its
sources' tags, which the GMSDI samplers rely on. The all-zero vector is the dropped prompt
(classifier-free guidance). The backbone is MSDM's waveform U-Net (`UNet1D`) with one channel,
so sums of sources stay sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from stemlink.engine.tags import tag_vector
from stemlink.errors import InvalidInput
from stemlink.lab.nn.config import WaveformUNetConfig

__all__ = ["TAGS", "GMSDIConfig", "build_gmsdi_denoiser", "tag_vector"]

if TYPE_CHECKING:
    from stemlink.lab.nn.edm import EDMDenoiser

TAGS = ("bass", "drums", "guitar", "piano", "organ", "strings", "brass", "woodwind", "synth_lead", "synth_pad")


@dataclass(frozen=True)
class GMSDIConfig(WaveformUNetConfig):
    """The MSDM U-Net (one channel) plus the tag vocabulary it is conditioned on."""

    LABEL: ClassVar[str] = "GMSDI"

    tags: tuple[str, ...] = TAGS

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        super().__post_init__()
        if len(set(self.tags)) != len(self.tags) or not self.tags:
            raise InvalidInput(f"tags must be distinct and not empty, got {self.tags}", field="tags")


def build_gmsdi_denoiser(config: GMSDIConfig) -> EDMDenoiser:
    """GMSDIConfig -> EDMDenoiser(UNet1D, one channel, tag-conditioned), fresh weights."""
    from stemlink.lab.nn.edm import EDMDenoiser
    from stemlink.lab.nn.unet1d import UNet1D

    c = config
    backbone = UNet1D(
        1, 1, c.channels, c.factors, c.blocks, c.attentions, emb_dim=c.emb_dim, heads=c.heads, kernel=c.kernel, cond_dim=len(c.tags)
    )
    return EDMDenoiser(backbone, sigma_data=c.sigma_data, clamp=c.clamp, p_mean=c.p_mean, p_std=c.p_std)
