"""The CLAP-style encoder pair of the Diff-A-Riff family (issue 14 part 3): an audio encoder and a
text encoder mapped into one embedding space by contrastive training on our stems and their
descriptions. Both are transformers' `ClapModel` (HTSAT audio tower, RoBERTa text tower) built
from a small config; nothing comes from a hub, and the tokenizer is trained locally
(`stemlink.lab.nn.text_tokenizer`).

    pair = ClapPair(ClapPairConfig(vocab_size=tokenizer.get_vocab_size()))
    a = pair.embed_audio(audio)          # (B, window) mono at sample_rate -> (B, projection_dim), unit norm
    t = pair.embed_text(ids, mask)       # (B, N) token ids + attention mask -> (B, projection_dim), unit norm
    loss = pair.contrastive_loss(a, t)   # symmetric InfoNCE with the learned temperature

Audio front end: log-mel (`MelFrontEnd`, n_mels bands) of a `window`-sample mono window, with a
hop chosen so the HTSAT image is exactly filled (frames = spec_size * spec_size / n_mels), then
scaled to about unit range. Longer audio is embedded window by window by the caller (the engine
averages the windows' embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from stemlink.errors import InvalidInput
from stemlink.lab.nn.config_dict import ConfigDict
from stemlink.lab.nn.mel import MelFrontEnd

LOG_MEL_SHIFT, LOG_MEL_SCALE = 4.0, 4.0  # (log mel + shift) / scale: about [-1, 2] for music at -40..-10 dBFS


@dataclass(frozen=True)
class ClapPairConfig(ConfigDict):
    LABEL: ClassVar[str] = "CLAP pair"

    sample_rate: int = 44100
    window: int = 220500  # 5 s
    n_fft: int = 2048
    n_mels: int = 64
    spec_size: int = 128
    patch_dim: int = 32  # HTSAT's first-stage width; it doubles per stage
    depths: tuple[int, ...] = (1, 1, 2, 1)
    audio_heads: tuple[int, ...] = (2, 4, 4, 8)
    window_size: int = 4
    vocab_size: int = 2000
    text_dim: int = 128
    text_layers: int = 2
    text_heads: int = 2
    max_tokens: int = 32
    projection_dim: int = 128
    tokenizer: str = ""  # the trained tokenizer's JSON (`tokenizers`), set by training: the config defines the whole pair

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "audio_heads", tuple(int(h) for h in self.audio_heads))
        if self.spec_size % self.n_mels or len(self.depths) != len(self.audio_heads):
            raise InvalidInput("spec_size must be a multiple of n_mels, and depths and audio_heads the same length", field="spec_size")
        if self.window // self.hop + 1 != self.mel_frames:
            raise InvalidInput(f"window {self.window} is too short for {self.mel_frames} mel frames", field="window")

    @property
    def mel_frames(self) -> int:
        return self.spec_size * (self.spec_size // self.n_mels)

    @property
    def audio_dim(self) -> int:
        """HTSAT's last-stage width (what its projection reads)."""
        return self.patch_dim * 2 ** (len(self.depths) - 1)

    @property
    def hop(self) -> int:
        return max(1, self.window // (self.mel_frames - 1))


def clap_config(c: ClapPairConfig):
    from transformers import ClapConfig

    return ClapConfig(
        text_config=dict(
            vocab_size=c.vocab_size,
            hidden_size=c.text_dim,
            num_hidden_layers=c.text_layers,
            num_attention_heads=c.text_heads,
            intermediate_size=4 * c.text_dim,
            max_position_embeddings=c.max_tokens + 2,
            pad_token_id=0,
        ),
        audio_config=dict(
            spec_size=c.spec_size,
            num_mel_bins=c.n_mels,
            window_size=c.window_size,
            patch_embeds_hidden_size=c.patch_dim,
            hidden_size=c.audio_dim,
            depths=list(c.depths),
            num_attention_heads=list(c.audio_heads),
            enable_fusion=False,
        ),
        projection_dim=c.projection_dim,
    )


class ClapAudioEncoder(nn.Module):
    """(B, window) mono audio -> (B, projection_dim) unit-norm embedding (front end included).
    Holds the audio tower and its projection only, so its export carries no text weights."""

    def __init__(self, config: ClapPairConfig, clap: Any):  # transformers.ClapModel
        super().__init__()
        c = config
        self.front = MelFrontEnd(c.sample_rate, c.n_fft, c.hop, n_mels=c.n_mels, f_min=20.0)
        self.tower, self.projection = clap.audio_model, clap.audio_projection

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = (self.front(audio) + LOG_MEL_SHIFT) / LOG_MEL_SCALE  # (B, n_mels, frames)
        pooled = self.tower(input_features=mel.transpose(1, 2).unsqueeze(1)).pooler_output
        return F.normalize(self.projection(pooled), dim=-1)


class ClapTextEncoder(nn.Module):
    """(B, N) token ids, (B, N) attention mask -> (B, projection_dim) unit-norm embedding."""

    def __init__(self, clap: Any):  # transformers.ClapModel
        super().__init__()
        self.tower, self.projection = clap.text_model, clap.text_projection

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.tower(input_ids=ids, attention_mask=mask).pooler_output
        return F.normalize(self.projection(pooled), dim=-1)


class ClapPair(nn.Module):
    def __init__(self, config: ClapPairConfig):
        super().__init__()
        from transformers import ClapModel

        self.config = config
        self.clap = ClapModel(clap_config(config))
        self.audio = ClapAudioEncoder(config, self.clap)
        self.text = ClapTextEncoder(self.clap)

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict through its canonical `clap.*` keys (the towers are shared by the
        encoders, so their own keys are aliases of these; the front end has no weights)."""
        self.clap.load_state_dict({k.removeprefix("clap."): v for k, v in state.items() if k.startswith("clap.")})

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 2 or audio.shape[-1] != self.config.window:
            raise InvalidInput(f"expected (B, {self.config.window}) mono audio, got {tuple(audio.shape)}", field="audio")
        return self.audio(audio)

    def embed_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text(ids, mask)

    def contrastive_loss(self, audio_emb: torch.Tensor, text_emb: torch.Tensor, same: torch.Tensor | None = None) -> torch.Tensor:
        """Symmetric InfoNCE over the batch; `same` (B, B) bool marks pairs that are positives too
        (items with the same description), which are left out of the negatives."""
        scale = self.clap.logit_scale_a.exp().clamp(max=100.0)
        logits = scale * audio_emb @ text_emb.t()
        if same is not None:
            eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
            logits = logits.masked_fill(same & ~eye, float("-inf"))
        target = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
