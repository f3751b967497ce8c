"""Band-split mask separator (family "bandsplit") served from an exported mask network.

The exported network maps the mix spectrum to one mask per stem:

    network(spec (B, 2, F, N) real/imag) -> masks (B, S, F, N), >= 0, summing to 1 over S

(`stemlink.lab.nn.bandsplit`); the STFT and inverse STFT around it are engine code
(`stemlink.engine.spectral`, constants `n_fft`/`hop` from the manifest entry's `config`).
Because the masks sum to 1 at every bin and the inverse STFT is linear, the stems sum to the
mix window to float rounding, the whole band is separated (no Nyquist below the host's at
44.1 kHz), and digital silence gives exact zeros. One network call per batch of windows, so
progress is reported once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from stemlink.engine.models.base import EngineModel, ModelSpec, ProgressCallback, Separator
from stemlink.engine.spectral import apply_masks, as_channels, stft
from stemlink.errors import InvalidInput

BANDSPLIT_TASKS = ("separate", "extract", "remove")


class BandSplitModel(EngineModel, Separator):
    """Mask separator over an exported `network(spec (B, 2, F, N)) -> masks (B, S, F, N)`."""

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]):
        super().__init__(spec)
        self.network = network
        self.n_fft = int(spec.config["n_fft"])
        self.hop = int(spec.config["hop"])
        if not 0 < self.hop <= self.n_fft // 2:
            raise ValueError(f"hop {self.hop} must be in 1..n_fft/2 ({self.n_fft // 2})")

    def parse_params(self, task: str, params: Mapping[str, Any]) -> None:
        if task not in self.tasks:
            raise InvalidInput(f"model {self.name!r} does not serve task {task!r}; tasks: {', '.join(self.tasks)}", field="task")
        return super().parse_params(task, params)

    def masks(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) mix -> (its spectrum (B, F, N), masks (B, S, F, N))."""
        spec = stft(mix.float(), self.n_fft, self.hop)
        out = self.network(as_channels(spec))
        masks = out[0] if isinstance(out, tuple) else out
        return spec, masks

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) mix -> (B, S, T) stems summing to the mix (float rounding)."""
        if mix.dim() != 2 or mix.shape[-1] < 1:
            raise InvalidInput(f"mix must be (B, T) at {self.sample_rate} Hz, got {tuple(mix.shape)}", field="mix")
        spec, masks = self.masks(mix)
        stems = apply_masks(spec, masks, self.n_fft, self.hop, mix.shape[-1])
        callback(1, 1)
        return stems
