"""What a loaded model can do, one window at a time, at its own sample rate.

Every model the engine serves is an `EngineModel` built from one manifest entry (`ModelSpec`)
and one exported network (ONNX or TorchScript). It implements one or more capabilities:
`Separator`, `Accompanist`, `Generator`, `Scorer`. Capabilities see mono windows only:

    mix, audio:   (B, T)      float32 torch tensors at `sample_rate`, T == `window`
    stems:        (B, S, T)   S == len(stems), in the order of `stems`

Chunking long regions, resampling host rate <-> model rate, stereo, delay compensation and
exact output lengths belong to the apply layer (`stemlink.engine.apply`), never to a model.

Progress: `callback(done, total)` is called after every network evaluation step; a callback
that raises (e.g. `Cancelled`) stops the work within one step. Randomness comes only from the
`generator` passed in, so the same request and seed give the same audio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing ModelSpec costs no torch
    import torch

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of `exports/manifest.json`.

    `file` is relative to the manifest's folder; `sha256` is checked before loading.
    `window` and `delay` are in samples at `sample_rate`; `delay` is the network's latency
    (output sample t answers input sample t - delay), compensated by the apply layer.
    `config` carries family-specific constants (e.g. sigma_data, embedding size) and
    `defaults` the default task parameters (e.g. sampler steps) presets can override.
    """

    name: str
    version: str
    family: str
    tasks: tuple[str, ...]
    format: str  # "onnx" | "torchscript"
    file: str
    sha256: str
    sample_rate: int
    stems: tuple[str, ...]
    window: int
    delay: int = 0
    card: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)


class EngineModel:
    """A loaded model. Subclasses also inherit one or more capability classes below.

    `samples`: True for families whose tasks run a sampler and so take sampler parameters
    (`steps`, ...); tools that sweep steps skip the others."""

    samples = False

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def stems(self) -> tuple[str, ...]:
        return self.spec.stems

    @property
    def window(self) -> int:
        return self.spec.window

    @property
    def delay(self) -> int:
        return self.spec.delay

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.spec.tasks

    @classmethod
    def conditions_for(cls, spec: ModelSpec) -> tuple[str, ...]:
        """What steers this entry's accompany/generate (`contract.CONDITIONS`), from its manifest
        entry alone (the engine advertises it without loading the model): by default named
        context stems for a model that accompanies."""
        return ("context_stems",) if "accompany" in spec.tasks else ()

    @property
    def conditions(self) -> tuple[str, ...]:
        return self.conditions_for(self.spec)

    def parse_params(self, task: str, params: Mapping[str, Any]) -> Any:
        """Validate wire/preset parameters for `task` into this family's typed params.

        Raises `InvalidInput` naming the field, the value and what is allowed.
        The default accepts no parameters.
        """
        from stemlink.errors import InvalidInput

        if params:
            raise InvalidInput(f"model {self.name!r} takes no parameters for {task!r}, got {sorted(params)}", field="params")
        return None


class Separator(ABC):
    @abstractmethod
    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) mix -> (B, S, T) stems."""


class Accompanist(ABC):
    @abstractmethod
    def accompany(
        self,
        context: torch.Tensor,
        *,
        context_stems: Sequence[str],
        params: Any,
        generator: torch.Generator,
        callback: ProgressCallback,
    ) -> torch.Tensor:
        """(B, T) context sub-mix (the sum of `context_stems`) -> (B, S, T) all stems.

        The returned context stems are the model's reading of the context; callers keep the
        stems they asked for (normally those not in `context_stems`).
        A model with `continues = True` also takes `previous=`: its own output of the previous
        window over this window's first samples ((B, S, [2,] n), None for the first window).
        """


class Generator(ABC):
    @abstractmethod
    def generate(self, batch: int, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """-> (B, S, T) a coherent set of stems (`previous=` as for `Accompanist.accompany`)."""


class Scorer(ABC):
    @abstractmethod
    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) audio -> (B, D) embeddings."""

    @abstractmethod
    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> (B,) coherence score (higher = fits better)."""
