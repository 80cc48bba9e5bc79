"""The ``tdwgym`` command: one subcommand per job, assembled from the command tables of core and agents.

This module is the front door and the only one above every floor of the house: core's commands (``play``,
``dataset``, ``bench``) come from core modules, the agents' (``demo``, ``train``, ``compare``, ``audit``, ``eval``,
``pretrain``, ``record``) from :data:`tdwgym.agents.cli.COMMANDS`. Without the ``agents`` extra the core commands
still work.

    tdwgym record --env occlusion --policy orbit --steps 300 --out runs/demo/rollout.mp4
    tdwgym dataset --env occlusion --split train --level 0 --episodes 100 --frames 64 --out data/occ
    tdwgym bench
"""

from __future__ import annotations

import sys

from tdwgym import __version__
from tdwgym.options import Parser, run_command
from tdwgym.tools.dataset.cli import add_dataset_parser
from tdwgym.tools.keyboard import add_play_parser
from tdwgym.tools.throughput import add_bench_parser

CORE_COMMANDS = (add_play_parser, add_dataset_parser, add_bench_parser)
"""Core's commands, listed after the agents'; one line adds one."""


def build_parser() -> Parser:
    """The full argument parser."""
    try:
        from tdwgym.agents.cli import COMMANDS as AGENT_COMMANDS

        missing = ""
    except ModuleNotFoundError as exc:  # the agents extra is not installed (a module of tdwgym missing is a bug)
        if (exc.name or "").startswith("tdwgym"):
            raise
        AGENT_COMMANDS, missing = (
            (),
            f" (train, eval, record and the other agent commands need pip install 'tdwgym[agents]': {exc})",
        )
    parser = Parser(prog="tdwgym", description=f"Physics scenes as Gymnasium environments.{missing}")
    parser.add_argument("--version", action="version", version=f"tdwgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add in (*AGENT_COMMANDS, *CORE_COMMANDS):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tdwgym`` console script."""
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
