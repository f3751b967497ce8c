"""The wire between a DAW host (or script) and the engine: protocol v1 and the `Client`."""
from stemlink.bridge.client import Client
from stemlink.bridge.protocol import PROTOCOL_VERSION, Limits, ModelInfo

__all__ = ["Client", "Limits", "ModelInfo", "PROTOCOL_VERSION"]
