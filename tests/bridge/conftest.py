"""Fixtures for socket tests: a tiny echo export and engines on real tcp/ipc/inproc sockets."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
import zmq

from stemlink.engine.models.echo import build_echo_export
from stemlink.engine.server import Server, ServerConfig


@pytest.fixture(scope="session")
def echo_exports(tmp_path_factory):
    """"echo" at 16 kHz, window 4096, delay 5 samples, ONNX + TorchScript, every task;
    "echo-sep": separate only, TorchScript."""
    folder = build_echo_export(tmp_path_factory.mktemp("echo-exports"), sample_rate=16000, window=4096, delay=5)
    return build_echo_export(folder, name="echo-sep", tasks=("separate",), formats=("torchscript",), sample_rate=8000, window=2048)


def bind_address(transport: str, tmp_path) -> str:
    if transport == "tcp":
        return "tcp://127.0.0.1:*"  # random free loopback port
    if transport == "ipc":
        return f"ipc://{tmp_path}/engine.sock"
    return f"inproc://test-{uuid.uuid4().hex}"


@pytest.fixture
def start_server(echo_exports, tmp_path):
    """start_server(transport="tcp", **config) -> running Server (stopped after the test)."""
    servers = []

    def start(transport: str = "tcp", **config) -> Server:
        config.setdefault("exports_dir", echo_exports)
        server = Server(ServerConfig(bind=bind_address(transport, tmp_path), **config), context=zmq.Context.instance()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def stereo_mix():
    rng = np.random.default_rng(1)
    return (0.1 * rng.standard_normal((2, 20000))).astype(np.float32)
