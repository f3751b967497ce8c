"""The wire between a DAW host (or script) and the engine: protocol v1 and the `Client`.

The bridge only speaks the protocol: it imports nothing of `stemlink.engine` (nor torch).
A `Client` connects to an engine that runs; starting one (embedded in this process or as a
child) is `stemlink.launcher.connect`'s job.

The names below are imported on first use, so `stemlink.bridge.discovery` (what
`stemlink status` needs to say "no engine is running") loads neither numpy nor the protocol.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stemlink.bridge.client import Client
    from stemlink.bridge.protocol import PROTOCOL_VERSION, ModelInfo
    from stemlink.contract import Limits

_EXPORTS = {
    "Client": "stemlink.bridge.client",
    "Limits": "stemlink.contract",
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
