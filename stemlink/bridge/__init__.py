"""The wire between a DAW host (or script) and the engine: protocol v1 and the `Client`.

The names below are imported on first use, so `stemlink.bridge.discovery` (what
`stemlink status` needs to say "no engine is running") loads neither numpy nor the protocol.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stemlink.bridge.client import Client
    from stemlink.bridge.protocol import PROTOCOL_VERSION, Limits, ModelInfo

_EXPORTS = {
    "Client": "stemlink.bridge.client",
    "Limits": "stemlink.bridge.protocol",
    "ModelInfo": "stemlink.bridge.protocol",
    "PROTOCOL_VERSION": "stemlink.bridge.protocol",
}

__all__ = ["Client", "Limits", "ModelInfo", "PROTOCOL_VERSION"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stemlink.bridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
