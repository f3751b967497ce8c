"""Validation of a family's task parameters (wire, presets, manifest defaults) into its typed
params dataclass, one rule per field.

    RULES = {"steps": (lambda v: isinstance(v, int) and 1 <= v <= 500, "an integer in 1..500"), ...}
    params = parse_typed(MSDMParams, RULES, {"steps": 25}, model="msdm-small")

Unknown keys and values a rule refuses are `InvalidInput`s naming `params.KEY`, the value and what
is allowed; a value given to a float field is stored as a float.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

from stemlink.errors import InvalidInput

Rule = tuple[Callable[[Any], bool], str]  # (accepts the value?, what is allowed)
P = TypeVar("P")


def parse_typed(cls: type[P], rules: Mapping[str, Rule], values: Mapping[str, Any], *, model: str) -> P:
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in rules:
            raise InvalidInput(f"model {model!r}: unknown parameter {key!r}; allowed: {', '.join(allowed)}", field=f"params.{key}")
        check, what = rules[key]
        if not check(value):
            raise InvalidInput(f"model {model!r}: params.{key} must be {what}, got {value!r}", field=f"params.{key}")
    floats = {f.name for f in fields(cls) if isinstance(f.default, float)}  # type: ignore[arg-type]
    return cls(**{k: float(v) if k in floats else v for k, v in values.items()})
