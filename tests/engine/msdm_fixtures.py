"""Tiny MSDM networks and analytic denoisers shared by the MSDM tests (no checkpoint)."""

from __future__ import annotations

import functools

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.lab.nn.config import MSDMConfig, build_denoiser

STEMS = ("bass", "drums", "guitar", "piano")
DEBUG_CONFIG = MSDMConfig(
    stems=STEMS, sample_rate=8000, window=256, channels=(8, 16), factors=(4,), blocks=(1, 1), attentions=(False, True), emb_dim=16, heads=2
)


@functools.lru_cache(maxsize=4)
def tiny_denoiser(seed: int = 0, config: MSDMConfig = DEBUG_CONFIG) -> torch.nn.Module:
    """A random-init debug denoiser whose zero-initialised output layers are perturbed, so
    the network output really depends on its input (a zero net would hide bugs). Cached:
    callers must not modify it."""
    torch.manual_seed(seed)
    model = build_denoiser(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


class GaussianDenoiser:
    """Exact denoiser for iid N(0, s0^2) stems: D(x; sigma) = x s0^2 / (s0^2 + sigma^2)."""

    def __init__(self, s0: float = 0.2):
        self.s0 = s0
        self.calls = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.s0**2 / (self.s0**2 + sigma.reshape(-1, 1, 1) ** 2)


def debug_spec(config: MSDMConfig = DEBUG_CONFIG, defaults: dict | None = None) -> ModelSpec:
    return ModelSpec(
        name="msdm-test",
        version="1",
        family="msdm",
        tasks=("separate", "accompany", "generate"),
        format="torchscript",
        file="x.pt",
        sha256="0" * 64,
        sample_rate=config.sample_rate,
        stems=config.stems,
        window=config.window,
        config=config.to_dict(),
        defaults=defaults if defaults is not None else {"steps": 12},
    )
