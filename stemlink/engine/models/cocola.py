"""The "cocola" family: the exported COCOLA encoder served as a `Scorer` (task "score").

Exported network (ONNX or TorchScript), front end included:

    audio (B, T) at `sample_rate`  ->  (embedding (B, D), W (D, D))

The second output is the learned bilinear matrix W, so one file carries the whole model and
the manifest stays small. `CocolaModel` reads W once at load time (one forward pass on a
silent window) and computes sim(a, b) = a^T W b (paper eq. 2) on embeddings.

Exports are made by `stemlink.lab.export.cocola` (`stemlink export cocola --checkpoint CKPT`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from stemlink.engine.models.base import EngineModel, ModelSpec, Scorer


class CocolaModel(EngineModel, Scorer):
    """COCOLA over an exported encoder: `embed` (B, T) -> (B, D), `similarity` -> (B,)."""

    def __init__(self, spec: ModelSpec, network: Callable[..., Any]):
        super().__init__(spec)
        self.network = network
        _, weight = self._run(torch.zeros(1, spec.window))
        dim = int(spec.config.get("embed_dim", weight.shape[0]))
        if tuple(weight.shape) != (dim, dim):
            raise ValueError(f"cocola network returned W of shape {tuple(weight.shape)}, manifest config.embed_dim={dim}")
        self.weight = weight.float()

    def _run(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.network(audio.float().contiguous())
        if not isinstance(out, tuple) or len(out) != 2:
            raise ValueError("cocola network must return (embedding, W)")
        return out

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) mono audio at `sample_rate`, T == window -> (B, D)."""
        if audio.ndim != 2:
            raise ValueError(f"embed expects (B, T) audio, got shape {tuple(audio.shape)}")
        return self._run(audio)[0]

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> (B,) COCOLA score a^T W b (context first, candidate second)."""
        weight = self.weight.to(a.device)
        return ((a.float() @ weight) * b.float()).sum(dim=-1)
