"""CURVE authentication and encryption for engines reached over a network.

A keys folder (made by `stemlink keys init DIR`) holds ZeroMQ CURVE certificates:

    DIR/server.key, DIR/server.key_secret     the engine's key pair (the secret stays on the engine)
    DIR/clients/<name>.key                    public keys of the clients the engine accepts
    DIR/<name>.key, DIR/<name>.key_secret     a client's key pair (copy to that workstation
                                              together with server.key)

`stemlink serve --curve DIR` encrypts every connection and accepts only the listed clients
(ZAP handler: `zmq.auth.thread.ThreadAuthenticator`); `Client(..., curve=DIR)` (or
`$STEMLINK_CURVE`) connects with `DIR/client.key_secret` (or `client_name`) and pins
`DIR/server.key`. A client with a wrong or missing key never completes the handshake: it
sees no reply (EngineUnavailable), and the engine never sees its messages.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import zmq

from stemlink.errors import InvalidInput

ENV_CURVE = "STEMLINK_CURVE"
SERVER = "server"
CLIENTS = "clients"


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise InvalidInput("this libzmq has no CURVE support; install a pyzmq wheel (bundles libsodium-free CURVE)", field="curve")


def init_keys(folder: str | os.PathLike, clients: tuple[str, ...] = ("client",)) -> Path:
    """Create the server key pair (if missing) and one key pair per client name, authorizing
    each client (its public key copied into `clients/`). Returns the folder."""
    import zmq.auth

    _require_curve()
    folder = Path(folder)
    (folder / CLIENTS).mkdir(parents=True, exist_ok=True)
    if not (folder / f"{SERVER}.key_secret").exists():
        zmq.auth.create_certificates(folder, SERVER)
    for name in clients:
        if not (folder / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(folder, name)
        shutil.copyfile(folder / f"{name}.key", folder / CLIENTS / f"{name}.key")
    for secret in folder.glob("*.key_secret"):
        secret.chmod(0o600)
    return folder


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise InvalidInput(f"CURVE key file {str(path)!r} does not exist (create keys with `stemlink keys init DIR`)", field="curve")
    public, secret_key = zmq.auth.load_certificate(path)
    if secret and secret_key is None:
        raise InvalidInput(f"CURVE key file {str(path)!r} holds no secret key", field="curve")
    return public, secret_key


def secure_server(socket: zmq.Socket, context: zmq.Context, folder: str | os.PathLike) -> Any:
    """Make `socket` (before bind) a CURVE server accepting only `folder/clients/*.key`.
    Returns the started authenticator; call `.stop()` after closing the socket."""
    from zmq.auth.thread import ThreadAuthenticator

    _require_curve()
    folder = Path(folder)
    public, secret = _load(folder / f"{SERVER}.key_secret", secret=True)
    if not any((folder / CLIENTS).glob("*.key")):
        raise InvalidInput(f"no authorized client keys in {str(folder / CLIENTS)!r}", field="curve")
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(folder / CLIENTS))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return auth


def secure_client(socket: zmq.Socket, folder: str | os.PathLike, client_name: str = "client") -> None:
    """Give `socket` (before connect) this client's key pair and pin the server's key."""
    _require_curve()
    folder = Path(folder)
    public, secret = _load(folder / f"{client_name}.key_secret", secret=True)
    server_public, _ = _load(folder / f"{SERVER}.key", secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
