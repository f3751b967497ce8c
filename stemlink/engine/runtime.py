"""Exported-network runtimes: one callable wrapper for ONNX (onnxruntime) and TorchScript.

`load_network(path, format, device)` returns a `Network`: `network(*tensors) -> tensor` (or a
tuple of tensors when the graph has several outputs). Model families (`stemlink/engine/models/*.py`)
only ever call this wrapper, so the same family code serves either format.

Device policy: `device=None` means CUDA when `torch.cuda.is_available()`, else CPU. For ONNX
the CUDA execution provider is requested only then: onnxruntime-gpu lists CUDA among its
providers even on machines without a GPU, so the provider list cannot be used for detection.
Outputs are returned on the device of the first input tensor.

Threads (a shared machine, `stemlink/engine/threads.py`): onnxruntime sessions never spin-wait; the
intra-op / torch thread count is the explicit one (`threads`, `$STEMLINK_THREADS`) or the
policy's (the cores other processes leave free), re-evaluated at every call. Passive OpenMP
waiting must be set before torch loads: `stemlink.engine.threads.configure_process()`.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch

from stemlink.engine.threads import free_threads, requested_threads, usable_cpus
from stemlink.errors import MissingDependency, ModelLoadError

NETWORK_FORMATS = ("onnx", "torchscript")


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
    """An onnxruntime `InferenceSession` called with torch tensors.

    Sessions never spin (`allow_spinning` 0, intra- and inter-op) and run sequentially. With
    `threads` None the intra-op thread count follows the thread policy (`stemlink/engine/threads.py`):
    one session per count actually used, built on first use (counts are rounded down to
    1, 2, 4, ... or the core count, so at most ~log2(cores) + 1 sessions exist).
    """

    format = "onnx"

    def __init__(self, path: Path, device: torch.device, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependency("onnxruntime is not installed: pip install 'stemlink[cpu]' (or [gpu] on a CUDA machine)") from exc
        self._ort = ort
        self.path = path
        self.threads = requested_threads(threads)
        self.providers: list = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            self.providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        self.device = device
        self._lock = threading.Lock()
        self._sessions: dict[int, Any] = {}
        self.session = self._session(self._count())
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _count(self) -> int:
        if self.threads is not None:
            return self.threads
        return session_bucket(free_threads(), usable_cpus())

    def _session(self, count: int) -> Any:
        with self._lock:
            session = self._sessions.get(count)
            if session is None:
                session = self._ort.InferenceSession(
                    str(self.path), sess_options=session_options(self._ort, count), providers=self.providers
                )
                self._sessions[count] = session
            return session

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"ONNX network expects {len(self.input_names)} inputs {self.input_names}, got {len(inputs)}")
        count = self._count()
        set_torch_threads(count)  # the model family's own torch ops (samplers) run in this thread too
        out_device = inputs[0].device if inputs else self.device
        feed = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs, strict=False)}
        outputs = self._session(count).run(self.output_names, feed)
        tensors = tuple(torch.from_numpy(o).to(out_device) for o in outputs)
        return tensors[0] if len(tensors) == 1 else tensors


def session_options(ort: Any, threads: int) -> Any:
    """onnxruntime `SessionOptions` for a shared machine: `threads` intra-op threads, one
    inter-op thread, sequential execution, no spin-waiting."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def session_bucket(count: int, cpus: int) -> int:
    """Round a thread count down to 1, 2, 4, ... (or `cpus` itself): few distinct sessions."""
    count = max(1, min(int(count), int(cpus)))
    if count == cpus:
        return count
    return 1 << (count.bit_length() - 1)


def set_torch_threads(count: int) -> None:
    """`torch.set_num_threads` for the calling thread (OpenMP's count is per thread), if it changed."""
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


class TorchScriptNetwork:
    """A `torch.jit` module run under `torch.inference_mode()`, with the policy's (or the
    explicit) torch thread count set in the calling thread before every call."""

    format = "torchscript"

    def __init__(self, path: Path, device: torch.device, threads: int | None = None):
        self.threads = requested_threads(threads)
        self.device = device
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
            self.module = torch.jit.load(str(path), map_location=device).eval()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.device.type == "cpu":
            set_torch_threads(self.threads if self.threads is not None else free_threads())
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

    `threads`: onnxruntime intra-op threads / torch CPU threads; None: `$STEMLINK_THREADS`,
    else the thread policy (`stemlink.engine.threads`: the cores other processes leave free,
    re-evaluated at every call). onnxruntime never spin-waits either way.
    """
    torch.set_flush_denormal(True)  # random-init or tiny weights otherwise run very slowly on CPU
    path = Path(path)
    if format not in NETWORK_FORMATS:
        raise ModelLoadError(f"{path.name}: format {format!r} is not supported; allowed: {', '.join(NETWORK_FORMATS)}", field="format")
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist", field="file")
    dev = resolve_device(device)
    threads = requested_threads(threads)  # a bad $STEMLINK_THREADS is InvalidInput, not a load failure
    cls = OnnxNetwork if format == "onnx" else TorchScriptNetwork
    try:
        return cls(path, dev, threads)
    except MissingDependency:
        raise
    except Exception as exc:  # any loader failure (corrupt file, bad graph) becomes one typed error
        raise ModelLoadError(f"cannot load {format} file {str(path)!r}: {type(exc).__name__}: {exc}", field="file") from exc
