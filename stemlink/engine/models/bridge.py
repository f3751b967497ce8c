"""CLAP_beta, the modality-gap bridge (family "bridge", a component: no wire task): samples a CLAP
audio embedding for a CLAP text embedding, or with no text an unconditional one (CLAP_A*).

    network(x (B, D), sigma (B,), text (B, D), has_text (B,)) -> (B, D)     EDM denoiser
    BridgeModel.sample(text (B, D) | None, batch, steps, generator) -> (B, D) unit norm

EDM sampling (Euler, Karras schedule over the entry's sigma range); the result is projected back
to the unit sphere, where CLAP embeddings live.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from stemlink.engine.models.base import EngineModel, ModelSpec
from stemlink.engine.sampling import karras_sigmas, sample_generate
from stemlink.errors import InvalidInput


class BridgeModel(EngineModel):
    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.network = network
        self.dim = int(spec.config["embed_dim"])
        self.sigma_range = (float(spec.config["sigma_min"]), float(spec.config["sigma_max"]))

    @torch.no_grad()
    def sample(
        self, text: torch.Tensor | None, *, batch: int = 1, steps: int = 20, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if text is not None:
            if text.dim() != 2 or text.shape[1] != self.dim:
                raise InvalidInput(f"text embedding must be (B, {self.dim}), got {tuple(text.shape)}", field="text")
            batch = text.shape[0]
        cond = torch.zeros(batch, self.dim) if text is None else text.float()
        has_text = torch.full((batch,), 0.0 if text is None else 1.0)
        sigmas = karras_sigmas(steps, *self.sigma_range)
        x = torch.randn(batch, self.dim, generator=generator) * sigmas[0]
        out = sample_generate(lambda z, s: self.network(z.contiguous(), s.contiguous(), cond, has_text), x, sigmas, generator=generator)
        return F.normalize(out, dim=-1)
