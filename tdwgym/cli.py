"""The ``tdwgym`` command: the front door, one subcommand per module of :mod:`tdwgym.commands`.

This module builds the parser from :data:`tdwgym.commands.COMMANDS` (each command's ``add_parser``) and runs the
command. A command whose extra is not installed (``train`` without ``tdwgym[agents]``) stays listed, and running it
is one line naming the pip command, with exit status 2; the others work.

    tdwgym record --env occlusion --policy orbit --steps 300 --out runs/demo/rollout.mp4
    tdwgym dataset --env occlusion --split train --level 0 --episodes 100 --frames 64 --out data/occ
    tdwgym bench
"""

from __future__ import annotations

import importlib
import sys

from tdwgym import __version__
from tdwgym.commands import COMMANDS
from tdwgym.commands.door import Parser, run_command

__all__ = ["build_parser", "main"]


def build_parser() -> Parser:
    """The full argument parser (``parser.missing_extras``: command -> the one-line error of a missing extra)."""
    parser = Parser(prog="tdwgym", description="Physics scenes as Gymnasium environments.")
    parser.add_argument("--version", action="version", version=f"tdwgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    missing: dict[str, str] = {}
    for name in COMMANDS:
        module = importlib.import_module(f"tdwgym.commands.{name}")
        try:
            module.add_parser(sub)
        except ModuleNotFoundError as exc:  # its extra is not installed (a module of tdwgym missing is a bug)
            if (exc.name or "").startswith("tdwgym"):
                raise
            pip = f"pip install 'tdwgym[{module.EXTRA}]'" if module.EXTRA else "pip install tdwgym"
            missing[name] = f"tdwgym {name}: error: this command needs {pip} ({exc})"
            sub.add_parser(name, help=f"(needs {pip})", add_help=False)
    if missing:
        names = ", ".join(missing)
        parser.description += f" ({names} need pip install 'tdwgym[agents]')"
    parser.missing_extras = missing  # type: ignore[attr-defined]
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command an argument list names (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tdwgym`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    error = parser.missing_extras.get(_command_of(argv) or "")  # type: ignore[attr-defined]
    if error:
        print(error, file=sys.stderr)
        return 2
    return run_command(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
