"""Fixtures shared by every test folder: a tiny echo export and engines on real sockets.

Test modules are imported by their path from the repo root (pyproject: --import-mode=importlib,
pythonpath = ["."]), so helpers are imported as `tests.<folder>.<module>`, never by a bare name.
The engine is imported inside the fixtures: collecting a test that needs no engine loads no torch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import zmq

if TYPE_CHECKING:
    from stemlink.engine.server import Server


@pytest.fixture(autouse=True, scope="session")
def _no_user_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read the developer's own user manifest (`stemlink models add`): every registry
    sees an empty one unless a test points STEMLINK_USER_MODELS somewhere else."""
    import os

    old = os.environ.get("STEMLINK_USER_MODELS")
    os.environ["STEMLINK_USER_MODELS"] = str(tmp_path_factory.mktemp("user-models") / "models.json")
    yield
    if old is None:
        os.environ.pop("STEMLINK_USER_MODELS", None)
    else:
        os.environ["STEMLINK_USER_MODELS"] = old


@pytest.fixture(scope="session")
def echo_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "echo" at 16 kHz, window 4096, delay 5 samples, ONNX + TorchScript, every task;
    "echo-sep": separate only, TorchScript, 8 kHz, window 2048."""
    from stemlink.lab.export.echo import build_echo_export

    folder = build_echo_export(tmp_path_factory.mktemp("echo-exports"), sample_rate=16000, window=4096, delay=5)
    return build_echo_export(folder, name="echo-sep", tasks=("separate",), formats=("torchscript",), sample_rate=8000, window=2048)


def bind_address(transport: str, tmp_path: Path) -> str:
    """A fresh address: a random free loopback port (tcp), tmp_path/engine.sock (ipc), or a unique inproc name."""
    if transport == "tcp":
        return "tcp://127.0.0.1:*"
    if transport == "ipc":
        return f"ipc://{tmp_path}/engine.sock"
    return f"inproc://test-{uuid.uuid4().hex}"


@pytest.fixture
def start_server(echo_exports: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_server(transport="tcp", **ServerConfig fields) -> a running Server, stopped after the test.
    Serves `echo_exports` unless `exports_dir=` says otherwise."""
    from stemlink.engine.server import Server, ServerConfig

    servers: list[Server] = []

    def start(transport: str = "tcp", **config: Any) -> Server:
        config.setdefault("exports_dir", echo_exports)
        server = Server(ServerConfig(bind=bind_address(transport, tmp_path), **config), context=zmq.Context.instance()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
