"""Export a latent DiT (family "riff") for the engine (`stemlink export riff`).

    load_dit(checkpoint) -> (EDM or consistency denoiser over a LatentDiT, eval mode, LatentDiTConfig, checkpoint dict)   EMA weights
    export_riff(checkpoint, exports_dir, name="riff-small", frames=215) -> ExportResult

The graph is the preconditioned denoiser with its conditioning inputs (x, sigma, context,
embedding, has_context, has_embedding), dynamic batch and latent length. The entry names the
codec pair it was trained on (`components`, `codec_sha256`; the codec must already be in the
same exports folder) and its window: `frames` latent frames in samples at the codec rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.riff import RIFF_TASKS, STEMS
from stemlink.engine.registry import ModelRegistry
from stemlink.errors import InvalidInput
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.export.network import ExportResult, OnnxSignature, export_network
from stemlink.lab.nn.latent_dit import LatentDiTConfig, build_latent_denoiser

FAMILY = "riff"
DEFAULTS = {"edm": {"steps": 30, "guidance": 2.0}, "consistency": {"steps": 5, "guidance": 1.0}}  # per parameterization
INPUTS = ("x", "sigma", "context", "embedding", "has_context", "has_embedding")
SIGNATURE = OnnxSignature(
    inputs=INPUTS,
    outputs=("denoised",),
    dynamic_axes={
        "x": {0: "batch", 2: "latents"},
        "sigma": {0: "batch"},
        "context": {0: "batch", 2: "latents"},
        "embedding": {0: "batch"},
        "has_context": {0: "batch"},
        "has_embedding": {0: "batch"},
    },
)


class DenoiserGraph(torch.nn.Module):
    """The denoiser with its six inputs spelled out (the exporters need named positional inputs)."""

    def __init__(self, denoiser: torch.nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x, sigma, context, embedding, has_context, has_embedding):  # noqa: ANN001, ANN201
        return self.denoiser(x, sigma, context, embedding, has_context, has_embedding)


def load_dit(checkpoint: str | Path, *, ema: bool = True) -> tuple[torch.nn.Module, LatentDiTConfig, dict[str, Any]]:
    state = load_checkpoint(checkpoint, family="dit")
    config = LatentDiTConfig.from_dict(state["config"])
    model = build_latent_denoiser(config)
    model.load_state_dict(state["ema" if ema and "ema" in state else "model"])
    return model.eval(), config, state


def export_riff(
    checkpoint: str | Path,
    exports_dir: str | Path,
    *,
    name: str = "riff-small",
    version: str = "1",
    frames: int = 215,
    formats: Sequence[str] = ("onnx", "torchscript"),
    card: str | None = None,
    default_for: Sequence[str] = (),
    parity_tol: float = 1e-3,
    bridge: str | None = None,
) -> ExportResult:
    """`bridge`: the CLAP bridge entry for text prompts (default: the one entry in the manifest
    made for the DiT's CLAP pair, if there is exactly one; none: no text conditioning)."""
    model, config, state = load_dit(checkpoint)
    if not config.codec:
        raise InvalidInput(f"{checkpoint} does not say which codec it was trained on", field="checkpoint")
    registry = ModelRegistry(exports_dir, user_models=False)
    encoder_name = f"{config.codec}.encoder"
    if not registry.has(encoder_name) or not registry.has(f"{config.codec}.decoder"):
        raise InvalidInput(f"codec {config.codec!r} is not in {exports_dir}: export it there first", field="codec")
    encoder = registry.spec(encoder_name)
    if config.codec_sha256 and encoder.sha256 != config.codec_sha256:
        raise InvalidInput(f"{encoder_name} in {exports_dir} is not the encoder {checkpoint} was trained on", field="codec")
    samples_per_latent = int(encoder.window)
    components = {"encoder": encoder_name, "decoder": f"{config.codec}.decoder"}
    if config.clap:
        for role, part in (("clap_audio", "audio"), ("clap_text", "text")):
            if not registry.has(f"{config.clap}.{part}"):
                raise InvalidInput(f"CLAP pair {config.clap!r} (the DiT's conditioning) is not in {exports_dir}", field="clap")
            components[role] = f"{config.clap}.{part}"
        if bridge is None:
            made_for = [s.name for s in registry.list() if s.family == "bridge" and s.config.get("clap_sha256") == config.clap_sha256]
            bridge = made_for[0] if len(set(made_for)) == 1 else None
        if bridge is not None:
            if not registry.has(bridge) or registry.spec(bridge).config.get("clap_sha256") != config.clap_sha256:
                raise InvalidInput(f"bridge {bridge!r} is not in {exports_dir} or was made for another CLAP pair", field="bridge")
            components["bridge"] = bridge
    g = torch.Generator().manual_seed(0)

    def example(b: int, n: int) -> tuple[torch.Tensor, ...]:
        return (
            torch.randn(b, config.latent_dim, n, generator=g),
            torch.rand(b, generator=g) * 5 + 0.01,
            torch.rand(b, config.latent_dim, n, generator=g) * 2 - 1,
            torch.randn(b, config.embed_dim, generator=g),
            torch.tensor([1.0, 0.0][:b]),
            torch.tensor([0.0, 1.0][:b]),
        )

    spec = ModelSpec(
        name=name,
        version=version,
        family=FAMILY,
        tasks=RIFF_TASKS,
        format=formats[0],
        file="",
        sha256="",
        sample_rate=encoder.sample_rate,
        stems=STEMS,
        window=frames * samples_per_latent,
        card=card,
        defaults=dict(DEFAULTS[config.parameterization]),
        config={
            **config.to_dict(),
            "components": components,
            "train_step": int(state["step"]),
            "train_wall_seconds": round(float(state["wall_time"]), 1),
            **({"train_init": str(state["init"])} if state.get("init") else {}),
        },
    )
    examples = [example(2, 12), example(1, 7)]
    return export_network(
        DenoiserGraph(model), examples, exports_dir, spec, onnx=SIGNATURE, formats=formats, tolerance=parity_tol, default_for=default_for
    )
