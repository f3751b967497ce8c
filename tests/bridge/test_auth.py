"""CURVE: authorized clients are served; clients without or with unknown keys are not."""
from __future__ import annotations

import shutil

import pytest

from stemlink.bridge import Client
from stemlink.bridge.auth import init_keys
from stemlink.errors import EngineUnavailable, InvalidInput


@pytest.fixture
def keys(tmp_path):
    folder = init_keys(tmp_path / "keys", ("alice",))
    init_keys(tmp_path / "other", ("mallory",))  # a key pair the engine never authorized
    shutil.copyfile(folder / "server.key", tmp_path / "other" / "server.key")
    return folder


def test_authorized_client_is_served(start_server, keys, stereo_mix):
    server = start_server("tcp", curve_dir=keys)
    with Client(server.address, curve=keys, client_name="alice", timeout=5) as client:
        assert client.ping() < 1.0
        assert client.separate(stereo_mix[:, :1000], 44100).stems["bass"].shape == (2, 1000)


@pytest.mark.parametrize("who", ["no-keys", "unknown-key"])
def test_unauthorized_clients_get_nothing(start_server, keys, tmp_path, who):
    server = start_server("tcp", curve_dir=keys)
    kwargs = {} if who == "no-keys" else {"curve": tmp_path / "other", "client_name": "mallory"}
    with Client(server.address, timeout=0.5, **kwargs) as client:
        with pytest.raises(EngineUnavailable):
            client.ping()
    assert server.queue.jobs_done == 0


def test_missing_key_files_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="client.key_secret"):
        Client("tcp://127.0.0.1:1", curve=tmp_path)


def test_keys_command(tmp_path, capsys):
    from stemlink.cli import main

    assert main(["keys", "init", str(tmp_path / "k"), "--client", "a", "--client", "b"]) == 0
    assert sorted(p.name for p in (tmp_path / "k" / "clients").iterdir()) == ["a.key", "b.key"]
    assert (tmp_path / "k" / "server.key_secret").stat().st_mode & 0o077 == 0
