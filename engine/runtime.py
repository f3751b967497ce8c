"""Exported-network runtimes: one callable wrapper for ONNX (onnxruntime) and TorchScript.

`load_network(path, format, device)` returns a `Network`: `network(*tensors) -> tensor` (or a
tuple of tensors when the graph has several outputs). Model families (`engine/models/*.py`)
only ever call this wrapper, so the same family code serves either format.

Device policy: `device=None` means CUDA when `torch.cuda.is_available()`, else CPU. For ONNX
the CUDA execution provider is requested only then: onnxruntime-gpu lists CUDA among its
providers even on machines without a GPU, so the provider list cannot be used for detection.
Outputs are returned on the device of the first input tensor.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Protocol, Sequence

import torch

from stemlink.errors import MissingDependency, ModelLoadError

FORMATS = ("onnx", "torchscript")


class Network(Protocol):
    """An exported network: `(*tensors) -> tensor | tuple[tensor, ...]`, no autograd."""

    format: str
    device: torch.device

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]: ...


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None -> "cuda" when available else "cpu"; "cuda" without a GPU is refused."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {str(device)!r} requested but no CUDA GPU is available; use 'cpu'", field="device")
    if dev.type not in ("cpu", "cuda"):
        raise ModelLoadError(f"device {str(device)!r} is not supported; allowed: cpu, cuda, cuda:N", field="device")
    return dev


class OnnxNetwork:
    """An onnxruntime `InferenceSession` called with torch tensors."""

    format = "onnx"

    def __init__(self, path: Path, device: torch.device, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependency("onnxruntime is not installed: pip install 'stemlink[cpu]' (or [gpu] on a CUDA machine)") from exc
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers: list = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        self.device = device
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"ONNX network expects {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        out_device = inputs[0].device if inputs else self.device
        feed = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
        outputs = self.session.run(self.output_names, feed)
        tensors = tuple(torch.from_numpy(o).to(out_device) for o in outputs)
        return tensors[0] if len(tensors) == 1 else tensors


class TorchScriptNetwork:
    """A `torch.jit` module run under `torch.inference_mode()`."""

    format = "torchscript"

    def __init__(self, path: Path, device: torch.device, threads: int | None = None):
        if threads:
            torch.set_num_threads(int(threads))
        self.device = device
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
            self.module = torch.jit.load(str(path), map_location=device).eval()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            out = self.module(*(t.to(self.device) for t in inputs))
        out_device = inputs[0].device if inputs else self.device
        if isinstance(out, (tuple, list)):
            return tuple(o.to(out_device) for o in out)
        return out.to(out_device)


def load_network(
    path: str | os.PathLike,
    format: str,
    device: str | torch.device | None = None,
    *,
    threads: int | None = None,
) -> Network:
    """Load an exported network file. Raises `ModelLoadError` naming the file on failure.

    `threads`: onnxruntime intra-op threads / torch CPU threads (None keeps the default).
    """
    torch.set_flush_denormal(True)  # random-init or tiny weights otherwise run very slowly on CPU
    path = Path(path)
    if format not in FORMATS:
        raise ModelLoadError(f"{path.name}: format {format!r} is not supported; allowed: {', '.join(FORMATS)}", field="format")
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist", field="file")
    dev = resolve_device(device)
    cls = OnnxNetwork if format == "onnx" else TorchScriptNetwork
    try:
        return cls(path, dev, threads)
    except MissingDependency:
        raise
    except Exception as exc:  # any loader failure (corrupt file, bad graph) becomes one typed error
        raise ModelLoadError(f"cannot load {format} file {str(path)!r}: {type(exc).__name__}: {exc}", field="file") from exc


def available_formats() -> Sequence[str]:
    """Formats this environment can load (onnx needs onnxruntime)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return ("torchscript",)
    return FORMATS
