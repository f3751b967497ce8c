"""The "cocola" family: the exported COCOLA encoder served as a `Scorer` (task "score").

Exported network (ONNX or TorchScript), front end included:

    audio (B, T) at `sample_rate`  ->  (embedding (B, D), W (D, D))

The second output is the learned bilinear matrix W, so one file carries the whole model and
the manifest stays small. `CocolaModel` reads W once at load time (one forward pass on a
silent window) and computes sim(a, b) = a^T W b (paper eq. 2) on embeddings.

`export_cocola(net, exports_dir, ...)` writes `NAME.onnx` / `NAME.pt`, checks parity with the
torch network through the engine runtime, and registers the manifest entries.
Command line: `python -m stemlink.engine.models.cocola --checkpoint runs/cocola-cpu/best.pt`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from stemlink.engine.models.base import EngineModel, ModelSpec, Scorer

FORMAT_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


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


class CocolaExport(nn.Module):
    """What gets exported: audio (B, T) -> (encoder(audio) (B, D), W (D, D))."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.encoder = net.encoder
        self.similarity = net.similarity

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(audio), self.similarity.weight * 1.0


@dataclass
class ExportReport:
    specs: list[ModelSpec]
    parity: dict[str, float]  # format -> max abs difference of the embedding vs torch
    sizes_mb: dict[str, float]


@torch.no_grad()
def export_cocola(net: nn.Module, exports_dir: str | Path, *, name: str = "cocola-small", version: str = "0.1.0",
                  formats: Sequence[str] = ("onnx", "torchscript"), card: str | None = None,
                  tolerance: float = 1e-3, default: bool = True, extra_config: dict[str, Any] | None = None) -> ExportReport:
    """Export `net` (a `CocolaNet`) and register it; raises `ValueError` when parity fails."""
    from stemlink.lab.export import check_parity, export_onnx, export_torchscript, register

    exports_dir = Path(exports_dir)
    cfg = net.config
    module = CocolaExport(net).eval()
    example = (0.1 * torch.randn(2, cfg.clip_samples, generator=torch.Generator().manual_seed(0)),)
    specs, parity, sizes = [], {}, {}
    for fmt in formats:
        path = exports_dir / f"{name}{FORMAT_SUFFIX[fmt]}"
        if fmt == "onnx":
            export_onnx(module, example, path, input_names=["audio"], output_names=["embedding", "similarity_w"],
                        dynamic_axes={"audio": {0: "batch"}})
        else:
            export_torchscript(module, example, path)
        parity[fmt] = _parity(module, path, fmt, example)
        if not parity[fmt] <= tolerance:
            raise ValueError(f"{path.name}: export parity {parity[fmt]:.3g} exceeds tolerance {tolerance}")
        sizes[fmt] = path.stat().st_size / 2**20
        spec = ModelSpec(name=name, version=version, family="cocola", tasks=("score",), format=fmt, file=path.name,
                         sha256="", sample_rate=cfg.sample_rate, stems=(), window=cfg.clip_samples, card=card,
                         config={**cfg.to_dict(), **(extra_config or {})})
        specs.append(register(exports_dir, spec, default_for=("score",) if default else ()))
    return ExportReport(specs, parity, sizes)


def _parity(module: nn.Module, path: Path, fmt: str, example: tuple[torch.Tensor, ...]) -> float:
    """Max abs difference over both outputs, including a batch size not seen at export time."""
    from stemlink.engine.runtime import load_network

    network = load_network(path, fmt, "cpu")
    worst = 0.0
    for x in (example[0], torch.cat([example[0], -example[0], 0.5 * example[0]])):
        want, got = module(x), network(x)
        worst = max(worst, *(float((w - g).abs().max()) for w, g in zip(want, got)))
    return worst


def export_cocola_checkpoint(checkpoint: str, exports: str | None = None, *, name: str = "cocola-small",
                             version: str = "0.1.0", card: str | None = None) -> Any:
    """Export a training checkpoint (`stemlink export cocola`); prints one line per format."""
    from stemlink.lab.train.cocola import load_network as load_checkpoint
    from stemlink.paths import exports_dir

    net, state = load_checkpoint(checkpoint)
    report = export_cocola(net, exports or exports_dir(), name=name, version=version, card=card,
                           extra_config={"trained_steps": int(state.get("step", 0))})
    for spec in report.specs:
        print(f"{spec.name} {spec.format} {spec.file} sha256 {spec.sha256[:12]} "
              f"{report.sizes_mb[spec.format]:.1f} MB parity {report.parity[spec.format]:.2e}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m stemlink.engine.models.cocola --checkpoint CKPT [--exports DIR --name N]`."""
    parser = argparse.ArgumentParser(description="export a COCOLA checkpoint to ONNX + TorchScript and register it")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--exports", default=None)
    parser.add_argument("--name", default="cocola-small")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--card", default=None, help="model card file name relative to the exports folder")
    args = parser.parse_args(argv)
    export_cocola_checkpoint(args.checkpoint, args.exports, name=args.name, version=args.version, card=args.card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
