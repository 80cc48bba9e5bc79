"""The ``tdwgym`` command: one subcommand per job.

    tdwgym rollout --env TDWRoom-Occlusion-v0 --policy random --steps 300 --out runs/demo/rollout.mp4
    tdwgym dataset --scenario occlusion --split train --level 0 --episodes 100 --frames 64 --out data/occ
    tdwgym bench
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tdwgym import __version__
from tdwgym.bench import add_bench_parser
from tdwgym.dataset import add_dataset_parser
from tdwgym.play import add_play_parser
from tdwgym.record import add_record_parser


def _add_rollout_parser(subparsers: Any) -> None:
    from tdwgym.rollout import POLICIES

    p = subparsers.add_parser("rollout", help="record a random or scripted rollout of an env to video")
    p.add_argument("--env", default="TDWRoom-Occlusion-v0", help="Gymnasium id")
    p.add_argument("--policy", default="random", choices=POLICIES, help="who acts")
    p.add_argument("--steps", type=int, default=300, help="env steps to record")
    p.add_argument("--seed", type=int, default=0, help="seed of the scene and the policy")
    p.add_argument("--size", type=int, default=256, help="video frame size in pixels")
    p.add_argument("--out", default="runs/rollout.mp4", help="output .mp4 or .gif")
    p.set_defaults(func=_cmd_rollout)


def _cmd_rollout(args: argparse.Namespace) -> int:
    from tdwgym.rollout import record_rollout

    path = record_rollout(args.env, args.out, steps=args.steps, policy=args.policy, seed=args.seed,
                          render_size=args.size)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="tdwgym", description="Physics scenes as Gymnasium environments.")
    parser.add_argument("--version", action="version", version=f"tdwgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_rollout_parser(sub)
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
