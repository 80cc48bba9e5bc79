"""The ``tdwgym`` command: the front door, one subcommand per module of :mod:`tdwgym.commands`.

This module builds the parser from :data:`tdwgym.commands.COMMANDS` (each command's ``add_parser``) and runs the
command. Only the command being run gets its full parser: ``tdwgym --help`` lists every command by its one-line
``HELP`` without importing torch or stable-baselines3. A command whose extra is not installed (``train`` without
``tdwgym[agents]``) stays listed, and running it is one line naming the pip command, with exit status 2; the others
work.

    tdwgym record --env occlusion --policy orbit --steps 300 --out runs/demo/rollout.mp4
    tdwgym dataset --env occlusion --split train --level 0 --episodes 100 --steps 64 --out data/occ
    tdwgym bench
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable

from tdwgym import __version__
from tdwgym.commands import COMMANDS, EXTRA_MODULES
from tdwgym.commands.door import Parser, run_command

__all__ = ["build_parser", "main"]


def _installed(extra: str | None) -> bool:
    """Whether the modules of a pip extra import (a cheap look-up: nothing is imported)."""
    for name in EXTRA_MODULES.get(extra or "", ()):
        if sys.modules.get(name, ...) is None:  # blocked, as a test does to stand for a missing package
            return False
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _pip(extra: str | None) -> str:
    return f"pip install 'tdwgym[{extra}]'" if extra else "pip install tdwgym"


def build_parser(full: Iterable[str] | None = None) -> Parser:
    """The argument parser (``parser.missing_extras``: command -> the one-line error of a missing extra).

    Args:
        full: The commands whose options are built (default: every command). The others are listed with their
            one-line help only, which needs none of their imports.
    """
    full = set(COMMANDS if full is None else full)
    parser = Parser(prog="tdwgym", description="Physics scenes as Gymnasium environments.")
    parser.add_argument("--version", action="version", version=f"tdwgym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    missing: dict[str, str] = {}
    for name in COMMANDS:
        module = importlib.import_module(f"tdwgym.commands.{name}")
        error = None
        if name in full:
            try:
                module.add_parser(sub)
                continue
            except ModuleNotFoundError as exc:  # its extra is not installed (a module of tdwgym missing is a bug)
                if (exc.name or "").startswith("tdwgym"):
                    raise
                error = f"tdwgym {name}: error: this command needs {_pip(module.EXTRA)} ({exc})"
        elif not _installed(module.EXTRA):
            error = f"tdwgym {name}: error: this command needs {_pip(module.EXTRA)}"
        if error:
            missing[name] = error
            sub.add_parser(name, help=f"(needs {_pip(module.EXTRA)}) {module.HELP}", add_help=False)
        else:
            sub.add_parser(name, help=module.HELP, add_help=False)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    parser = build_parser(full=[command] if command in COMMANDS else [])
    error = parser.missing_extras.get(command or "")  # type: ignore[attr-defined]
    if error:
        print(error, file=sys.stderr)
        return 2
    return run_command(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
