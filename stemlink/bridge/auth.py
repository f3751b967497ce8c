"""CURVE authentication and encryption for engines reached over a network.

A keys folder (made by `stemlink keys init DIR --client NAME`) holds ZeroMQ CURVE certificates:

    DIR/server.key, DIR/server.key_secret     the engine's key pair (the secret stays on the engine)
    DIR/clients/<name>.key                    public keys of the clients the engine accepts
    DIR/<name>.key, DIR/<name>.key_secret     a client's key pair (copy to that workstation
                                              together with server.key)

Engine: `stemlink serve --curve DIR` encrypts every connection and accepts only the keys in
DIR/clients. The ZAP handler (`stemlink/bridge/zap.py`, the engine side) reads that folder on every handshake, so
deleting `clients/<name>.key` refuses that client's next connection without a restart (a
connection already open keeps its session until it reconnects). Every refused handshake is
logged (logger `stemlink.bridge.zap`, WARNING) with the client's public key and address
when ZAP saw them.

Client: `Client(addr, curve=DIR)` (or `$STEMLINK_CURVE`) uses the only client key pair in DIR,
or `client_name=NAME` / `--client NAME` / `$STEMLINK_CLIENT` when DIR holds several, and pins
DIR/server.key. `HandshakeWatch` turns a refused handshake into `EngineUnavailable` naming the
cause at once, instead of a timeout that looks like a dead engine.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from stemlink.errors import EngineUnavailable, InvalidInput

ENV_CURVE = "STEMLINK_CURVE"
ENV_CLIENT = "STEMLINK_CLIENT"
SERVER = "server"
CLIENTS = "clients"
SECRET_SUFFIX = ".key_secret"
HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
NO_DETAIL_LIMIT = 3  # handshakes in a row cut short without detail before a CURVE client gives up


def require_curve() -> None:
    if not zmq.has("curve"):
        raise InvalidInput("this libzmq has no CURVE support; install a pyzmq wheel (bundles libsodium-free CURVE)", field="curve")


def init_keys(folder: str | os.PathLike, clients: tuple[str, ...] = ("client",)) -> Path:
    """Create the server key pair (if missing) and one key pair per client name, authorizing
    each client (its public key copied into `clients/`). Returns the folder."""
    import zmq.auth

    require_curve()
    folder = Path(folder)
    (folder / CLIENTS).mkdir(parents=True, exist_ok=True)
    if not (folder / f"{SERVER}{SECRET_SUFFIX}").exists():
        zmq.auth.create_certificates(folder, SERVER)
    for name in clients:
        if not (folder / f"{name}{SECRET_SUFFIX}").exists():
            zmq.auth.create_certificates(folder, name)
        shutil.copyfile(folder / f"{name}.key", folder / CLIENTS / f"{name}.key")
    for secret in folder.glob(f"*{SECRET_SUFFIX}"):
        secret.chmod(0o600)
    return folder


def load_key(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise InvalidInput(f"CURVE key file {str(path)!r} does not exist (create keys with `stemlink keys init DIR`)", field="curve")
    public, secret_key = zmq.auth.load_certificate(path)
    if secret and secret_key is None:
        raise InvalidInput(f"CURVE key file {str(path)!r} holds no secret key", field="curve")
    return public, secret_key


def client_names(folder: str | os.PathLike) -> list[str]:
    """Names of the client key pairs (NAME.key_secret, not the server's) in `folder`."""
    return sorted(p.name[: -len(SECRET_SUFFIX)] for p in Path(folder).glob(f"*{SECRET_SUFFIX}") if p.name != f"{SERVER}{SECRET_SUFFIX}")


def client_key_file(folder: str | os.PathLike, client_name: str | None = None) -> Path:
    """This client's secret key file in `folder`: `NAME.key_secret` for `client_name` (else
    `$STEMLINK_CLIENT`), or the only client key pair there when no name is given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(
            f"CURVE keys folder {str(folder)!r} does not exist (create it with `stemlink keys init DIR --client NAME`)", field="curve"
        )
    available = client_names(folder)
    listed = ", ".join(available) or "none"
    name = client_name or os.environ.get(ENV_CLIENT) or None
    if name is not None:
        path = folder / f"{name}{SECRET_SUFFIX}"
        if not path.is_file():
            raise InvalidInput(
                f"no CURVE key for client {name!r} in {str(folder)!r} ({path.name} is missing); client keys there: {listed}", field="client"
            )
        return path
    if len(available) == 1:
        return folder / f"{available[0]}{SECRET_SUFFIX}"
    if not available:
        raise InvalidInput(
            f"no client key pair (NAME{SECRET_SUFFIX}) in {str(folder)!r}; create one with `stemlink keys init {folder} --client NAME`",
            field="curve",
        )
    raise InvalidInput(
        f"{str(folder)!r} holds several client keys ({listed}); choose one with --client NAME (client_name=NAME or ${ENV_CLIENT})",
        field="client",
    )


def authorized_keys(folder: str | os.PathLike) -> set[bytes]:
    """The z85 public keys of every `*.key` certificate in `folder` (read now, not cached)."""
    import zmq.auth

    return set(zmq.auth.load_certificates(os.fspath(folder))) if Path(folder).is_dir() else set()


def secure_client(socket: zmq.Socket, folder: str | os.PathLike, client_name: str | None = None) -> Path:
    """Give `socket` (before connect) this client's key pair (see `client_key_file`) and pin
    the server's key. Returns the client's secret key file."""
    require_curve()
    folder = Path(folder)
    key_file = client_key_file(folder, client_name)
    public, secret = load_key(key_file, secret=True)
    server_public, _ = load_key(folder / f"{SERVER}.key", secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
    return key_file


class HandshakeWatch:
    """Waits on a client socket like `socket.poll`, but raises `EngineUnavailable` as soon as
    the engine refuses the connection's handshake (a key it does not accept, CURVE on one side
    only, a different server key), naming the cause instead of timing out."""

    def __init__(self, socket: zmq.Socket, address: str, key_file: Path | None = None, *, also: int = 0, on_event: Any = None):
        # `also`/`on_event`: more monitor events, each passed to `on_event(event)` (a socket has
        # one monitor; stemlink/bridge/liveness.py ConnectionWatch follows connects/disconnects through it)
        self.socket = socket
        self.address = address
        self.key_file = key_file
        self.on_event = on_event
        self.monitor = socket.get_monitor_socket(HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED | also)
        self.no_detail = 0
        self.poller = zmq.Poller()
        self.poller.register(socket, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def poll(self, timeout_ms: int) -> bool:
        """True when `socket` has a message within `timeout_ms`; raises on a refused handshake."""
        from zmq.utils.monitor import recv_monitor_message

        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            events = dict(self.poller.poll(max(0, int((deadline - time.monotonic()) * 1000))))
            if self.monitor in events:
                event = recv_monitor_message(self.monitor)
                if self.on_event is not None:
                    self.on_event(event["event"])
                if self._refused(event["event"]):
                    raise EngineUnavailable(self._reason(event["event"], int(event["value"])), field="curve")
            if self.socket in events:
                return True
            if time.monotonic() >= deadline:
                return False

    def _refused(self, event: int) -> bool:
        """A refusal, not a transient: ZAP said no, or ZMTP failed; a handshake cut short without
        detail counts only for a CURVE client, after `NO_DETAIL_LIMIT` in a row (a server key
        that does not match fails like that on every reconnect; a restarting engine once)."""
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.no_detail = 0
            return False
        if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            self.no_detail += 1
            return self.key_file is not None and self.no_detail >= NO_DETAIL_LIMIT
        return bool(event & (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL))

    def _reason(self, event: int, value: int) -> str:
        where = f"the engine at {self.address}"
        if self.key_file is not None:
            key = f"{self.key_file.with_suffix('.key')}"
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                return (
                    f"{where} refused this client's CURVE key ({key}): it is not among the engine's authorized clients; "
                    f"ask its admin to copy that file into the engine's keys folder {CLIENTS}/"
                )
            if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                return f"{where} does not use CURVE; connect without --curve (or start it with `stemlink serve --curve DIR`)"
            return (
                f"CURVE handshake with {where} failed: {self.key_file.parent / (SERVER + '.key')} is probably not that engine's server key"
            )
        if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return f"{where} requires CURVE authentication; pass --curve DIR (curve=DIR or ${ENV_CURVE}) with keys from its admin"
        return f"handshake with {where} failed (ZMTP error {value:#x}); is it a stemlink engine?"

    def close(self) -> None:
        if not self.monitor.closed:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self.monitor.close(linger=0)
