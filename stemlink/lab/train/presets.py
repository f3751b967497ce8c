"""The one reader of training presets (`presets/train/NAME.toml`) for every model family.

    read_train_preset("msdm-cpu", tables=("model", "train", "data", "augment")) -> (name, tables)
    typed_table(TrainConfig, tables["train"], "msdm-cpu[train]") -> TrainConfig

Each family turns the tables into its typed configs in its own training module
(`msdm.load_msdm_preset`, `cocola.load_cocola_preset`); code below that never sees raw dicts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

from stemlink.errors import PresetError
from stemlink.paths import presets_dir


def preset_path(name_or_path: str | Path) -> Path:
    """A path ending in `.toml` as given, else `presets/train/NAME.toml`."""
    path = Path(name_or_path)
    return path if path.suffix == ".toml" else presets_dir() / "train" / f"{name_or_path}.toml"


def read_train_preset(name_or_path: str | Path, *, tables: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Read a training preset -> (its name, {table: values}); only `tables` are allowed."""
    path = preset_path(name_or_path)
    if not path.is_file():
        available = sorted(p.stem for p in (presets_dir() / "train").glob("*.toml"))
        raise PresetError(f"training preset {str(name_or_path)!r} not found (looked for {path}); available: {available}", field="preset")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"training preset {str(path)!r} cannot be read: {exc}", field="preset") from exc
    unknown = sorted(set(data) - set(tables))
    if unknown:
        raise PresetError(
            f"training preset {path.stem!r} ({path}) has unknown table(s) {unknown}; allowed: {sorted(tables)}", field="preset"
        )
    for table, values in data.items():
        if not isinstance(values, Mapping):
            raise PresetError(f"training preset {path.stem!r}: [{table}] must be a table, got {values!r}", field=table)
    return path.stem, data


def typed_table(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """`cls(**values)` (TOML arrays become tuples); unknown keys and bad values name `where`."""
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise PresetError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}", field=where)
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise PresetError(f"{where} is invalid: {exc}", field=where) from exc


def preset_to_dict(preset: Any) -> dict[str, Any]:
    """A family's preset dataclass (name + one config per table) -> the plain mapping stored in
    checkpoints: ConfigDicts through their `to_dict`, other dataclasses as dicts (tuples as lists)."""
    out: dict[str, Any] = {}
    for f in fields(preset):
        value = getattr(preset, f.name)
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif is_dataclass(value) and not isinstance(value, type):
            value = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items()}
        out[f.name] = value
    return out
