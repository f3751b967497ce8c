"""Start an engine when none runs, and connect a `Client` to it.

    from stemlink.launcher import connect

    with connect() as client:                      # a local engine if one answers, else an embedded one
        result = client.separate(mix, 44100)

The bridge's `Client` only connects (`stemlink/bridge/client.py`); this module is the one place
that starts engines for clients, as jupyter_client's `KernelManager` starts the kernel its
`KernelClient` talks to. `connect(address)` with an address connects to it and never starts
anything. With none, `stemlink.bridge.discovery.discover` picks `$STEMLINK_ENGINE` (an
address, or "embedded"), or a local `stemlink serve` that answers a ping (skipped when an
exports folder is chosen: argument or `$STEMLINK_EXPORTS`); otherwise an embedded engine is
started (`embedded="inproc"`: a thread of this process over inproc://; `"process"`: a child
`stemlink serve` over ipc://). The client owns that engine: it watches it while it waits for
a job and stops it on `close()`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zmq

    from stemlink.bridge.client import Client


def connect(
    address: str | None = None,
    *,
    exports_dir: str | os.PathLike | None = None,
    embedded: str = "inproc",
    discover_engine: bool = True,
    context: zmq.Context | None = None,
    **client_options: Any,
) -> Client:
    """A `Client` connected to `address`, a discovered engine, or an embedded one started here.

    `discover_engine=False`: with no address, start an embedded engine without looking for a
    running one. `client_options` go to `Client` (timeout, heartbeat_timeout, curve,
    client_name, keepalive, connect_timeout). Raises `EngineUnavailable` when the embedded
    engine does not start, `InvalidInput` for an unknown `embedded` transport.
    """
    from stemlink.bridge.client import Client
    from stemlink.bridge.discovery import discover

    if address is None and discover_engine:
        address = discover(exports_dir, context)
    if address is not None:
        return Client(address, context=context, **client_options)
    from stemlink.engine.server.embedded import Engine

    engine = Engine.start_embedded(exports_dir, transport=embedded, context=context)
    try:
        return Client(engine.address, context=engine.context, engine=engine, **client_options)
    except BaseException:
        engine.stop()
        raise
