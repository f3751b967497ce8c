"""Export networks to ONNX and TorchScript, check parity, and register them.

    export_onnx(module, example_inputs, path, input_names=..., output_names=..., dynamic_axes=...)
    export_torchscript(module, example_inputs, path)          (traced)
    check_parity(module, network, example_inputs) -> max_abs_diff
    register(exports_dir, spec_fields...) -> ModelSpec        (sha256 + manifest entry)

ONNX uses the dynamo exporter with the weights inside the .onnx file (external_data=False,
so one file has one sha256); `dynamic_axes` ({input name: {axis: label}}) becomes dynamic
shapes. The exported files are reloaded through `stemlink.engine.runtime`, the same code
the engine serves them with, for the parity check.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from stemlink.engine.models.base import ModelSpec
from stemlink.errors import MissingDependency


def export_onnx(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], path: str | Path, *,
                input_names: Sequence[str], output_names: Sequence[str],
                dynamic_axes: Mapping[str, Mapping[int, str]] | None = None, opset: int = 18) -> Path:
    """Export `module(*example_inputs)` to a single-file ONNX graph (dynamo exporter)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise MissingDependency("ONNX export needs onnxscript: pip install onnx onnxscript") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dims: dict[str, torch.export.Dim] = {}
    shapes = []
    for name, tensor in zip(input_names, example_inputs):
        axes = (dynamic_axes or {}).get(name, {})
        spec = {}
        for axis, label in axes.items():
            dims.setdefault(label, torch.export.Dim(label, min=1))
            spec[axis] = dims[label]
        shapes.append(spec or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), tuple(example_inputs), dynamo=True, external_data=False,
                                    input_names=list(input_names), output_names=list(output_names),
                                    dynamic_shapes=tuple(shapes), opset_version=opset, verbose=False)
        program.save(str(path), external_data=False)
    return path


def export_torchscript(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], path: str | Path) -> Path:
    """Trace `module` with `example_inputs` and save it (shape-generic for conv nets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.eval(), tuple(example_inputs), check_trace=False)
        traced.save(str(path))
    return path


@torch.no_grad()
def check_parity(module: nn.Module, path: str | Path, fmt: str, example_inputs: tuple[torch.Tensor, ...]) -> float:
    """Max abs difference between `module` in torch and the exported file run by the engine runtime."""
    from stemlink.engine.runtime import load_network

    network = load_network(Path(path), fmt, "cpu")
    expected = module.eval()(*example_inputs)
    got = network(*example_inputs)
    return float((expected - got).abs().max())


def register(exports_dir: str | Path, spec: ModelSpec, *, default_for: Sequence[str] = ()) -> ModelSpec:
    """Fill in `spec.sha256` from its file and add/replace it in the exports manifest."""
    from stemlink.engine.registry import add_to_manifest, sha256_file

    exports_dir = Path(exports_dir)
    spec = replace(spec, sha256=sha256_file(exports_dir / spec.file))
    add_to_manifest(exports_dir, spec, default_for=default_for)
    return spec
