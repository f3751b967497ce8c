"""Validation of a family's task parameters (wire, presets, manifest defaults) into its typed
params dataclass, one rule per field.

    RULES = {"steps": (lambda v: isinstance(v, int) and 1 <= v <= 500, "an integer in 1..500"), ...}
    params = parse_typed(MSDMParams, RULES, {"steps": 25}, model="msdm-small")
    values = task_defaults({"steps": 25, "accompany": {"s_churn": 0.0}}, "accompany", MSDM_TASKS)

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


def task_defaults(defaults: Mapping[str, Any], task: str, tasks: tuple[str, ...]) -> dict[str, Any]:
    """A manifest's parameter defaults for one task: the shared keys, then the task's own table.

    With `tasks` ("separate", "accompany", "generate"), `{"steps": 25, "s_churn": 20.0,
    "accompany": {"s_churn": 0.0}}` gives accompany S_churn 0 and every other task S_churn 20."""
    shared = {k: v for k, v in defaults.items() if k not in tasks}
    own = defaults.get(task, {})
    if not isinstance(own, Mapping):
        raise InvalidInput(f"defaults.{task} must be a table of parameters, got {own!r}", field=f"defaults.{task}")
    return {**shared, **own}
