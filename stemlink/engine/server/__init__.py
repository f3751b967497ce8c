"""The engine server: ZeroMQ ROUTER I/O thread, bounded job queue, workers, embedded engine."""

from stemlink.engine.server.embedded import Engine
from stemlink.engine.server.server import DEFAULT_BIND, Server, ServerConfig

__all__ = ["DEFAULT_BIND", "Engine", "Server", "ServerConfig"]
