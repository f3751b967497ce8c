"""The model registry: `exports/manifest.json` -> checked, loaded, cached `EngineModel`s.

Manifest format (paths relative to the manifest's folder)::

    {"version": 1,
     "models": [{"name": "msdm-small", "version": "1", "family": "msdm",
                 "tasks": ["separate", "accompany", "generate"], "format": "onnx",
                 "file": "msdm-small.onnx", "sha256": "<64 hex>", "sample_rate": 16000,
                 "stems": ["bass", "drums", "guitar", "piano"], "window": 32768,
                 "delay": 0, "card": "msdm-small.md", "config": {...}, "defaults": {...}}],
     "defaults": {"separate": "msdm-small"}}          # optional: default model per task

Several entries may share a `name` with different `format`; `spec(name)` prefers onnx.
A file's sha256 is verified before it is loaded; a symlinked file must resolve inside the
exports folder (`resolve_file`). A broken entry does not hide the others:
it is left out of `list()` and asking for it raises `ModelLoadError` saying what is wrong.
Exporters call `add_to_manifest(exports_dir, spec)` (atomic write).

User models (`stemlink models add`, `stemlink/engine/user_models.py`) live in a second manifest
of the same format outside the checkout (`stemlink.paths.user_models_path()`), whose entries
carry the ABSOLUTE real path of the user's file (never copied) and may use the format
"checkpoint" (a torch checkpoint the family deserializes itself: `load_checkpoint`). The
registry serves them next to the shipped models with the same `list/has/spec/get`, the same
sha256 check and the same errors; a user entry must still resolve to exactly its pinned path.
A shipped name wins on a clash (the user entry is then reported in `broken`).
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from stemlink.contract import TASKS
from stemlink.engine.models.base import EngineModel, ModelSpec
from stemlink.engine.runtime import NETWORK_FORMATS, Network, load_network
from stemlink.errors import ModelLoadError, UnknownModel, UnknownTask

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
COMPONENT_FAMILIES = frozenset({"codec", "clap", "bridge"})  # families whose entries have no tasks: other models load them by name
CHECKPOINT = "checkpoint"  # user models only: a torch checkpoint the family class loads (`load_checkpoint`)
FILE_FORMATS = (*NETWORK_FORMATS, CHECKPOINT)
FORMAT_PREFERENCE = ("onnx", "torchscript", CHECKPOINT)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def is_model_name(name: Any) -> bool:
    """Whether `name` is a valid model name: 1-64 letters, digits, '.', '_', '-', starting with a letter or digit."""
    return isinstance(name, str) and bool(_NAME.match(name))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """A manifest entry (JSON-ready) for `spec`."""
    data = asdict(spec)
    data["tasks"] = list(spec.tasks)
    data["stems"] = list(spec.stems)
    data["config"] = dict(spec.config)
    data["defaults"] = dict(spec.defaults)
    return data


def spec_from_dict(entry: Any, where: str = MANIFEST, *, user: bool = False) -> ModelSpec:
    """Validate one manifest entry. Raises `ModelLoadError` naming the model and field.

    `user`: an entry of the user manifest: `file` is an absolute path and the format may also
    be "checkpoint"; shipped entries name a relative path inside the exports folder."""
    if not isinstance(entry, Mapping):
        raise ModelLoadError(f"{where}: each model entry must be an object, got {type(entry).__name__}", field="models")
    name = entry.get("name")
    label = f"{where}: model {name!r}"

    def bad(field: str, allowed: str) -> ModelLoadError:
        return ModelLoadError(f"{label} field {field!r} must be {allowed}, got {entry.get(field)!r}", field=field)

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(name, str) or not _NAME.match(name):
        raise bad("name", "1-64 characters of letters, digits, '.', '_', '-'")
    for key in ("version", "family"):
        if not isinstance(entry.get(key), str) or not entry.get(key):
            raise bad(key, "a non-empty string")
    tasks = entry.get("tasks")
    component = entry.get("family") in COMPONENT_FAMILIES  # a part of other models, served by no task itself
    if not isinstance(tasks, list) or not (tasks or component) or any(t not in TASKS for t in tasks):
        raise bad("tasks", f"a non-empty list of {', '.join(TASKS)}")
    formats = FILE_FORMATS if user else NETWORK_FORMATS
    if entry.get("format") not in formats:
        raise bad("format", f"one of {', '.join(formats)}")
    file = entry.get("file")
    if user:
        if not isinstance(file, str) or not Path(file).is_absolute() or ".." in Path(file).parts:
            raise bad("file", "an absolute path (the file pinned by `stemlink models add`)")
    elif not isinstance(file, str) or not file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise bad("file", "a relative path inside the exports folder")
    if not isinstance(entry.get("sha256"), str) or not _SHA.match(entry["sha256"]):
        raise bad("sha256", "64 lowercase hex digits")
    if not is_int(entry.get("sample_rate")) or not 1000 <= entry["sample_rate"] <= 384000:
        raise bad("sample_rate", "an integer in 1000..384000")
    stems = entry.get("stems")
    if not isinstance(stems, list) or any(not isinstance(s, str) or not s for s in stems) or len(set(stems)) != len(stems):
        raise bad("stems", "a list of distinct non-empty strings")
    if not is_int(entry.get("window")) or entry["window"] <= 0:
        raise bad("window", "a positive integer (samples at sample_rate)")
    delay = entry.get("delay", 0)
    if not is_int(delay) or not 0 <= delay < entry["window"]:
        raise bad("delay", "an integer in 0..window-1")
    if entry.get("card") is not None and not isinstance(entry["card"], str):
        raise bad("card", "a string or null")
    for key in ("config", "defaults"):
        if not isinstance(entry.get(key, {}), Mapping):
            raise bad(key, "an object")
    unknown = set(entry) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise ModelLoadError(
            f"{label} has unknown fields {sorted(unknown)}; allowed: {sorted(ModelSpec.__dataclass_fields__)}", field=sorted(unknown)[0]
        )
    return ModelSpec(
        name=name,
        version=entry["version"],
        family=entry["family"],
        tasks=tuple(tasks),
        format=entry["format"],
        file=file,
        sha256=entry["sha256"],
        sample_rate=entry["sample_rate"],
        stems=tuple(stems),
        window=entry["window"],
        delay=delay,
        card=entry.get("card"),
        config=dict(entry.get("config", {})),
        defaults=dict(entry.get("defaults", {})),
    )


def read_manifest(exports_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw manifest object; an absent manifest is an empty one."""
    return read_manifest_file(Path(exports_dir) / MANIFEST)


