"""The door of every command: a parser whose errors are one line with exit status 2, the runner that turns a
command's user error into one line, and the check that an env and its arguments are valid before anything starts.

A user error is one line naming the bad value and the valid ones, with exit status 2
(:class:`~tdwgym.util.errors.UsageError`, :class:`Parser`), raised before any worker starts and before anything is
written. The checks of output folders and files are :func:`tdwgym.util.files.check_output_folder` and
:func:`~tdwgym.util.files.check_output_file` (library code uses them too).
"""

from __future__ import annotations

import argparse
import errno
import inspect
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tdwgym.util.arguments import signature_hints, type_mismatch
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_folder

__all__ = ["Parser", "check_env", "run_command"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``tdwgym train: error: ...``) and exit status 2, and which
    takes options spelled in full only (``--env`` never stands for ``pretrain --envs``, the mix)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        """Print ``message`` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command it names (``args.func(args)``); return its exit status.

    A user error is one line on stderr, ``tdwgym COMMAND: error: ...``, and status 2: a bad option (argparse
    raises ``SystemExit(2)``), or a :class:`UsageError` (or ``ValueError`` / ``FileNotFoundError``) of the command
    (returns 2). A full disk (``ENOSPC`` / ``EDQUOT``) is one line too, with status 1.
    """
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = getattr(args, "command", None)
    prefix = f"{parser.prog}{f' {command}' if command else ''}: error:"
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prefix} {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"{prefix} no space left on the device{where}; nothing partial was kept: free some space and run the "
            "same command again (it resumes where it stopped)",
            file=sys.stderr,
        )
        return 1


def check_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Make the env once (and close it) to refuse a bad id or bad arguments at the door, before workers start: the
    one check of ``--env-kwargs`` every command runs. Names the env's constructor does not take are refused with
    the valid ones; values whose type does not fit the constructor's type hints (``{"level": "1"}``, a float for
    an integer, a string for a list) with the type; values out of the ranges the env declares by its own checks
    when it is made (``level`` 0-3, ``substeps`` up to :data:`~tdwgym.envs.base.MAX_SUBSTEPS`, ...).

    Raises:
        UsageError: One line naming the bad id or argument and the valid ones.
    """
    import gymnasium as gym

    from tdwgym.registration import resolve_env_id

    kwargs = dict(env_kwargs or {})
    try:
        env_id = resolve_env_id(env_id)
        spec = gym.spec(env_id)
    except (ValueError, gym.error.Error) as exc:
        raise UsageError(str(exc)) from None
    if isinstance(spec.entry_point, str):
        module, _, attr = spec.entry_point.partition(":")
        import importlib

        cls = getattr(importlib.import_module(module), attr)
        accepted = _init_params(cls) | {"render_mode"}
        if accepted and not _takes_any_kwargs(cls):
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise UsageError(
                    f"--env-kwargs: {env_id} takes no {', '.join(map(repr, unknown))}; valid arguments are "
                    f"{', '.join(sorted(accepted - {'self'}))}"
                )
        hints = signature_hints(cls)
        for key, value in kwargs.items():
            wants = type_mismatch(hints.get(key, typing.Any), value)
            if wants is not None:
                raise UsageError(f"--env-kwargs: {key} of {env_id} must be {wants}, got {json.dumps(value):.60}")
    from tdwgym.sim.backends import BackendError

    try:
        env = gym.make(env_id, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # the env's own checks: ranges, choices
        reason = str(exc).split(" was raised from the environment creator")[0]  # gymnasium's suffix repeats kwargs
        raise UsageError(f"--env-kwargs {json.dumps(kwargs)} for {env_id}: {reason}") from None
    except BackendError as exc:  # its simulator cannot start here (no TDW build, no network to download one)
        reason = " ".join(str(exc).split())
        raise UsageError(f"--env-kwargs {json.dumps(kwargs)} for {env_id}: {reason}") from None
    env.close()


def _init_params(cls: type) -> set[str]:
    """Keyword arguments accepted by ``cls.__init__`` and the ``__init__`` of every base it forwards to."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
    return names


def _takes_any_kwargs(cls: type) -> bool:
    """Whether the most derived ``__init__`` forwards ``**kwargs`` somewhere this module cannot see (not a base)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return False
    return False


def check_default_output(folder: Path, run: str | None, what: str, instead: str, instead_link: str) -> Path:
    """A command's output folder chosen without ``--out`` (beside the run or model it reads), checked to be writable
    and, with a ``run``, not reached through a link out of it; else one line: ``what`` would go to ``folder``, and
    ``instead`` (``instead_link`` for a link)."""
    try:
        check_output_folder(folder)
    except UsageError as exc:
        raise UsageError(
            f"{what} would go to {folder}, which cannot be written ({str(exc).split(': ', 1)[-1]}); {instead}"
        ) from None
    if run is not None:
        from tdwgym.agents.rundir import RunDir

        RunDir(run).check_writes_inside(folder, option="--run", instead=instead_link)
    return folder
