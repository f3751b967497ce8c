"""Where a client with no address goes: a running local engine if one answers, else embedded.

Order: `$STEMLINK_ENGINE` if set (an address, or "embedded" to force the embedded engine);
otherwise, when no exports folder was chosen (argument or `$STEMLINK_EXPORTS`), a local
`stemlink serve` on the default address if it answers a ping (a plain TCP connect probe
first, so the common no-server case costs about a millisecond); otherwise None, meaning the
client starts an embedded engine. An explicit address never falls back silently.

What discovery trusts: only that *some local process* listens on 127.0.0.1:5555 and answers
a protocol-v1 ping with a pong. It does not authenticate that process (no CURVE key is
checked on loopback, no model hash is compared): anything there, e.g. another user's program
on a shared machine, is treated as our engine and receives the audio of the requests. What
comes back is not trusted: the host checks every result before writing a file
(`stemlink/plugin_host/verify.py`: the stems asked for, each of the region's shape, float32, finite
samples, the provenance fields) and refuses a malformed one with `BadResult`. To rule out a
stranger entirely, set `$STEMLINK_ENGINE` (or `--engine`) to an address you control, or
`embedded`, or run `stemlink serve --curve DIR` and pass `--curve DIR`.
"""

from __future__ import annotations

import os
import socket

import zmq

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
ENV_ENGINE = "STEMLINK_ENGINE"
EMBEDDED = "embedded"


def port_open(host: str, port: int, timeout: float = 0.05) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers_ping(address: str, timeout: float = 1.0, context: zmq.Context | None = None) -> bool:
    """True when a stemlink engine at `address` answers a ping within `timeout` seconds."""
    from stemlink.bridge.protocol import Ping, Pong, decode, encode
    from stemlink.errors import StemlinkError

    with (context or zmq.Context.instance()).socket(zmq.DEALER) as sock:
        sock.linger = 0
        sock.connect(address)
        sock.send_multipart(encode(Ping(id="discover")))
        if not sock.poll(int(timeout * 1000)):
            return False
        try:
            reply = decode(sock.recv_multipart(), "reply")
            return isinstance(reply, Pong) and reply.id == "discover"  # an answer to this ping, not any pong
        except StemlinkError:
            return False


def discover(exports_dir: object = None, context: zmq.Context | None = None, *, address: str = DEFAULT_ADDRESS) -> str | None:
    """The engine address a client with no address should use, or None for embedded.

    `address`: the local tcp address probed (default `DEFAULT_ADDRESS`).
    """
    env = os.environ.get(ENV_ENGINE, "").strip()
    if env:
        return None if env == EMBEDDED else env
    if exports_dir is not None or os.environ.get("STEMLINK_EXPORTS"):
        return None
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if port_open(host, int(port)) and answers_ping(address, context=context):
        return address
    return None
