"""Export a CLAP pair (family "clap") for the engine: `NAME.audio` and `NAME.text`, one network
file each, parity-checked and registered (`stemlink export clap`).

    audio network: audio (B, window) mono at sample_rate -> (B, projection_dim)   log-mel front end inside
    text network:  ids (B, N), mask (B, N) int64 -> (B, projection_dim)

The text entry's config carries the tokenizer (its JSON), so the pair is two files and one
manifest; served by `stemlink.engine.models.clap.ClapEncoderModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, component_spec, export_network
from stemlink.lab.nn.clap import ClapPair, ClapPairConfig
from stemlink.lab.nn.text_tokenizer import encode, load_tokenizer_json

FAMILY = "clap"
SIGNATURES = {
    "audio": OnnxSignature(inputs=("audio",), outputs=("audio_embedding",), dynamic_axes={"audio": {0: "batch"}}),
    "text": OnnxSignature(
        inputs=("ids", "mask"),
        outputs=("text_embedding",),
        dynamic_axes={"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}},
    ),
}


def load_clap(checkpoint: str | Path, *, ema: bool = True) -> tuple[ClapPair, ClapPairConfig, dict[str, Any]]:
    state = load_checkpoint(checkpoint, family=FAMILY)
    config = ClapPairConfig.from_dict(state["config"])
    pair = ClapPair(config)
    pair.load_weights(state["ema" if ema and "ema" in state else "model"])
    return pair.eval(), config, state


def export_clap(
    checkpoint: str | Path,
    exports_dir: str | Path,
    *,
    name: str = "clap-small",
    version: str = "1",
    formats: Sequence[str] = ("torchscript",),
    card: str | None = None,
    parity_tol: float = 1e-4,
) -> dict[str, ExportResult]:
    pair, config, state = load_clap(checkpoint)
    tokenizer = load_tokenizer_json(config.tokenizer)
    g = torch.Generator().manual_seed(0)
    audio = [(torch.randn(2, config.window, generator=g) * 0.1,), (torch.randn(1, config.window, generator=g) * 0.01,)]
    texts = [
        encode(tokenizer, ["a warm piano", "bass"], config.max_tokens),
        encode(tokenizer, ["dark fretless bass, walking, low register"], config.max_tokens),
    ]
    base = {k: v for k, v in config.to_dict().items() if k != "tokenizer"}
    train = {"train_step": int(state["step"]), "train_wall_seconds": round(float(state["wall_time"]), 1)}
    results = {}
    for part, module, examples, extra in (
        ("audio", pair.audio, audio, {}),
        ("text", pair.text, texts, {"tokenizer": config.tokenizer}),
    ):
        spec = component_spec(
            name, part, version=version, family=FAMILY, fmt=formats[0], sample_rate=config.sample_rate,
            window=config.window, card=card, config={**base, **train, **extra},
        )  # fmt: skip
        results[part] = export_network(module, examples, exports_dir, spec, onnx=SIGNATURES[part], formats=formats, tolerance=parity_tol)
    return results
