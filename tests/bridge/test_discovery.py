"""Client with no address: $STEMLINK_ENGINE, a local engine that answers, else embedded."""

from __future__ import annotations

import socket

import pytest

from stemlink.bridge import Client
from stemlink.bridge.discovery import answers_ping, discover, port_open
from stemlink.errors import EngineUnavailable
from stemlink.launcher import connect


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    monkeypatch.delenv("STEMLINK_EXPORTS", raising=False)
    return monkeypatch


@pytest.fixture
def silent_listener():
    """A TCP port that accepts connections but is not a stemlink engine."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_env_address_is_used(clean_env, start_server):
    server = start_server()
    clean_env.setenv("STEMLINK_ENGINE", server.address)
    with Client() as client:
        assert client.engine is None and client.address == server.address
        assert client.ping() < 1.0


def test_env_can_force_embedded(clean_env, echo_exports):
    clean_env.setenv("STEMLINK_ENGINE", "embedded")
    clean_env.setenv("STEMLINK_EXPORTS", str(echo_exports))
    with connect() as client:
        assert client.engine is not None and client.address.startswith("inproc://")
    with pytest.raises(EngineUnavailable, match="no engine is running.*launcher.connect"):
        Client()  # a client only connects: it never starts an engine itself


def test_a_local_engine_that_answers_is_found(clean_env, start_server):
    server = start_server("tcp")
    assert discover(address=server.address) == server.address
    assert discover("some/exports", address=server.address) is None  # an explicit exports folder means embedded


def test_no_engine_or_a_foreign_listener_means_embedded(clean_env, silent_listener):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    assert not port_open("127.0.0.1", int(free.rsplit(":", 1)[1]))
    assert discover(address=free) is None
    assert not answers_ping(silent_listener, timeout=0.3)
    assert discover(address=silent_listener) is None
