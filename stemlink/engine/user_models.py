"""The user manifest: separators a sound engineer brings (`stemlink models add` / `remove`).

The file (`stemlink.paths.user_models_path()`: $STEMLINK_USER_MODELS, else
$XDG_CONFIG_HOME/stemlink/models.json, else ~/.config/stemlink/models.json) has the format of
`exports/manifest.json` (`stemlink.engine.registry`), except that `file` is the absolute real
path of the user's file, which stays where it is: it is never copied, moved or modified, and
nothing is downloaded. `add_user_model` verifies the file before pinning it: the family reads
it (`describe`), the registry's own loader loads it, one forward pass on a window of quiet
noise must give finite stems of the declared shape; then its sha256 is recorded, so a file
changed later is refused at load (`ModelRegistry`). A name already taken (shipped, or another
user model unless `replace`) is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stemlink.engine.models.base import EngineModel, ModelSpec
from stemlink.engine.models.byo import SEPARATION_TASKS, UserSeparator
from stemlink.engine.registry import (
    ModelRegistry,
    family_class,
    is_model_name,
    load_model,
    read_manifest_file,
    sha256_file,
    spec_from_dict,
    spec_to_dict,
    write_manifest_file,
)
from stemlink.errors import InvalidInput, ModelLoadError, StemlinkError, UnknownModel

USER_FAMILIES = ("demucs", "mdx-onnx", "roformer")  # `stemlink models add --family` (keys of FAMILIES)
USER_VERSION = "user"


@dataclass(frozen=True)
class AddedModel:
    """What `add_user_model` pinned: the manifest entry and the manifest written."""

    spec: ModelSpec
    manifest: Path


def user_manifest(path: str | os.PathLike | None = None) -> Path:
    from stemlink.paths import user_models_path

    return Path(path) if path is not None else user_models_path()


def default_name(file: Path) -> str:
    """A model name from a file name: 'UVR-MDX-NET Voc FT.onnx' -> 'UVR-MDX-NET-Voc-FT'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", file.stem).strip("-._")[:64]
    return name or "user-model"


def verify_separator(model: EngineModel) -> None:
    """One forward pass on a window of quiet noise: finite stems of shape (1, S, C, window)."""
    if not isinstance(model, UserSeparator):
        raise ModelLoadError(f"family {model.spec.family!r} is not a user separator family", field="family")
    shape = (1, model.channels, model.window) if model.channels == 2 else (1, model.window)
    noise = 0.05 * torch.randn(shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            out = model.separate(noise, params=None, generator=torch.Generator(), callback=lambda done, total: None)
    except StemlinkError:
        raise
    except Exception as exc:  # the network cannot run on a window of the declared shape
        raise ModelLoadError(f"a test window {tuple(shape)} does not run: {type(exc).__name__}: {exc}", field="file") from exc
    expected = (1, len(model.stems), *shape[1:])
    if tuple(out.shape) != expected:
        raise ModelLoadError(f"a test window {tuple(shape)} gave stems {tuple(out.shape)}, expected {expected}", field="file")
    if not torch.isfinite(out).all():
        raise ModelLoadError("a test window of quiet noise gave NaN/inf stems", field="file")


def add_user_model(
    file: str | os.PathLike,
    family: str,
    options: Any = None,
    *,
    name: str | None = None,
    replace: bool = False,
    exports_dir: str | os.PathLike | None = None,
    manifest: str | os.PathLike | None = None,
) -> AddedModel:
    """Verify `file` as a `family` separator and pin it (absolute path + sha256) in the user manifest.

    `options`: the family's options dataclass (`MdxOptions`, `RoformerOptions`, `DemucsOptions`).
    Raises `InvalidInput` (bad name / family / file), `ModelLoadError` (unusable file),
    `MissingDependency` (the family's package). Nothing is written unless every check passes.
    """
    if family not in USER_FAMILIES:
        raise InvalidInput(f"--family must be one of {', '.join(USER_FAMILIES)}, got {family!r}", field="family")
    path = Path(file).expanduser()
    if not path.is_file():
        raise InvalidInput(f"model file {str(path)!r} does not exist (or is not a file)", field="file")
    real = path.resolve()
    target = user_manifest(manifest)
    name = name or default_name(real)
    cls = family_class(family)
    assert isinstance(cls, type) and issubclass(cls, UserSeparator), family
    _check_name(name, replace, exports_dir, target)
    sha = sha256_file(real)
    try:
        described = cls.describe(real, options)
        spec = ModelSpec(
            name=name,
            version=USER_VERSION,
            family=family,
            tasks=SEPARATION_TASKS,
            format=cls.file_format,
            file=str(real),
            sha256=sha,
            sample_rate=described.sample_rate,
            stems=described.stems,
            window=described.window,
            config=dict(described.config),
        )
        spec = spec_from_dict(spec_to_dict(spec), where="models add", user=True)
        verify_separator(load_model(spec, real, device="cpu", label=f"{family} file {str(real)!r}"))
    except ModelLoadError as exc:
        raise ModelLoadError(f"not added: {exc.message}", field=exc.field) from exc
    if sha256_file(real) != sha:
        raise ModelLoadError(f"not added: {str(real)!r} changed while it was being verified", field="sha256")
    data = read_manifest_file(target)
    data["models"] = [m for m in data["models"] if not (isinstance(m, dict) and m.get("name") == name)] + [spec_to_dict(spec)]
    target.parent.mkdir(parents=True, exist_ok=True)
    return AddedModel(spec=spec, manifest=write_manifest_file(target, data))


def _check_name(name: str, replace: bool, exports_dir: str | os.PathLike | None, target: Path) -> None:
    if not is_model_name(name):
        raise InvalidInput(f"--name {name!r}: must be 1-64 letters, digits, '.', '_', '-' (starting with a letter or digit)", field="name")
    shipped = ModelRegistry(exports_dir, user_models=False)
    if shipped.has(name) or name in shipped.broken:
        raise InvalidInput(f"--name {name!r} is taken by a shipped model ({shipped.exports_dir}); choose another --name", field="name")
    if not replace and any(isinstance(m, dict) and m.get("name") == name for m in read_manifest_file(target)["models"]):
        raise InvalidInput(
            f"--name {name!r} is already a user model ({target}); pass --replace to re-pin it, or choose another --name", field="name"
        )


def remove_user_model(name: str, *, manifest: str | os.PathLike | None = None) -> Path:
    """Drop `name` from the user manifest (the file itself is left alone). Returns the manifest path."""
    target = user_manifest(manifest)
    data = read_manifest_file(target)
    kept = [m for m in data["models"] if not (isinstance(m, dict) and m.get("name") == name)]
    if len(kept) == len(data["models"]):
        names = [m.get("name") for m in data["models"] if isinstance(m, dict)]
        raise UnknownModel(f"{name!r} is not a user model in {target}; user models: {names or '(none)'}", field="name")
    data["models"] = kept
    return write_manifest_file(target, data)