def read_manifest_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw manifest object of the file `path` (shipped or user manifest); absent = empty."""
    path = Path(path)
    if not path.exists():
        return {"version": MANIFEST_VERSION, "models": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a readable JSON manifest: {exc}", field="manifest") from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or not isinstance(data.get("models"), list):
        raise ModelLoadError(f'{path}: must be {{"version": {MANIFEST_VERSION}, "models": [...]}}', field="version")
    return data


def add_to_manifest(exports_dir: str | os.PathLike, spec: ModelSpec, *, default_for: Iterable[str] = ()) -> Path:
    """Add or replace (same name and format) `spec` in the manifest, atomically.

    `default_for`: tasks for which this model becomes the registry default.
    Returns the manifest path. The entry is validated before anything is written.
    """
    exports_dir = Path(exports_dir)
    exports_dir.mkdir(parents=True, exist_ok=True)
    entry = spec_to_dict(spec)
    spec_from_dict(entry, where="add_to_manifest")
    data = read_manifest(exports_dir)
    models = [m for m in data["models"] if not (isinstance(m, Mapping) and m.get("name") == spec.name and m.get("format") == spec.format)]
    models.append(entry)
    data["models"] = models
    defaults = dict(data.get("defaults", {}))
    for task in default_for:
        if task not in spec.tasks:
            raise UnknownTask(
                f"model {spec.name!r} cannot be the default for {task!r}: its tasks are {list(spec.tasks)}", field="default_for"
            )
        defaults[task] = spec.name
    if defaults:
        data["defaults"] = defaults
    return write_manifest_file(exports_dir / MANIFEST, data)


def write_manifest_file(path: Path, data: Mapping[str, Any]) -> Path:
    """Write a manifest object to `path` atomically (a temporary file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the manifest is a shipped, readable file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


ModelFactory = Callable[[ModelSpec, Network], EngineModel]  # a family class: cls(spec, network) -> model
# ... of a family built on other entries (`config.components`): cls(spec, network, {role: loaded model})
ComponentFactory = Callable[[ModelSpec, Network, Mapping[str, EngineModel]], EngineModel]
# A family's checkpoint loader (user models of format "checkpoint"): cls.load_checkpoint(path, spec, device, threads) -> network
CheckpointLoader = Callable[[Path, ModelSpec, str | None, int | None], Network]


def family_class(family: str) -> ModelFactory:
    """Import the `EngineModel` class registered for `family` (lazily)."""
    from stemlink.engine.models import FAMILIES

    target = FAMILIES.get(family)
    if target is None:
        raise ModelLoadError(f"model family {family!r} is not known; allowed: {', '.join(sorted(FAMILIES))}", field="family")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"model family {family!r}: cannot import {target}: {exc}", field="family") from exc
    if not (isinstance(cls, type) and issubclass(cls, EngineModel)):
        raise ModelLoadError(f"model family {family!r}: {target} is not an EngineModel class", field="family")
    return cast(ModelFactory, cls)


