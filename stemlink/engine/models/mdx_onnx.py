"""A user's MDX-Net (UVR style) ONNX graph, served as a stereo two-stem separator.

The graph maps the spectrum of a stereo window to the spectrum of ONE target stem, both

    (B, 4, dim_f, dim_t)   channels [L real, L imag, R real, R imag] of
                           torch.stft(n_fft, hop, periodic Hann, center=True), bins cropped to dim_f

as UVR's MDX-Net models do (window = hop * (dim_t - 1) samples at 44.1 kHz; the cropped bins
are zero on the way back). Stems served: [stem, "other"], "other" = mix - stem. The user
gives `--stem NAME --n-fft N --dim-f F --dim-t T [--hop H]`; without --dim-f / --dim-t the
graph's static input shape is used, else UVR's common 6144 / 2048 / 256 (hop 1024). A wrong
n_fft is not detectable from the graph: it only makes the model separate badly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.byo import FileDescription, UserSeparator, check_stems
from stemlink.errors import ModelLoadError

MDX_RATE = 44100
DEFAULT_N_FFT, DEFAULT_DIM_F, DEFAULT_DIM_T, DEFAULT_HOP = 6144, 2048, 256, 1024  # UVR's common MDX-Net setting


@dataclass(frozen=True)
class MdxOptions:
    """`stemlink models add --family mdx-onnx` options; None: from the graph, else UVR's defaults."""

    stem: str | None = None
    n_fft: int = DEFAULT_N_FFT
    dim_f: int | None = None
    dim_t: int | None = None
    hop: int = DEFAULT_HOP


def graph_input_shape(path: Path) -> list[int | None]:
    """The static dims of the graph's first input (None where symbolic)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # not an ONNX protobuf
        raise ModelLoadError(f"{str(path)!r} is not an ONNX model: {type(exc).__name__}: {exc}", field="file") from exc
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ModelLoadError(
            f"{str(path)!r}: an MDX-Net graph has one input and one output, got {len(graph.input)} and {len(graph.output)}", field="file"
        )
    dims = graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


class MdxOnnxModel(UserSeparator):
    """Target stem + "other" from an MDX-Net spectrogram graph (see the module docstring)."""

    file_format = "onnx"

    @classmethod
    def describe(cls, path: Path, options: Any) -> FileDescription:
        if not isinstance(options, MdxOptions) or not options.stem:
            raise ModelLoadError("the mdx-onnx family needs --stem NAME (the stem the graph outputs, e.g. vocals)", field="stem")
        stems = check_stems("--stem and 'other'", [options.stem, "other"])
        shape = graph_input_shape(path)
        if len(shape) != 4 or shape[1] not in (None, 4):
            raise ModelLoadError(f"{str(path)!r}: an MDX-Net graph takes (B, 4, dim_f, dim_t), this one takes {shape}", field="file")
        dim_f = options.dim_f or shape[2] or DEFAULT_DIM_F
        dim_t = options.dim_t or shape[3] or DEFAULT_DIM_T
        for what, given, static in (("--dim-f", dim_f, shape[2]), ("--dim-t", dim_t, shape[3])):
            if static is not None and given != static:
                raise ModelLoadError(f"{str(path)!r}: the graph takes {what} {static}, got {what} {given}", field=what[2:])
        n_fft, hop = options.n_fft, options.hop
        if not (0 < hop <= n_fft // 2 and 1 <= dim_f <= n_fft // 2 + 1 and dim_t >= 2):
            raise ModelLoadError(
                f"MDX settings must satisfy 0 < hop <= n_fft/2, 1 <= dim_f <= n_fft/2 + 1, dim_t >= 2; "
                f"got n_fft {n_fft}, hop {hop}, dim_f {dim_f}, dim_t {dim_t}",
                field="n_fft",
            )
        config = {"channels": 2, "complement": True, "n_fft": n_fft, "hop": hop, "dim_f": dim_f, "dim_t": dim_t}
        return FileDescription(sample_rate=MDX_RATE, stems=stems, window=hop * (dim_t - 1), config=config)

    def __init__(self, spec: Any, network: Any):
        super().__init__(spec, network)
        self.n_fft, self.hop = int(spec.config["n_fft"]), int(spec.config["hop"])
        self.dim_f, self.dim_t = int(spec.config["dim_f"]), int(spec.config["dim_t"])
        if spec.window != self.hop * (self.dim_t - 1):
            raise ValueError(f"window {spec.window} must be hop * (dim_t - 1) = {self.hop * (self.dim_t - 1)}")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        bins = self.n_fft // 2 + 1
        window = torch.hann_window(self.n_fft, periodic=True, device=x.device)
        z = torch.stft(x.reshape(-1, length), self.n_fft, self.hop, window=window, center=True, return_complex=True)
        spec = torch.view_as_real(z).permute(0, 3, 1, 2).reshape(batch, 4, bins, self.dim_t)[:, :, : self.dim_f].contiguous()
        outs = []
        for i in range(batch):  # one window per call: many UVR graphs have a fixed batch of 1
            out = self.network(spec[i : i + 1])
            out = out[0] if isinstance(out, tuple) else out
            if tuple(out.shape) != (1, 4, self.dim_f, self.dim_t):
                raise ModelLoadError(
                    f"model {self.name!r}: the graph returned {tuple(out.shape)}, expected {(1, 4, self.dim_f, self.dim_t)}", field="file"
                )
            outs.append(out)
        y = torch.cat(outs).float()
        y = torch.cat([y, y.new_zeros(batch, 4, bins - self.dim_f, self.dim_t)], dim=2)
        y = y.reshape(batch * channels, 2, bins, self.dim_t).permute(0, 2, 3, 1).contiguous()
        wave = torch.istft(torch.view_as_complex(y), self.n_fft, self.hop, window=window, center=True, length=length)
        return wave.reshape(batch, 1, channels, length)
