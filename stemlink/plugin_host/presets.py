"""Task presets (`presets/*.toml`): one typed dataclass and ONE validating loader.

Schema (every key optional except `task`)::

    description = "Separate with msdm-small"
    task = "separate"            # separate | extract | remove | accompany | generate | score
    model = "msdm-small"         # default: the engine's default model for the task
    seed = 0                     # integer >= 0
    stems = ["piano"]            # stems wanted (accompany/generate/extract/remove)
    context_stems = ["bass", "drums"]   # accompany: what the input region contains
    candidates = 4               # accompany: make N, keep the best by COCOLA score (1..16: contract.MAX_CANDIDATES)
    text = "warm electric piano"  # accompany/generate: a description of the part (models whose conditions include text)
    reference = "ref.wav"        # accompany/generate: a style reference file, 0.5-30 s (models that take a reference)
    output = "{track}_{stem}_{region}.wav"   # placeholders: track stem region task model seed timeline
    format = "float32"           # float32 | pcm24
    on_exists = "error"          # error | number  (number: "name-2.wav", ...)
    [params]                     # model/sampler parameters, TOML scalars; the model validates them
    steps = 50                   # (MSDM: steps s_churn corrector_steps sigma_min sigma_max rho likelihood gamma)
    [[fx]]                       # post-processing chain, in order (see stemlink/plugin_host/fx.py)
    type = "Limiter"
    threshold_db = -1.0

Any other key, a wrong type or an unknown task raises `PresetError` naming the field and the
allowed values. Presets are found by name in `presets_dir()` (env STEMLINK_PRESETS) or by path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stemlink.contract import MAX_CANDIDATES, MAX_SEED, TASKS, check_text, is_int
from stemlink.errors import InvalidInput, PresetError
from stemlink.plugin_host.fx import FxSpec, parse_fx
from stemlink.plugin_host.outputs import ON_EXISTS, check_pattern

SAMPLE_FORMATS = ("float32", "pcm24")
DEFAULT_OUTPUT = "{track}_{stem}_{region}.wav"


@dataclass(frozen=True)
class Preset:
    task: str
    name: str = ""
    description: str = ""
    model: str | None = None
    seed: int = 0
    stems: tuple[str, ...] = ()
    context_stems: tuple[str, ...] = ()
    candidates: int = 1
    text: str = ""  # accompany/generate: a description of the wanted part, for models that take text
    reference: str = ""  # accompany/generate: a style reference audio file (0.5-30 s), for models that take one
    output: str = DEFAULT_OUTPUT
    format: str = "float32"
    on_exists: str = "error"
    params: Mapping[str, Any] = field(default_factory=dict)
    fx: tuple[FxSpec, ...] = ()
    path: Path | None = None

    def with_overrides(self, **changes: Any) -> Preset:
        """A copy with CLI overrides applied (None values are ignored), re-validated."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return parse_preset({**to_dict(self), **changes}, name=self.name, path=self.path) if changes else self


FILE_KEYS = tuple(f.name for f in fields(Preset) if f.name not in ("name", "path"))


def to_dict(preset: Preset) -> dict[str, Any]:
    """The TOML-level form of a preset (fx as tables)."""
    data = {k: getattr(preset, k) for k in FILE_KEYS}
    data["fx"] = [
        {"type": f.type, **({"path": f.path, "params": dict(f.params)} if f.type == "vst3" else dict(f.params))} for f in preset.fx
    ]
    data["params"] = dict(preset.params)
    return data


