"""A user's BS-RoFormer / Mel-RoFormer checkpoint (the `bs-roformer` package, MIT), served as a separator.

Two files, as MSST-style repositories ship them: the weights (a torch state dict, or a dict
with "state_dict"; read with `torch.load(weights_only=True)`) and the constructor's config
(`--config FILE.yaml|json`): either the keyword arguments of `bs_roformer.BSRoformer` /
`bs_roformer.MelBandRoformer` themselves, or an MSST config with `model:` (those arguments),
`audio:` (`chunk_size` = the window, `sample_rate`) and `training:` (`instruments`,
`target_instrument`). A config with `num_bands` is a Mel-RoFormer, else a BS-RoFormer.
YAML `!!python/tuple` tags are read as lists (nothing else of Python's is); arguments the
package's class does not take are refused, naming them.

Stems: a network with `num_stems` N > 1 serves `instruments` (N names); one with a single
stem serves [target, rest] where target = `target_instrument` (else the first instrument),
rest = mix - target (named after the other instrument of a two-instrument config, else "other").
The parsed arguments are pinned in the manifest entry (`config.kwargs`), so the config file
may move after `stemlink models add`.

One network call: (B, C, window) -> (B, N, C, window) (C = 2 when `stereo`, else 1), the
input padded to a multiple of the STFT hop and the output cut back.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stemlink.engine.models.base import ModelSpec
from stemlink.engine.models.byo import FileDescription, ModuleNetwork, UserSeparator, check_stems, load_weights
from stemlink.errors import MissingDependency, ModelLoadError

INSTALL_HINT = "the roformer family needs the bs-roformer package: pip install 'stemlink[byo]' (or: pip install bs-roformer==1.2.4)"
ARCHES = ("bs-roformer", "mel-roformer")
DEFAULT_RATE, DEFAULT_CHUNK = 44100, 352800  # MSST's usual audio.sample_rate / audio.chunk_size (8 s)


@dataclass(frozen=True)
class RoformerOptions:
    """`stemlink models add --family roformer --config FILE`: the constructor config file."""

    config: Path | None = None


def roformer_class(arch: str) -> type[torch.nn.Module]:
    try:
        from bs_roformer import BSRoformer, MelBandRoformer
    except ImportError as exc:
        raise MissingDependency(f"{INSTALL_HINT} ({exc})") from exc
    return MelBandRoformer if arch == "mel-roformer" else BSRoformer


def read_config(path: Path) -> dict[str, Any]:
    """A YAML or JSON config file as a dict (`!!python/tuple` read as a list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"--config {str(path)!r} cannot be read: {exc}", field="config") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            def as_list(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
                if not isinstance(node, yaml.SequenceNode):
                    raise yaml.constructor.ConstructorError(None, None, "!!python/tuple must tag a sequence", node.start_mark)
                return loader.construct_sequence(node)

            Loader.add_constructor("tag:yaml.org,2002:python/tuple", as_list)
            data = yaml.load(text, Loader=Loader)  # a SafeLoader subclass: nothing of Python's but tuples
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        raise ModelLoadError(f"--config {str(path)!r} is not valid YAML/JSON: {exc}", field="config") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"--config {str(path)!r} must hold a mapping, got {type(data).__name__}", field="config")
    return data


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ModelLoadError(f"config section {key!r} must be a mapping, got {value!r}", field="config")
    return value


def _stems(kwargs: Mapping[str, Any], training: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """(served stems, complement) from num_stems and the MSST training section."""
    count = kwargs.get("num_stems", 1)
    instruments = list(training.get("instruments") or [])
    if count > 1:
        if len(instruments) != count:
            raise ModelLoadError(f"num_stems is {count}: training.instruments must name {count} stems, got {instruments}", field="config")
        return check_stems("training.instruments", instruments), False
    target = training.get("target_instrument") or (instruments[0] if instruments else "target")
    rest = [i for i in instruments if i != target]
    return check_stems("target and rest", [target, rest[0] if len(rest) == 1 else "other"]), True


def _build(arch: str, kwargs: Mapping[str, Any]) -> torch.nn.Module:
    cls = roformer_class(arch)
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ModelLoadError(
            f"{cls.__name__} (bs-roformer package) takes no {unknown}: this config was made for another implementation; "
            f"allowed: {sorted(allowed)}",
            field="config",
        )
    typed = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the package probes torch.stft without a window
            return cls(**typed).eval()
    except Exception as exc:  # beartype's type errors, the package's asserts (band sizes vs STFT bins)
        raise ModelLoadError(f"{cls.__name__} rejected the config: {type(exc).__name__}: {exc}", field="config") from exc


class RoformerModel(UserSeparator):
    """BS-RoFormer / Mel-RoFormer from a state dict + its constructor config."""

    file_format = "checkpoint"

    @classmethod
    def describe(cls, path: Path, options: Any) -> FileDescription:
        if not isinstance(options, RoformerOptions) or options.config is None:
            raise ModelLoadError("the roformer family needs --config FILE.yaml|json (the model's constructor arguments)", field="config")
        config_path = Path(options.config).resolve()
        data = read_config(config_path)
        kwargs = dict(_section(data, "model") if "model" in data else data)
        audio, training = _section(data, "audio"), _section(data, "training")
        arch = "mel-roformer" if "num_bands" in kwargs else "bs-roformer"
        _build(arch, kwargs)  # refuse a config the package cannot build before looking at the weights
        stems, complement = _stems(kwargs, training)
        rate = audio.get("sample_rate", kwargs.get("sample_rate", DEFAULT_RATE))
        chunk = audio.get("chunk_size", DEFAULT_CHUNK)
        if not isinstance(rate, int) or not isinstance(chunk, int) or chunk <= 0:
            raise ModelLoadError(f"audio.sample_rate / audio.chunk_size must be integers, got {rate!r} / {chunk!r}", field="config")
        config = {
            "channels": 2 if kwargs.get("stereo", False) else 1,
            "complement": complement,
            "arch": arch,
            "hop": int(kwargs.get("stft_hop_length", 512)),
            "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
            "config_file": str(config_path),
        }
        return FileDescription(sample_rate=rate, stems=stems, window=chunk, config=config)

    @classmethod
    def load_checkpoint(cls, path: Path, spec: ModelSpec, device: str | None, threads: int | None) -> ModuleNetwork:
        module = _build(str(spec.config.get("arch", "bs-roformer")), dict(spec.config.get("kwargs", {})))
        state = load_weights(path, "a torch state dict", [])
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ModelLoadError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict", field="file")
        if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
            state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"{str(path)!r} does not match the config's network: {str(exc)[:600]}", field="file") from exc
        return ModuleNetwork(module, device, threads)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        length, hop = x.shape[-1], int(self.spec.config.get("hop", 512))
        pad = -length % hop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.backends.cuda.sdp_kernel() inside the package
            out = self.network(F.pad(x, (0, pad)) if pad else x)
        if out.dim() == 3:  # a single-stem network: (B, C, T)
            out = out[:, None]
        out = out[..., :length]
        if out.shape[-1] < length:
            out = F.pad(out, (0, length - out.shape[-1]))
        return out
