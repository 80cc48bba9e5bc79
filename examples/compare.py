"""Compare a curiosity agent with a random agent, PPO without intrinsic reward and the oracle (PPO paid for every push
that moves an object), at the same budget and seeds.

Reports pushes that moved an object per 1,000 steps, the fraction of frames with an object in view, and each
agent's world-model prediction error on held-out episodes (beside a copy-last-frame baseline). The default
environment is TDWRoom-Playroom-v0 at level 1 with a 20-degree push cone (objects at rest within a push's reach).
Examples::

    python examples/compare.py --total-steps 15000 --seeds 0 1 --out runs/compare
    python examples/compare.py --env TDWRoom-Occlusion-v0 --env-kwargs '{"level": 0}' --out runs/compare_occ
"""

from __future__ import annotations

import argparse
import sys

from tdwgym.commands.compare import add_parser as add_compare_parser
from tdwgym.commands.door import Parser, run_command


def main(argv: list[str] | None = None) -> int:
    """Parse the ``tdwgym compare`` options and run."""
    parser = Parser(prog="tdwgym", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_compare_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    return run_command(parser, ["compare", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