class ModelRegistry:
    """Explicit registry over one exports folder: `list`, `has`, `spec`, `get`, `default_for`.

    `get` verifies the file's sha256, loads the network and builds the family's model once,
    then caches it (thread-safe). `device`/`threads` are passed to `load_network`.
    """

    def __init__(
        self,
        exports_dir: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        threads: int | None = None,
        user_models: bool | str | os.PathLike = True,
    ):
        """`user_models`: also serve the user manifest: True = its default place
        (`stemlink.paths.user_models_path()`), a path = that file, False = shipped models only."""
        if exports_dir is None:
            from stemlink.paths import exports_dir as default_exports

            exports_dir = default_exports()
        self.exports_dir = Path(exports_dir)
        if user_models is True:
            from stemlink.paths import user_models_path

            self.user_manifest: Path | None = user_models_path()
        else:
            self.user_manifest = Path(user_models) if user_models is not False else None
        self.device = device
        self.threads = threads
        self._lock = threading.RLock()  # re-entered when a model loads its components
        self._cache: dict[tuple[str, str], EngineModel] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the manifest (drops the cache)."""
        data = read_manifest(self.exports_dir)
        specs: list[ModelSpec] = []
        broken: dict[str, str] = {}
        for i, entry in enumerate(data["models"]):
            try:
                specs.append(spec_from_dict(entry, where=str(self.exports_dir / MANIFEST)))
            except ModelLoadError as exc:
                raw = entry.get("name") if isinstance(entry, Mapping) else None
                name = raw if isinstance(raw, str) else f"#{i}"
                broken[name] = exc.message
        defaults = data.get("defaults", {})
        user = self._read_user(specs, broken)
        with self._lock:
            self._specs = specs + user
            self._user = {(s.name, s.format) for s in user}
            self._broken = broken
            self._defaults = dict(defaults) if isinstance(defaults, Mapping) else {}
            self._cache.clear()

    def _read_user(self, shipped: builtins.list[ModelSpec], broken: dict[str, str]) -> builtins.list[ModelSpec]:
        """The valid user-manifest entries whose names no shipped model takes; the others go to `broken`."""
        if self.user_manifest is None:
            return []
        where = str(self.user_manifest)
        try:
            data = read_manifest_file(self.user_manifest)
        except ModelLoadError as exc:  # a damaged user manifest must not hide the shipped models
            broken[where] = exc.message
            return []
        taken = {s.name for s in shipped} | set(broken)
        user: builtins.list[ModelSpec] = []
        for i, entry in enumerate(data["models"]):
            raw = entry.get("name") if isinstance(entry, Mapping) else None
            name = raw if isinstance(raw, str) else f"{where}#{i}"
            try:
                spec = spec_from_dict(entry, where=where, user=True)
            except ModelLoadError as exc:
                broken.setdefault(name, exc.message)
                continue
            if spec.name in taken:
                broken.setdefault(f"{spec.name} (user)", f"{where}: user model {spec.name!r} is shadowed by a shipped model of that name")
                continue
            user.append(spec)
        return user

    def is_user(self, spec: ModelSpec) -> bool:
        """Whether `spec` comes from the user manifest (`stemlink models add`)."""
        return (spec.name, spec.format) in self._user

    def list(self) -> list[ModelSpec]:
        """Every valid manifest entry (all formats), in manifest order; user models after the shipped ones."""
        return list(self._specs)

    def names(self) -> builtins.list[str]:  # `list` is the method above here
        """Distinct model names, in manifest order."""
        return list(dict.fromkeys(s.name for s in self._specs))

    @property
    def broken(self) -> dict[str, str]:
        """Model name -> why its manifest entry is unusable."""
        return dict(self._broken)

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self._specs)

    def spec(self, name: str, format: str | None = None) -> ModelSpec:
        """The entry for `name` (onnx preferred when `format` is None)."""
        candidates = [s for s in self._specs if s.name == name]
        if not candidates:
            if name in self._broken:
                raise ModelLoadError(self._broken[name], field="model")
            known = ", ".join(self.names()) or "(none)"
            where = f"{self.exports_dir / MANIFEST}" + (f" or {self.user_manifest}" if self.user_manifest is not None else "")
            raise UnknownModel(f"model {name!r} is not in {where}; available: {known}", field="model")
        if format is not None:
            for s in candidates:
                if s.format == format:
                    return s
            have = ", ".join(s.format for s in candidates)
            raise UnknownModel(f"model {name!r} has no {format!r} export; available formats: {have}", field="format")
        return min(candidates, key=lambda s: FORMAT_PREFERENCE.index(s.format) if s.format in FORMAT_PREFERENCE else 99)

    def get(self, name: str, format: str | None = None) -> EngineModel:
        """The loaded model (cached). Raises `UnknownModel` / `ModelLoadError` naming model and file."""
        spec = self.spec(name, format)
        key = (spec.name, spec.format)
        with self._lock:
            model = self._cache.get(key)
            if model is None:
                model = self._load(spec)
                self._cache[key] = model
        return model

    def default_for(self, task: str) -> str:
        """The model name used for `task` when a request names none."""
        if task not in TASKS:
            raise UnknownTask(f"task {task!r} is not known; allowed: {', '.join(TASKS)}", field="task")
        name = self._defaults.get(task)
        if isinstance(name, str) and any(s.name == name and task in s.tasks for s in self._specs):
            return name
        for s in self._specs:
            if task in s.tasks:
                return s.name
        raise UnknownModel(f"no model in {self.exports_dir / MANIFEST} serves task {task!r}", field="model")

    def resolve_file(self, spec: ModelSpec) -> Path:
        """The real path of `spec.file`. A symlink is followed once, here, and must stay inside
        the (resolved) exports folder; the file is then hashed and loaded through this path
        only, so swapping a link between the sha256 check and the load changes nothing.
        A user entry pins the real (absolute, links resolved) path at `models add`: it must
        still resolve to exactly that path (a file replaced by a link is refused)."""
        if self.is_user(spec):
            pinned = Path(spec.file)
            label = f"user model {spec.name!r} ({spec.format}, file {spec.file!r})"
            real = pinned.resolve()
            if real != pinned:
                raise ModelLoadError(
                    f"{label}: now resolves to {str(real)!r}, not the pinned file: re-add it with `stemlink models add`", field="file"
                )
            if not real.is_file():
                raise ModelLoadError(f"{label}: file is missing (moved or deleted since `stemlink models add`)", field="file")
            return real
        path = self.exports_dir / spec.file
        label = f"model {spec.name!r} ({spec.format}, file {str(path)!r})"
        real = path.resolve()
        if not real.is_relative_to(self.exports_dir.resolve()):
            raise ModelLoadError(
                f"{label}: resolves to {str(real)!r}, outside the exports folder; a model file (or a link to it) must stay inside it",
                field="file",
            )
        if not real.is_file():
            raise ModelLoadError(f"{label}: file is missing", field="file")
        return real

    def _load(self, spec: ModelSpec) -> EngineModel:
        user = self.is_user(spec)
        label = f"{'user model' if user else 'model'} {spec.name!r} ({spec.format}, file {str(self.exports_dir / spec.file)!r})"
        path = self.resolve_file(spec)
        actual = sha256_file(path)
        if actual != spec.sha256:
            if user:
                raise ModelLoadError(
                    f"{label}: file changed since `stemlink models add`: re-add it (pinned sha256 {spec.sha256[:12]}..., now "
                    f"{actual[:12]}...; stemlink models add {spec.file} --family {spec.family} --name {spec.name} --replace, "
                    "with the same family options)",
                    field="sha256",
                )
            raise ModelLoadError(
                f"{label}: sha256 mismatch (manifest {spec.sha256[:12]}..., file {actual[:12]}...): corrupt or replaced file",
                field="sha256",
            )
        components = self._components(spec, label)
        return load_model(spec, path, device=self.device, threads=self.threads, label=label, components=components)

    def _components(self, spec: ModelSpec, label: str) -> dict[str, EngineModel]:
        """The other entries a model is built on (`config.components`: {role: entry name}), loaded."""
        wanted = spec.config.get("components") or {}
        if not isinstance(wanted, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in wanted.items()):
            raise ModelLoadError(f"{label}: config.components must map roles to entry names, got {wanted!r}", field="config.components")
        out = {}
        for role, name in wanted.items():
            if not self.has(name):
                raise ModelLoadError(f"{label}: needs {role} {name!r}, which is not in the manifest", field="config.components")
            out[role] = self.get(name)
        return out


def load_model(
    spec: ModelSpec,
    path: Path,
    *,
    device: str | None = None,
    threads: int | None = None,
    label: str = "",
    components: Mapping[str, EngineModel] | None = None,
) -> EngineModel:
    """Build `spec`'s family model from the (already checked) file at `path`.

    onnx / torchscript files load through `load_network`; "checkpoint" files through the family
    class's `load_checkpoint(path, spec, device, threads)`. A family built on other entries gets them
    loaded as `components` (`ModelRegistry._components`). Errors are `ModelLoadError`s prefixed
    with `label` (a missing optional package stays a `MissingDependency`)."""
    label = label or f"model {spec.name!r} ({spec.format}, file {str(path)!r})"
    cls = family_class(spec.family)
    try:
        if spec.format == CHECKPOINT:
            loader = getattr(cls, "load_checkpoint", None)
            if loader is None:
                raise ModelLoadError(f"family {spec.family!r} cannot load {CHECKPOINT!r} files", field="format")
            network = cast(CheckpointLoader, loader)(path, spec, device, threads)
        else:
            network = load_network(path, spec.format, device, threads=threads)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{label}: {exc.message}", field=exc.field) from exc
    try:
        return cast(ComponentFactory, cls)(spec, network, components) if components else cls(spec, network)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{label}: family {spec.family!r} rejected the entry: {exc}", field="config") from exc
