"""`stemlink keys init DIR [--client NAME ...]`: CURVE keys for remote engines (stemlink/bridge/auth.py).

Creates DIR/server.key(+_secret) and one key pair per client, authorizing each client
(DIR/clients/NAME.key; delete that file to revoke the client, no restart needed).
Run `stemlink serve --bind tcp://0.0.0.0:5555 --curve DIR` on the engine machine; copy
DIR/server.key, DIR/NAME.key and DIR/NAME.key_secret to a workstation and connect with
`Client(addr, curve=DIR)`, `--curve DIR` or `STEMLINK_CURVE=DIR` (the only key pair there is
used; with several, pick one with `client_name=NAME`, `--client NAME` or `STEMLINK_CLIENT`).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="CURVE keys for authenticated remote engines")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    init = actions.add_parser("init", help="create server + client key pairs in DIR")
    init.add_argument("dir", help="keys folder")
    init.add_argument("--client", action="append", default=None, help="client name (repeatable; default: client)")
    init.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stemlink.bridge.auth import init_keys

    clients = tuple(args.client or ["client"])
    folder = init_keys(args.dir, clients)
    print(f"keys in {folder}: server.key (+ secret), authorized clients: {', '.join(clients)}")
    print(
        f"copy {folder}/server.key and {folder}/NAME.key + NAME.key_secret to each client; revoke one by deleting {folder}/clients/NAME.key"
    )
    return 0
