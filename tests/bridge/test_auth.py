"""CURVE over real tcp sockets: the documented flow works, keys are found by client name, the
CLI takes --curve/--client, removing a key revokes it at once, refused handshakes are logged,
and a refused client gets an error naming the cause instead of a timeout."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
import zmq

from stemlink.bridge import Client
from stemlink.bridge.auth import client_key_file, init_keys
from stemlink.errors import EngineUnavailable, InvalidInput

WAIT = 30.0  # generous: a refusal must be reported long before this, whatever the load


@pytest.fixture
def keys(tmp_path):
    folder = init_keys(tmp_path / "keys", ("alice",))
    init_keys(tmp_path / "other", ("mallory",))  # a key pair the engine never authorized
    shutil.copyfile(folder / "server.key", tmp_path / "other" / "server.key")
    return folder


def wait_for_log(caplog, text: str, timeout: float = WAIT) -> str:
    """The captured log once it contains `text` (the engine logs from its own threads)."""
    deadline = time.monotonic() + timeout
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    return caplog.text


def test_authorized_client_is_served(start_server, keys, stereo_mix):
    server = start_server("tcp", curve_dir=keys)
    with Client(server.address, curve=keys, client_name="alice", timeout=5) as client:
        assert client.ping() < 1.0
        assert client.separate(stereo_mix[:, :1000], 44100).stems["bass"].shape == (2, 1000)


def test_readme_flow_finds_the_only_client_key(start_server, tmp_path):
    """README: `stemlink keys init keys/ --client studio-a`, then `Client(addr, curve="keys/")`."""
    from stemlink.cli import main

    assert main(["keys", "init", str(tmp_path / "keys"), "--client", "studio-a"]) == 0
    server = start_server("tcp", curve_dir=tmp_path / "keys")
    with Client(server.address, curve=str(tmp_path / "keys"), timeout=WAIT) as client:
        assert client.hello().models


def test_client_key_is_chosen_by_name_and_listed_when_missing_or_ambiguous(tmp_path, monkeypatch):
    monkeypatch.delenv("STEMLINK_CLIENT", raising=False)
    folder = init_keys(tmp_path / "k", ("studio-a", "studio-b"))
    assert client_key_file(folder, "studio-b") == folder / "studio-b.key_secret"
    with pytest.raises(InvalidInput, match=r"several client keys \(studio-a, studio-b\); choose one with --client"):
        Client("tcp://127.0.0.1:1", curve=folder)
    with pytest.raises(InvalidInput, match=r"no CURVE key for client 'studio-c'.*client keys there: studio-a, studio-b"):
        Client("tcp://127.0.0.1:1", curve=folder, client_name="studio-c")
    monkeypatch.setenv("STEMLINK_CLIENT", "studio-a")
    assert client_key_file(folder) == folder / "studio-a.key_secret"


def test_missing_keys_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="no client key pair"):
        Client("tcp://127.0.0.1:1", curve=tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        Client("tcp://127.0.0.1:1", curve=tmp_path / "nowhere")


def test_cli_curve_and_client_options(start_server, tmp_path, capsys, monkeypatch):
    from stemlink.cli import main

    monkeypatch.delenv("STEMLINK_CURVE", raising=False)
    folder = init_keys(tmp_path / "keys", ("studio-a", "studio-b"))
    server = start_server("tcp", curve_dir=folder)
    curve = ["--engine", server.address, "--curve", str(folder), "--client", "studio-b"]
    assert main(["models", *curve]) == 0
    assert "model(s)" in capsys.readouterr().out
    assert main(["status", *curve]) == 0
    assert f"engine at {server.address}" in capsys.readouterr().out
    assert main(["models", "--engine", server.address, "--curve", str(folder), "--timeout", str(WAIT)]) == 2
    assert "several client keys" in capsys.readouterr().err
    assert main(["models", "--engine", server.address, "--timeout", str(WAIT)]) == 2  # no keys: named, not a timeout
    assert "requires CURVE" in capsys.readouterr().err


def test_cli_job_commands_take_curve_options():
    from stemlink.cli import build_parser

    parser = build_parser()
    for argv in (["separate", "x.wav"], ["accompany", "x.wav"], ["generate", "--seconds", "1"], ["run", "s.toml"], ["score", "a", "b"]):
        args = parser.parse_args([*argv, "--curve", "keys", "--client", "studio-a"])
        assert (args.curve, args.client_name) == ("keys", "studio-a"), argv


def test_removing_a_client_key_revokes_it_without_restart(start_server, keys, caplog):
    caplog.set_level(logging.WARNING, logger="stemlink.bridge.zap")
    server = start_server("tcp", curve_dir=keys)
    with Client(server.address, curve=keys, timeout=WAIT) as client:
        client.ping()
    public = (keys / "clients" / "alice.key").read_bytes()
    (keys / "clients" / "alice.key").unlink()
    with Client(server.address, curve=keys, timeout=WAIT) as client:
        with pytest.raises(EngineUnavailable, match="refused this client's CURVE key"):
            client.ping()
    assert "refused CURVE handshake from 127.0.0.1" in wait_for_log(caplog, "refused CURVE handshake")
    (keys / "clients" / "alice.key").write_bytes(public)  # authorized again, still no restart
    with Client(server.address, curve=keys, timeout=WAIT) as client:
        client.ping()


def test_unknown_key_is_refused_clearly_and_logged(start_server, keys, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="stemlink.bridge.zap")
    server = start_server("tcp", curve_dir=keys)
    mallory = (tmp_path / "other" / "mallory.key").read_text()
    with Client(server.address, curve=tmp_path / "other", timeout=WAIT) as client:
        with pytest.raises(EngineUnavailable, match=r"refused this client's CURVE key \(.*mallory.key\)"):
            client.ping()
    text = wait_for_log(caplog, "refused CURVE handshake")
    public_key = next(line.split('"')[1] for line in mallory.splitlines() if "public-key" in line)
    assert f"refused CURVE handshake from 127.0.0.1: client public key {public_key}" in text
    assert server.queue.jobs_done == 0


def test_client_without_curve_is_told_and_logged(start_server, keys, caplog):
    caplog.set_level(logging.WARNING, logger="stemlink.bridge.zap")
    server = start_server("tcp", curve_dir=keys)
    with Client(server.address, timeout=WAIT) as client:
        with pytest.raises(EngineUnavailable, match="requires CURVE authentication; pass --curve DIR"):
            client.ping()
    assert "the client does not use CURVE" in wait_for_log(caplog, "does not use CURVE")


def test_wrong_server_key_is_named(start_server, keys, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="stemlink.bridge.zap")
    server = start_server("tcp", curve_dir=keys)
    (keys / "server.key").rename(keys / "server.key.real")
    init_keys(tmp_path / "impostor", ())
    shutil.copyfile(tmp_path / "impostor" / "server.key", keys / "server.key")
    with Client(server.address, curve=keys, timeout=WAIT) as client:
        with pytest.raises(EngineUnavailable, match="is probably not that engine's server key"):
            client.ping()
    assert "pinned a different server key" in wait_for_log(caplog, "pinned a different server key")


def test_curve_client_of_a_plain_engine_is_told(start_server, keys):
    server = start_server("tcp")
    with Client(server.address, curve=keys, timeout=WAIT) as client:
        with pytest.raises(EngineUnavailable, match="does not use CURVE; connect without --curve"):
            client.ping()


def test_keys_command(tmp_path, capsys):
    from stemlink.cli import main

    assert main(["keys", "init", str(tmp_path / "k"), "--client", "a", "--client", "b"]) == 0
    assert sorted(p.name for p in (tmp_path / "k" / "clients").iterdir()) == ["a.key", "b.key"]
    assert (tmp_path / "k" / "server.key_secret").stat().st_mode & 0o077 == 0


def test_plain_clients_of_a_plain_engine_are_unaffected(start_server):
    server = start_server("tcp")
    with Client(server.address, timeout=WAIT) as client:
        assert client.ping() < WAIT
    assert zmq.has("curve")
