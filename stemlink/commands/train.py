"""`stemlink train FAMILY --preset NAME ...`: train a model family from a training preset.

Every family takes the same options; the family module (`stemlink.lab.train.FAMILY`) is
imported only when the command runs and exposes `main(args) -> int`.
Multi-process (DDP) training: `torchrun --nproc_per_node N -m stemlink train FAMILY ...`.
"""

from __future__ import annotations

import argparse
import importlib


def register(subparsers: argparse._SubParsersAction) -> None:
    from stemlink.lab.train import FAMILIES

    parser = subparsers.add_parser("train", help="train a model family from a preset (presets/train/)")
    families = parser.add_subparsers(dest="family", metavar="FAMILY")
    for family, module_name in FAMILIES.items():
        sub = families.add_parser(family, help=f"train {family}")
        sub.add_argument("--preset", required=True, help="training preset name (presets/train/NAME.toml) or path")
        sub.add_argument("--data", help="corpus folder (overrides the preset's data.root)")
        sub.add_argument("--out", help="run folder for checkpoints and logs (default runs/PRESET)")
        sub.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
        sub.add_argument(
            "--init", metavar="FILE", help="start from these weights (a checkpoint or a shipped export, e.g. exports/msdm-small.pt)"
        )
        sub.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
        sub.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this wall time")
        sub.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        sub.set_defaults(run=_runner(module_name))


def _runner(module_name: str):
    def run(args: argparse.Namespace) -> int:
        from stemlink.errors import StemlinkError

        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise StemlinkError(f"training module {module_name} is not available: {exc}") from exc
        return module.main(args)

    return run
