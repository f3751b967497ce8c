"""CLI subcommands: one module per command, each with `register(subparsers)`.

A module registers its parser with `parser.set_defaults(run=<function(args) -> int>)` and
imports heavy dependencies (torch, zmq, pedalboard) inside that function, so `stemlink --help`
stays fast.
"""
