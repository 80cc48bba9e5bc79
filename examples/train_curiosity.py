"""Train a curiosity agent (PPO + world-model prediction error) on a tdwgym environment.

Writes config.json, checkpoints, TensorBoard logs (curiosity/, world_model/, rollout/), metrics.jsonl, a rollout
video and a training plot to the run folder. Examples::

    python examples/train_curiosity.py --total-steps 20000 --out runs/demo
    python examples/train_curiosity.py --total-steps 20000 --out runs/demo --overwrite   # start runs/demo over
    python examples/train_curiosity.py --curiosity progress --frame-stack 2
    python examples/train_curiosity.py --resume runs/demo          # after an interruption
    tensorboard --logdir runs/demo/tb

A fresh run refuses a folder that already holds a run's checkpoints: resume it with ``--resume`` or start it over
with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys

from tdwgym.commands.door import Parser, run_command
from tdwgym.commands.train import add_parser as add_train_parser


def main(argv: list[str] | None = None) -> int:
    """Parse the ``tdwgym train`` options and run."""
    parser = Parser(prog="tdwgym", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    return run_command(parser, ["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