def parse_preset(data: Mapping[str, Any], *, name: str = "", path: Path | None = None) -> Preset:
    """Validate a TOML table into a `Preset`. Raises `PresetError` naming the field."""
    where = f"preset {name!r}" if name else "preset"
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise PresetError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(FILE_KEYS)}", field=unknown[0])

    def need(key: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise PresetError(f"{where}: {key} must be {allowed}, got {data.get(key)!r}", field=key)

    if "task" not in data:
        raise PresetError(f"{where}: missing 'task'; allowed: {', '.join(TASKS)}", field="task")
    need("task", data["task"] in TASKS, f"one of {', '.join(TASKS)}")
    get = data.get
    need("description", isinstance(get("description", ""), str), "a string")
    need("model", get("model") is None or (isinstance(get("model"), str) and bool(get("model"))), "a model name (string)")
    seed = get("seed", 0)
    need("seed", is_int(seed) and 0 <= seed <= MAX_SEED, "an integer in 0..2**63-1")
    for key in ("stems", "context_stems"):
        value = get(key, ())
        need(key, isinstance(value, (list, tuple)) and all(isinstance(s, str) and s for s in value), "a list of stem names")
    candidates = get("candidates", 1)
    need("candidates", is_int(candidates) and 1 <= candidates <= MAX_CANDIDATES, f"an integer in 1..{MAX_CANDIDATES}")
    need("candidates", candidates == 1 or data["task"] == "accompany", "1 unless task = 'accompany'")
    for key in ("text", "reference"):
        need(key, isinstance(get(key, ""), str), "a string")
        need(key, not get(key, "") or data["task"] in ("accompany", "generate"), "empty unless task is 'accompany' or 'generate'")
    if get("text"):
        try:
            check_text(get("text"), data["task"])
        except InvalidInput as exc:
            raise PresetError(f"{where}: {exc.message}", field="text") from exc
    need("output", isinstance(get("output", DEFAULT_OUTPUT), str), "a string pattern")
    check_pattern(get("output", DEFAULT_OUTPUT))
    need("format", get("format", "float32") in SAMPLE_FORMATS, f"one of {', '.join(SAMPLE_FORMATS)}")
    need("on_exists", get("on_exists", "error") in ON_EXISTS, f"one of {', '.join(ON_EXISTS)}")
    params = get("params", {})
    need("params", isinstance(params, Mapping), "a table of parameters")
    for key, value in params.items():
        if not isinstance(value, (bool, int, float, str)):
            raise PresetError(
                f"{where}: params.{key} must be a TOML scalar (number, bool or string), got {type(value).__name__}", field=f"params.{key}"
            )
    return Preset(
        task=data["task"],
        name=name,
        description=get("description", ""),
        model=get("model"),
        seed=seed,
        stems=tuple(get("stems", ())),
        context_stems=tuple(get("context_stems", ())),
        candidates=candidates,
        text=get("text", ""),
        reference=get("reference", ""),
        output=get("output", DEFAULT_OUTPUT),
        format=get("format", "float32"),
        on_exists=get("on_exists", "error"),
        params=dict(params),
        fx=parse_fx(get("fx"), where="fx"),
        path=path,
    )


def preset_path(name_or_path: str | Path) -> Path:
    """`presets_dir()/NAME.toml`, or the given path when it names a .toml file."""
    from stemlink.paths import presets_dir

    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        return Path(text)
    return presets_dir() / f"{text}.toml"


def load_preset(name_or_path: str | Path) -> Preset:
    """Read and validate one preset by name or path."""
    path = preset_path(name_or_path)
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(path.parent.glob("*.toml"))) or "(none)"
        raise PresetError(f"preset {str(name_or_path)!r} not found ({path}); available: {known}", field="preset")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"preset {path}: not valid TOML: {exc}", field="preset") from exc
    return parse_preset(data, name=path.stem, path=path)


def list_presets(folder: Path | None = None) -> list[tuple[str, Preset | PresetError]]:
    """Every `*.toml` in the presets folder: (name, Preset) or (name, the error that breaks it)."""
    from stemlink.paths import presets_dir

    folder = presets_dir() if folder is None else Path(folder)
    out: list[tuple[str, Preset | PresetError]] = []
    for path in sorted(folder.glob("*.toml")):
        try:
            out.append((path.stem, load_preset(path)))
        except PresetError as exc:
            out.append((path.stem, exc))
    return out


def default_preset(task: str) -> Preset:
    """The built-in preset used when the CLI gets no --preset."""
    return replace(parse_preset({"task": task}), name=f"(default {task})")
