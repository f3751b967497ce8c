"""The five CURVE cases of issue 10 item 9 against real tcp sockets, one line each.

Runs whichever checkout is imported (old code: `cd /work/before && PYTHONPATH=/work/before python -m
stemlink.apps.bench.curve_cases` needs this file there, so run it as a script path instead).

    python stemlink/apps/bench/curve_cases.py            # new code
    cd /work/before && PYTHONPATH=/work/before python /work/main/engine/bench/curve_cases.py
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

import zmq

import stemlink.bridge
from stemlink.bridge import Client
from stemlink.bridge.auth import init_keys
from stemlink.engine.server import Server, ServerConfig
from stemlink.lab.export.echo import build_echo_export


def main() -> None:
    print("code:", stemlink.bridge.__file__)
    tmp = Path(tempfile.mkdtemp())
    logbuf = io.StringIO()
    h = logging.StreamHandler(logbuf)
    logging.getLogger().addHandler(h)
    logging.getLogger().setLevel(logging.INFO)
    exports = build_echo_export(tmp / "ex", sample_rate=16000, window=4096, delay=5)
    keys = init_keys(tmp / "keys", ("studio-a",))
    server = Server(ServerConfig(bind="tcp://127.0.0.1:*", exports_dir=exports, curve_dir=keys), context=zmq.Context.instance()).start()
    addr = server.address

    def case(name, fn):
        t = time.monotonic()
        try:
            out = fn()
            print(f"{name}: OK {out or ''} ({time.monotonic() - t:.2f} s)")
        except Exception as e:
            print(f"{name}: {type(e).__name__}: {e} ({time.monotonic() - t:.2f} s)")

    def readme():
        with Client(addr, curve=str(keys), timeout=10) as c:
            return f"ping {c.ping():.3f} s"

    case("1 README Client(addr, curve='keys/') after keys init --client studio-a", readme)

    def cli():
        import contextlib

        from stemlink.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(["models", "--engine", addr, "--curve", str(keys), "--client", "studio-a"])
            except SystemExit as e:
                rc = e.code
        return f"rc={rc} {err.getvalue().strip()[-120:]}"

    case("2 stemlink models --engine ADDR --curve DIR --client NAME", cli)

    def revoke():
        with Client(addr, curve=str(keys), client_name="studio-a", timeout=10) as c:
            c.ping()
        (keys / "clients" / "studio-a.key").rename(tmp / "revoked.key")
        try:
            with Client(addr, curve=str(keys), client_name="studio-a", timeout=5) as c:
                c.ping()
                return "STILL SERVED after its key file was removed"
        finally:
            (tmp / "revoked.key").rename(keys / "clients" / "studio-a.key")

    case("3 key removed while the engine runs -> next connection", revoke)

    other = init_keys(tmp / "other", ("mallory",))
    shutil.copyfile(keys / "server.key", other / "server.key")

    def unknown():
        with Client(addr, curve=str(other), client_name="mallory", timeout=5) as c:
            c.ping()

    case("5a unknown client key (timeout 5 s)", unknown)

    def nokeys():
        with Client(addr, timeout=5) as c:
            c.ping()

    case("5b client without CURVE (timeout 5 s)", nokeys)
    time.sleep(0.5)
    refused = [line for line in logbuf.getvalue().splitlines() if "refus" in line.lower() or "denied" in line.lower()]
    print("4 engine log lines about refused handshakes:", refused or "none")
    server.stop()


if __name__ == "__main__":
    main()
