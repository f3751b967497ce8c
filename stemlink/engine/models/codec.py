"""The STFT audio codec (family "codec"), the latent space of the Diff-A-Riff family: two manifest
entries per codec, `NAME.encoder` and `NAME.decoder`, one exported network each; the signal side
around them is `stemlink.engine.codec_geometry` (constants from the entry's `config`).

    encoder network: features (B, 3 * C * F, N) -> latent (B, D, N / frames_per_latent)
    decoder network: latent (B, D, L) -> head (B, 2 * C * F, L * frames_per_latent)  log magnitude, phase

    CodecModel.encode(audio (B, C, T)) -> latent (B, D, latent_frames(T))      (encoder entries)
    CodecModel.decode(latent, length) -> audio (B, C, length)                (decoder entries)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from stemlink.engine.codec_geometry import CodecGeometry
from stemlink.engine.models.base import EngineModel, ModelSpec
from stemlink.errors import InvalidInput

PARTS = ("encoder", "decoder")  # manifest entries NAME.encoder, NAME.decoder; no wire task (registry COMPONENT_FAMILIES)


def geometry_of(spec: ModelSpec) -> CodecGeometry:
    c = spec.config
    frames_per_latent = 1
    for s in c["strides"]:
        frames_per_latent *= int(s)
    return CodecGeometry(
        int(c["sample_rate"]), int(c["channels"]), int(c["n_fft"]), int(c["hop"]), frames_per_latent, float(c["magnitude_power"])
    )


class CodecModel(EngineModel):
    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.part = str(spec.config.get("part"))
        if self.part not in PARTS:
            raise ValueError(f"codec entry needs config.part in {sorted(PARTS)}, got {self.part!r}")
        self.network = network
        self.geometry = geometry_of(spec)
        self.latent_dim = int(spec.config["latent_dim"])

    def _require(self, part: str) -> None:
        if self.part != part:
            raise InvalidInput(f"{self.name!r} is a codec {self.part}; use the {part} entry", field="model")

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) at `sample_rate` -> latent (B, D, latent_frames(T)) in [-1, 1]."""
        self._require("encoder")
        return self.network(self.geometry.features(audio.float()))

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, length: int) -> torch.Tensor:
        """latent (B, D, L) -> (B, C, length) audio; length <= L * samples_per_latent."""
        self._require("decoder")
        if latent.dim() != 3 or latent.shape[1] != self.latent_dim:
            raise InvalidInput(f"expected latent (B, {self.latent_dim}, L), got {tuple(latent.shape)}", field="latent")
        if not 0 < length <= latent.shape[-1] * self.geometry.samples_per_latent:
            raise InvalidInput(f"length {length} is outside 1..{latent.shape[-1] * self.geometry.samples_per_latent}", field="length")
        return self.geometry.synthesize(self.network(latent.float()), length)
