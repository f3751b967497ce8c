"""The CLAP pair (family "clap"), the audio/text embedding space of the Diff-A-Riff family: two
manifest entries per pair, `NAME.audio` and `NAME.text`, one exported network each.

    ClapEncoderModel.embed_audio(audio (B, C, T) at sample_rate) -> (B, D) unit norm     (audio entries)
    ClapEncoderModel.embed_text(["warm electric piano", ...]) -> (B, D) unit norm         (text entries)

Audio of any length: the channel mean is cut into `window`-sample windows (the last one
zero-padded, a region shorter than a window padded whole), each embedded, the mean renormalised.
Text: the tokenizer the text tower was trained with travels in the entry's config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from stemlink.engine.models.base import EngineModel, ModelSpec
from stemlink.errors import InvalidInput

PARTS = ("audio", "text")
MAX_TEXT = 200  # characters per prompt


class ClapEncoderModel(EngineModel):
    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.part = str(spec.config.get("part"))
        if self.part not in PARTS:
            raise ValueError(f"clap entry needs config.part in {sorted(PARTS)}, got {self.part!r}")
        self.network = network
        self.dim = int(spec.config["projection_dim"])
        self.max_tokens = int(spec.config.get("max_tokens", 32))
        self.tokenizer = None
        if self.part == "text":
            from tokenizers import Tokenizer

            if not spec.config.get("tokenizer"):
                raise ValueError("a clap text entry needs its tokenizer in config.tokenizer")
            self.tokenizer = Tokenizer.from_str(str(spec.config["tokenizer"]))

    def _require(self, part: str) -> None:
        if self.part != part:
            raise InvalidInput(f"{self.name!r} is the CLAP {self.part} encoder; use the {part} entry", field="model")

    @torch.no_grad()
    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, T) or (B, T) at `sample_rate` -> (B, D), the mean of its windows' embeddings."""
        self._require("audio")
        x = audio.float().mean(dim=1) if audio.dim() == 3 else audio.float()
        if x.dim() != 2 or x.shape[-1] < 1:
            raise InvalidInput(f"expected (B, C, T) or (B, T) audio, got {tuple(audio.shape)}", field="audio")
        w = self.window
        n = -(-x.shape[-1] // w)
        windows = F.pad(x, (0, n * w - x.shape[-1])).reshape(x.shape[0] * n, w)
        emb = self.network(windows.contiguous()).reshape(x.shape[0], n, -1).mean(dim=1)
        return F.normalize(emb, dim=-1)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompts -> (B, D). Empty prompts and prompts over MAX_TEXT characters are InvalidInput."""
        self._require("text")
        assert self.tokenizer is not None
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise InvalidInput("text prompt is empty: describe the part, e.g. 'warm electric piano, chords'", field="text")
            if len(t) > MAX_TEXT:
                raise InvalidInput(f"text prompt has {len(t)} characters; at most {MAX_TEXT}", field="text")
        rows = [self.tokenizer.encode(t).ids[: self.max_tokens] for t in texts]
        n = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), n, dtype=torch.int64)
        mask = torch.zeros(len(rows), n, dtype=torch.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return F.normalize(self.network(ids, mask).float(), dim=-1)
