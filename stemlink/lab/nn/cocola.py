"""COCOLA: a contrastive encoder of musical coherence between sub-mixes (Ciranni et al. 2024).

    encoder f:   audio (B, T) -> log-mel (B, 1, n_mels, frames) -> timm CNN -> (B, F)
                 -> linear projection -> L2 normalisation -> h (B, embed_dim), ||h|| = 1
    similarity:  sim(h1, h2) = h1^T W h2 with a learnable W (embed_dim, embed_dim)   (eq. 2)
    loss:        multi-class cross-entropy over the batch, positives on the diagonal (eq. 3)

`CocolaConfig` holds every constant of the family; `build_cocola(**preset_kwargs)` is the one
builder turning a preset's [model] table into a network. The exported part is the encoder
(front end included); W travels with the exported model (see `stemlink.lab.export.cocola`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from stemlink.lab.nn.mel import MelFrontEnd


@dataclass(frozen=True)
class CocolaConfig:
    """Everything needed to rebuild a COCOLA network (stored in checkpoints and exports)."""

    sample_rate: int = 16000
    clip_seconds: float = 5.0
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    backbone: str = "efficientnet_b0"  # any timm model name accepting in_chans=1
    dropout: float = 0.1
    embed_dim: int = 512
    init_temperature: float = 0.1  # W starts as I / init_temperature (cosine similarity / tau)

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_cocola(**kwargs: Any) -> CocolaNet:
    """The one place preset keyword arguments become a network. Unknown keys are an error."""
    known = {f.name for f in fields(CocolaConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown COCOLA model option(s) {unknown}; allowed: {sorted(known)}")
    return CocolaNet(CocolaConfig(**kwargs))


def _timm_backbone(name: str, dropout: float) -> nn.Module:
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a declared dependency
        from stemlink.errors import MissingDependency

        raise MissingDependency("COCOLA needs timm: pip install timm") from exc
    # num_classes=0 -> pooled features; drop_rate = dropout before the (absent) classifier,
    # drop_path_rate = stochastic depth inside the blocks ("dropout on the EfficientNet layers").
    return timm.create_model(name, pretrained=False, in_chans=1, num_classes=0, drop_rate=dropout, drop_path_rate=dropout)


class CocolaEncoder(nn.Module):
    """f_theta: (B, T) audio at `config.sample_rate` -> (B, embed_dim) unit-norm embedding.

    COLA's head is Linear -> LayerNorm -> tanh. Measured here from scratch on CPU budgets, that
    head with a learnable bilinear W collapsed (every embedding the same point, loss stuck at
    log B) or did not move in 100+ steps. With unit-norm embeddings and W = I / tau at the start
    (SimCLR's cosine / temperature, which W then generalises) the logits stay bounded by ||W||.
    """

    def __init__(self, config: CocolaConfig):
        super().__init__()
        self.config = config
        self.frontend = MelFrontEnd(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=config.f_min,
            f_max=config.f_max,
        )
        self.backbone = _timm_backbone(config.backbone, config.dropout)
        # timm: `head_hidden_size` is the pooled output width when a model has a conv head
        # (MobileNetV3), else `num_features`.
        backbone: Any = self.backbone  # a timm model: its widths are plain ints
        features = int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)
        self.head = nn.Linear(features, config.embed_dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.frontend(audio).unsqueeze(1)  # (B, 1, n_mels, frames)
        return F.normalize(self.head(self.backbone(mel)), dim=-1)


class BilinearSimilarity(nn.Module):
    """sim(h1, h2) = h1^T W h2. Not symmetric unless W is.

    Initialised to I / init_temperature: on unit-norm embeddings that is cosine similarity
    over a temperature, a start that trains from scratch; W is then learned freely.
    """

    def __init__(self, dim: int, init_temperature: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim) / init_temperature)

    def matrix(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """(B1, D), (B2, D) -> (B1, B2) all pairwise similarities."""
        return h1 @ self.weight @ h2.t()

    def forward(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> (B,) row-wise similarities."""
        return bilinear_similarity(h1, h2, self.weight)


def bilinear_similarity(h1: torch.Tensor, h2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D), (D, D) -> (B,): h1[b]^T W h2[b]."""
    return ((h1 @ weight) * h2).sum(dim=-1)


class CocolaNet(nn.Module):
    """Encoder + bilinear similarity; `forward(m1, m2)` returns the (B, B) logits of eq. 3."""

    def __init__(self, config: CocolaConfig):
        super().__init__()
        self.config = config
        self.encoder = CocolaEncoder(config)
        self.similarity = BilinearSimilarity(config.embed_dim, config.init_temperature)

    def forward(self, m1: torch.Tensor, m2: torch.Tensor) -> torch.Tensor:
        """(B, T), (B, T) sub-mixes of the same B windows -> (B, B) logits, row k = anchor m1[k]."""
        return self.similarity.matrix(self.encoder(m1), self.encoder(m2))


def contrastive_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3 (averaged over the batch): cross-entropy with the positive on the diagonal."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def pair_accuracy(logits: torch.Tensor) -> float:
    """Eq. 8: fraction of rows whose argmax is the diagonal."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return float((logits.argmax(dim=1) == target).float().mean())
