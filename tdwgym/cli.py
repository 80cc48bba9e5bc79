"""The ``tdwgym`` command: one subcommand per job.

tdwgym record --env TDWRoom-Occlusion-v0 --policy random --steps 300 --out runs/demo/rollout.mp4
tdwgym dataset --scenario occlusion --split train --level 0 --episodes 100 --frames 64 --out data/occ
tdwgym bench
"""

from __future__ import annotations

import argparse
import sys

from tdwgym import __version__
from tdwgym.agents.cli import add_audit_parser, add_compare_parser, add_eval_parser, add_train_parser
from tdwgym.agents.pretrain import add_pretrain_parser
from tdwgym.agents.record import add_record_parser
from tdwgym.bench import add_bench_parser
from tdwgym.dataset_cli import add_dataset_parser
from tdwgym.play import add_play_parser


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="tdwgym", description="Physics scenes as Gymnasium environments.")
    parser.add_argument("--version", action="version", version=f"tdwgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(sub)
    add_compare_parser(sub)
    add_audit_parser(sub)
    add_eval_parser(sub)
    add_pretrain_parser(sub)
    add_record_parser(sub)
    add_play_parser(sub)
    add_dataset_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tdwgym`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"tdwgym {args.command}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
