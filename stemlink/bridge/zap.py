"""The engine side of CURVE: a ZAP handler that accepts the client keys in a folder, re-read on
every handshake, and logs every refused handshake (logger `stemlink.bridge.zap`, WARNING).

Kept apart from `stemlink/bridge/auth.py` (keys and the client side) because pyzmq's
`ThreadAuthenticator` imports asyncio, which a client never needs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from stemlink.bridge.auth import CLIENTS, SECRET_SUFFIX, SERVER, authorized_keys, load_key, require_curve
from stemlink.errors import InvalidInput

LOG_REPEAT_S = 10.0  # the same refused peer/key is logged at most once per this many seconds

log = logging.getLogger("stemlink.bridge.zap")


class _RepeatFilter:
    """True the first time a key is seen and again after `LOG_REPEAT_S`; counts what it hid."""

    def __init__(self) -> None:
        self.seen: dict[Any, float] = {}
        self.hidden: dict[Any, int] = {}

    def __call__(self, key: Any) -> tuple[bool, int]:
        now = time.monotonic()
        if now - self.seen.get(key, -LOG_REPEAT_S) < LOG_REPEAT_S:
            self.hidden[key] = self.hidden.get(key, 0) + 1
            return False, 0
        self.seen[key] = now
        if len(self.seen) > 4096:  # a flood of distinct keys must not grow memory
            self.seen = {key: now}
        return True, self.hidden.pop(key, 0)


class CurveAuthenticator(ThreadAuthenticator):
    """ZAP handler accepting the CURVE keys in `folder`, re-read on every handshake."""

    def __init__(self, context: zmq.Context, folder: str | os.PathLike):
        super().__init__(context)
        self.folder = Path(folder)
        self._peer = "?"
        self._once = _RepeatFilter()
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(domain="*", credentials_provider=self)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        self._peer = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"  # the client's IP address
        await super().handle_zap_message(msg)

    def callback(self, domain: str, key: bytes) -> bool:
        """Credentials provider: `key` is the client's z85 public key."""
        try:
            allowed = key in authorized_keys(self.folder)
        except (OSError, ValueError) as exc:  # an unreadable or malformed key file refuses, with the reason logged
            log.error("cannot read the authorized CURVE keys in %s: %s", self.folder, exc)
            allowed = False
        if not allowed:
            first, hidden = self._once(("key", key, self._peer))
            if first:
                more = f" ({hidden} more since last logged)" if hidden else ""
                log.warning(
                    "refused CURVE handshake from %s: client public key %s is not in %s%s",
                    self._peer,
                    key.decode("ascii", "replace"),
                    self.folder,
                    more,
                )
        return allowed

    def watch(self, socket: zmq.Socket) -> None:
        """Log handshakes of `socket` (before bind) that fail before ZAP sees a key: a client
        without CURVE, or one that pinned a different server key. (Handshakes cut short without
        detail are not logged: every plain TCP probe, e.g. discovery's, ends like that.)"""
        monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self._monitor = threading.Thread(target=self._watch, args=(monitor,), name="stemlink-curve-monitor", daemon=True)
        self._monitor.start()

    def _watch(self, monitor: zmq.Socket) -> None:
        from zmq.utils.monitor import recv_monitor_message

        try:
            while not self._monitor_stop.is_set():
                if not monitor.poll(100):
                    continue
                event = recv_monitor_message(monitor)
                if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                    return
                endpoint = event["endpoint"].decode("utf-8", "replace")
                first, hidden = self._once(("protocol", int(event["value"]), endpoint))
                if first:
                    more = f" ({hidden} more since last logged)" if hidden else ""
                    log.warning("refused a connection on %s: %s%s", endpoint, _server_side_reason(int(event["value"])), more)
        except zmq.ZMQError:
            return  # the context is terminating
        finally:
            monitor.close(linger=0)

    def stop(self) -> None:
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join(1.0)
            self._monitor = None
        super().stop()


def _server_side_reason(code: int) -> str:
    if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "the client does not use CURVE (it needs --curve DIR with this engine's server.key)"
    if code == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "CURVE handshake failed (the client pinned a different server key?)"
    return f"CURVE handshake failed (ZMTP protocol error {code:#x})"


def secure_server(socket: zmq.Socket, context: zmq.Context, folder: str | os.PathLike) -> CurveAuthenticator:
    """Make `socket` (before bind) a CURVE server accepting only `folder/clients/*.key`.
    Returns the started authenticator; call `.stop()` after closing the socket."""
    require_curve()
    folder = Path(folder)
    public, secret = load_key(folder / f"{SERVER}{SECRET_SUFFIX}", secret=True)
    if not any((folder / CLIENTS).glob("*.key")):
        raise InvalidInput(f"no authorized client keys in {str(folder / CLIENTS)!r}", field="curve")
    auth = CurveAuthenticator(context, folder / CLIENTS)
    auth.start()
    auth.watch(socket)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return auth
