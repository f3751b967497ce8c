"""The "echo" debug network: per-stem gains of a (delayed) mono window.

    EchoNet(gains, delay): (B, T) -> (B, S, T),  stems[b, s, t] = gains[s] * x[b, t - delay]

With gains that sum to 1 the stems sum to the (delayed) input, which lets every serving
test check mixture consistency, alignment and delay compensation exactly. Exported by
`stemlink.lab.export.echo`, served by `stemlink.engine.models.echo`.
"""

from collections.abc import Sequence

import torch
from torch import nn

ECHO_STEMS = ("bass", "drums", "guitar", "piano")
ECHO_GAINS = (0.125, 0.25, 0.25, 0.375)  # dyadic, sum exactly 1.0


class EchoNet(nn.Module):
    """(B, T) -> (B, S, T): per-stem gains of the input delayed by `delay` samples."""

    gains: torch.Tensor  # (S,) buffer; a real annotation (no `from __future__`): TorchScript reads it

    def __init__(self, gains: Sequence[float] = ECHO_GAINS, delay: int = 0):
        super().__init__()
        self.delay = int(delay)
        self.register_buffer("gains", torch.tensor(list(gains), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pad(x, (self.delay, 0))[:, : x.shape[-1]]
        return y[:, None, :] * self.gains[None, :, None]
