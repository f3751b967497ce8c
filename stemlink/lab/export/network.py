"""The one export path every model family shares: write ONNX and/or TorchScript, reload each
file through the engine runtime, compare with torch, register it in the exports manifest.

    export_network(module, examples, exports_dir, spec, formats=("onnx", "torchscript"),
                   onnx=OnnxSignature(inputs=["x"], outputs=["y"], dynamic_axes={...}))
        -> ExportResult(specs, parity, sizes_mb)

ONNX uses the dynamo exporter by default with the weights inside the .onnx file
(external_data=False, so one file has one sha256); `dynamic_axes` ({input name: {axis: label}})
becomes dynamic shapes. TorchScript is traced by default (shape-generic for conv nets) or
scripted. Parity is the max abs difference over every output and every example input batch,
computed on the file as the engine will serve it (`stemlink.engine.runtime.load_network`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.registry import add_to_manifest, sha256_file
from stemlink.engine.runtime import NETWORK_FORMATS, load_network
from stemlink.errors import InvalidInput, MissingDependency, ModelLoadError

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}  # network format -> file suffix
Inputs = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class OnnxSignature:
    """Names of the graph's inputs/outputs and which axes are dynamic ({name: {axis: label}})."""

    inputs: Sequence[str]
    outputs: Sequence[str]
    dynamic_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    dynamo: bool = True  # False: the TorchScript-based exporter (fixed opset 17)


@dataclass
class ExportResult:
    specs: list[ModelSpec]  # registered entries, sha256 filled in, one per format
    parity: dict[str, float]  # format -> max abs difference vs torch
    sizes_mb: dict[str, float]  # format -> file size


def export_onnx(module: nn.Module, example_inputs: Inputs, path: str | Path, signature: OnnxSignature, *, opset: int = 18) -> Path:
    """Export `module(*example_inputs)` to a single-file ONNX graph."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not signature.dynamo:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                tuple(example_inputs),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=list(signature.inputs),
                output_names=list(signature.outputs),
                dynamic_axes={k: dict(v) for k, v in signature.dynamic_axes.items()},
            )
        return path
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise MissingDependency("ONNX export needs onnxscript: pip install onnx onnxscript") from exc
    dims: dict[str, torch.export.Dim] = {}
    shapes = []
    for name in signature.inputs:
        spec = {}
        for axis, label in signature.dynamic_axes.get(name, {}).items():
            dims.setdefault(label, torch.export.Dim(label, min=1))
            spec[axis] = dims[label]
        shapes.append(spec or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module.eval(),
            tuple(example_inputs),
            dynamo=True,
            external_data=False,
            input_names=list(signature.inputs),
            output_names=list(signature.outputs),
            dynamic_shapes=tuple(shapes),
            opset_version=opset,
            verbose=False,
        )
        if program is None:  # only the TorchScript-based exporter returns None
            raise ModelLoadError(f"{path.name}: the dynamo ONNX exporter returned no program", field="onnx")
        program.save(str(path), external_data=False)
    return path


def export_torchscript(module: nn.Module, example_inputs: Inputs, path: str | Path, *, script: bool = False) -> Path:
    """Trace `module` with `example_inputs` (or script it) and save it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        saved = torch.jit.script(module.eval()) if script else torch.jit.trace(module.eval(), tuple(example_inputs), check_trace=False)
        saved.save(str(path))
    return path


def _outputs(out: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


@torch.no_grad()
def check_parity(module: nn.Module, path: str | Path, fmt: str, examples: Sequence[Inputs]) -> float:
    """Max abs difference, over every output of every example, between `module` in torch and the
    exported file run by the engine runtime."""
    network = load_network(Path(path), fmt, "cpu")
    module.eval()
    worst = 0.0
    for inputs in examples:
        want, got = _outputs(module(*inputs)), _outputs(network(*inputs))
        if len(want) != len(got):
            raise ModelLoadError(f"{Path(path).name}: {len(got)} outputs, torch gives {len(want)}", field="parity")
        worst = max(worst, *(float((w - g).abs().max()) for w, g in zip(want, got, strict=True)))
    return worst


def register(exports_dir: str | Path, spec: ModelSpec, *, default_for: Sequence[str] = ()) -> ModelSpec:
    """Fill in `spec.sha256` from its file and add/replace it in the exports manifest."""
    exports_dir = Path(exports_dir)
    spec = replace(spec, sha256=sha256_file(exports_dir / spec.file))
    add_to_manifest(exports_dir, spec, default_for=default_for)
    return spec


def export_network(
    module: nn.Module,
    examples: Sequence[Inputs],
    exports_dir: str | Path,
    spec: ModelSpec,
    *,
    onnx: OnnxSignature,
    formats: Sequence[str] = NETWORK_FORMATS,
    script: bool = False,
    tolerance: float = 1e-3,
    default_for: Sequence[str] = (),
) -> ExportResult:
    """Export `module` as `exports_dir/{spec.name}{suffix}` in each format, check parity on every
    example (the first one is the tracing example), register `spec` (format, file and sha256
    filled in). Raises `ModelLoadError` when parity exceeds `tolerance` (nothing is registered
    for that format)."""
    exports_dir = Path(exports_dir)
    unknown = [fmt for fmt in formats if fmt not in NETWORK_FORMATS]
    if unknown:
        raise InvalidInput(f"format {unknown[0]!r} is not supported; allowed: {', '.join(NETWORK_FORMATS)}", field="formats")
    result = ExportResult([], {}, {})
    for fmt in formats:
        path = exports_dir / f"{spec.name}{SUFFIX[fmt]}"
        if fmt == "onnx":
            export_onnx(module, examples[0], path, onnx)
        else:
            export_torchscript(module, examples[0], path, script=script)
        result.parity[fmt] = check_parity(module, path, fmt, examples)
        if not result.parity[fmt] <= tolerance:
            raise ModelLoadError(
                f"{path.name}: export parity check failed, max abs diff {result.parity[fmt]:.3g} > tolerance {tolerance}", field="parity"
            )
        result.sizes_mb[fmt] = path.stat().st_size / 2**20
        result.specs.append(register(exports_dir, replace(spec, format=fmt, file=path.name), default_for=default_for))
    return result


def component_spec(
    name: str, part: str, *, version: str, family: str, fmt: str, sample_rate: int, window: int, card: str | None, config: dict
) -> ModelSpec:
    """The manifest entry `NAME.PART` of one network of a component family (codec, clap): no wire
    task, no stems, `config.part` says which network it is."""
    return ModelSpec(
        name=f"{name}.{part}",
        version=version,
        family=family,
        tasks=(),
        format=fmt,
        file="",
        sha256="",
        sample_rate=sample_rate,
        stems=(),
        window=window,
        card=card,
        config={**config, "part": part},
    )
