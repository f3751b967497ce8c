"""`ConfigDict`: the mapping form every network config dataclass shares (checkpoints, manifest
entries and training presets store a config as a plain mapping).

    @dataclass(frozen=True)
    class BandSplitConfig(ConfigDict):
        LABEL: ClassVar[str] = "band-split"
        ...

    BandSplitConfig.from_dict(entry["config"]).to_dict() == entry["config"]

Tuples become lists in `to_dict` (JSON/TOML have no tuples; `__post_init__` turns them back);
`from_dict` refuses unknown keys by name, as `InvalidInput` on field "config".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, ClassVar, Self

from stemlink.errors import InvalidInput


class ConfigDict:
    LABEL: ClassVar[str] = "model"  # the family's name in error messages

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(f"unknown {cls.LABEL} config keys {unknown}; allowed: {sorted(known)}", field="config")
        return cls(**dict(values))
