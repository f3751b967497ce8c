"""Typed, bounded reads of msgpack header fields: the validation half of the wire protocol.

`HeaderReader(header, where)` hands out each field once with its type and range checked, then
`finish()` refuses any key nobody asked for. Type errors raise `ProtocolError`; values of the
right type but outside the allowed range raise `InvalidInput`. Every message names the
message type, the field, a (truncated) repr of the value and what is allowed.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from stemlink.errors import InvalidInput, ProtocolError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 4
_REQUIRED = object()
T = TypeVar("T")


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def depth(value: Any, limit: int = MAX_DEPTH + 4) -> int:
    """Nesting depth of lists/maps (stops counting past `limit`)."""
    if limit <= 0:
        return 0
    if isinstance(value, Mapping):
        return 1 + max((depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max((depth(v, limit - 1) for v in value), default=0)
    return 0


def check_plain(value: Any, field: str, max_depth: int = MAX_DEPTH) -> Any:
    """Accept only JSON-like data (str keys; str, finite float, int64, bool, None, list, map)."""
    if depth(value) > max_depth:
        raise ProtocolError(f"field {field!r} is nested deeper than {max_depth} levels", field=field)

    def walk(v: Any, path: str) -> None:
        if v is None or isinstance(v, (bool, str)):
            return
        if is_int(v):
            if not INT64[0] <= v <= INT64[1]:
                raise ProtocolError(f"field {path!r}: integer {short_repr(v)} does not fit in 64 bits", field=path)
            return
        if isinstance(v, float):
            if not math.isfinite(v):
                raise InvalidInput(f"field {path!r} must be finite, got {v!r}", field=path)
            return
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ProtocolError(f"field {path!r}: map keys must be strings, got {short_repr(k)}", field=path)
                walk(item, f"{path}.{k}")
            return
        if isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")
            return
        raise ProtocolError(f"field {path!r}: type {type(v).__name__} is not allowed", field=path)

    walk(value, field)
    return value


class HeaderReader:
    """Reads fields of one decoded header map; `where` (the message type) prefixes errors."""

    def __init__(self, header: Mapping[str, Any], where: str, *, prefix: str = "", top: bool = True):
        self.header = header
        self.where = where
        self.prefix = prefix  # prepended to field names in errors, e.g. "audio[0]."
        self.used: set[str] = {"v", "type", "id"} if top else set()

    def _raw(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.header:
            if default is _REQUIRED:
                raise ProtocolError(f"{self.where}: required field {self.prefix + key!r} is missing", field=self.prefix + key)
            return default
        return self.header[key]

    def _type_error(self, key: str, allowed: str) -> ProtocolError:
        return ProtocolError(
            f"{self.where}: field {self.prefix + key!r} must be {allowed}, got {short_repr(self.header.get(key))}", field=self.prefix + key
        )

    def str(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        max_len: int = 256,
        pattern: re.Pattern | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> Any:
        value = self._raw(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str):
            raise self._type_error(key, "a string")
        if len(value) > max_len:
            raise InvalidInput(f"{self.where}: field {self.prefix + key!r} is longer than {max_len} characters", field=self.prefix + key)
        if choices is not None and value not in choices:
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} is {short_repr(value)}; allowed: {', '.join(choices)}", field=self.prefix + key
            )
        if pattern is not None and not pattern.match(value):
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} = {short_repr(value)} must match {pattern.pattern}", field=self.prefix + key
            )
        return value

    def int(self, key: builtins.str, lo: builtins.int, hi: builtins.int, default: Any = _REQUIRED) -> Any:
        value = self._raw(key, default)
        if value is None and default is None:
            return None
        if not is_int(value):
            raise self._type_error(key, "an integer")
        if not lo <= value <= hi:
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} = {short_repr(value)} is out of range; allowed: {lo}..{hi}",
                field=self.prefix + key,
            )
        return value

    def float(self, key: builtins.str, lo: builtins.float, hi: builtins.float, default: Any = _REQUIRED) -> builtins.float:
        value = self._raw(key, default)
        if not (is_int(value) or isinstance(value, float)):
            raise self._type_error(key, "a number")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} = {short_repr(value)} is out of range; allowed: {lo}..{hi}",
                field=self.prefix + key,
            )
        return float(value)

    def bool(self, key: builtins.str, default: Any = _REQUIRED) -> builtins.bool:
        value = self._raw(key, default)
        if not isinstance(value, bool):
            raise self._type_error(key, "true or false")
        return value

    def names(self, key: builtins.str, default: Any = _REQUIRED, *, max_items: builtins.int = 64) -> tuple[builtins.str, ...]:
        """A list of distinct names (stems, tasks, formats)."""
        value = self._raw(key, default)
        if not isinstance(value, (list, tuple)) or any(not isinstance(v, str) for v in value):
            raise self._type_error(key, "a list of strings")
        if len(value) > max_items:
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} has {len(value)} items; at most {max_items} allowed", field=self.prefix + key
            )
        for v in value:
            if not NAME_PATTERN.match(v):
                raise InvalidInput(
                    f"{self.where}: field {self.prefix + key!r} item {short_repr(v)} must match {NAME_PATTERN.pattern}",
                    field=self.prefix + key,
                )
        if len(set(value)) != len(value):
            raise InvalidInput(f"{self.where}: field {self.prefix + key!r} has duplicate items", field=self.prefix + key)
        return tuple(value)

    def params(self, key: builtins.str, default: Any = _REQUIRED, *, max_items: builtins.int = 64) -> dict[builtins.str, Any]:
        """A flat map name -> scalar (bool, int64, finite float, str <= 1024, None)."""
        value = self._raw(key, default)
        if not isinstance(value, Mapping):
            raise self._type_error(key, "a map of name -> scalar")
        if len(value) > max_items:
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} has {len(value)} entries; at most {max_items} allowed", field=self.prefix + key
            )
        for name, item in value.items():
            path = f"{self.prefix}{key}.{name}"
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise InvalidInput(
                    f"{self.where}: field {self.prefix + key!r} key {short_repr(name)} must match {NAME_PATTERN.pattern}",
                    field=self.prefix + key,
                )
            if isinstance(item, (Mapping, list)):
                raise ProtocolError(f"{self.where}: field {path!r} must be a scalar, got {type(item).__name__}", field=path)
            if isinstance(item, str) and len(item) > 1024:
                raise InvalidInput(f"{self.where}: field {path!r} is longer than 1024 characters", field=path)
            check_plain(item, path)
        return dict(value)

    def plain(self, key: builtins.str, default: Any = _REQUIRED) -> Any:
        """Any JSON-like value (bounded depth), e.g. `info` from the engine."""
        return check_plain(self._raw(key, default), self.prefix + key)

    def items(self, key: builtins.str, parse: Callable[[HeaderReader], T], *, max_items: builtins.int, default: Any = _REQUIRED) -> list[T]:
        """A list of maps, each read by `parse(HeaderReader(item))` and finished."""
        value = self._raw(key, default)
        if not isinstance(value, (list, tuple)):
            raise self._type_error(key, "a list of maps")
        if len(value) > max_items:
            raise InvalidInput(
                f"{self.where}: field {self.prefix + key!r} has {len(value)} items; at most {max_items} allowed", field=self.prefix + key
            )
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ProtocolError(
                    f"{self.where}: field {key}[{i}] must be a map, got {short_repr(item)}", field=f"{self.prefix}{key}[{i}]"
                )
            reader = HeaderReader(item, self.where, prefix=f"{self.prefix}{key}[{i}].", top=False)
            out.append(parse(reader))
            reader.finish()
        return out

    def finish(self) -> None:
        unknown = [k for k in self.header if k not in self.used]
        if unknown:
            raise ProtocolError(
                f"{self.where}: unknown field(s) {short_repr(sorted(map(str, unknown)))}", field=self.prefix + str(unknown[0])
            )
