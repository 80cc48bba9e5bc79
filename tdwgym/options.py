"""The shared words of tdwgym's command line, and the one function that makes a command's options from its config.

Every command's options come from a config dataclass (:func:`add_config_arguments`): one option per field, its help
the first sentence of the field's docstring and its real default. The vocabulary is the same in every command
(``../shared/design.md``, "CLI vocabulary"):

- ``--env`` (an id or a short name such as ``occlusion``), ``--level``, ``--split``, ``--env-kwargs`` wherever an
  env is made;
- ``--total-steps`` for training budgets, ``--steps`` for rollout lengths;
- ``--seed`` (``--seeds`` where a list is natural), ``--out``, ``--device``, ``--no-progress``, ``--ray``.

Old spellings keep working for one release through :func:`add_deprecated`, with a message on stderr. A user error
is one line naming the bad value and the valid ones, with exit status 2 (:class:`UsageError`, :class:`Parser`),
raised before any worker starts and before anything is written.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import errno
import inspect
import json
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "STANDARD_FLAGS",
    "Flag",
    "Parser",
    "UsageError",
    "add_config_arguments",
    "add_deprecated",
    "add_ray_argument",
    "check_env",
    "config_kwargs",
    "env_id",
    "env_kwargs_with",
    "field_docs",
    "json_object",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "ray_address",
    "run_command",
]


class UsageError(ValueError):
    """A user error on the command line: the ``tdwgym`` command prints its message as one line and exits with 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``tdwgym train: error: ...``) and exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        """Print ``message`` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------------------------------------ value types


def _int_at_least(text: str, low: int, words: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {words}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a zero or negative budget is an error, not a default)."""
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object such as ``'{"level": 1}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"level\": 1}}', got {text!r}")
    return value


def env_id(text: str) -> str:
    """argparse type: an env id or short name (``occlusion``) -> its Gymnasium id."""
    from tdwgym.registration import resolve_env_id

    try:
        return resolve_env_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _optional(kind: Callable[[str], Any], zero_is_none: bool = False) -> Callable[[str], Any]:
    """argparse type: ``kind``, or None for ``none`` (and for ``0`` with ``zero_is_none``)."""

    def parse(text: str) -> Any:
        if text.strip().lower() == "none":
            return None
        value = kind(text)
        return None if zero_is_none and value == 0 else value

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


# ---------------------------------------------------------------------------------------- options from configs


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one config field appears on the command line (anything left None comes from the field)."""

    flag: str | None = None
    """The option, e.g. ``"--env"`` (default: ``--field-name``)."""
    deprecated: tuple[str, ...] = ()
    """Old spellings that still work for one release, with a message on stderr."""
    type: Callable[[str], Any] | None = None
    """argparse type (default: from the field's annotation)."""
    choices: Sequence[Any] | None = None
    """Valid values."""
    help: str | None = None
    """Help text (default: the first sentence of the field's docstring)."""
    metavar: str | None = None
    """Metavariable in the usage line."""
    zero_is_none: bool = False
    """For ``int | None`` fields: ``0`` also means None (an older spelling)."""


STANDARD_FLAGS: dict[str, Flag] = {
    "env_id": Flag("--env", deprecated=("--env-id",), type=env_id, metavar="ENV"),
    "env_kwargs": Flag("--env-kwargs", type=json_object, metavar="JSON"),
    "run_dir": Flag("--out", deprecated=("--run-dir",), metavar="DIR"),
    "total_steps": Flag(type=positive_int),
    "progress_bar": Flag("--progress"),
}
"""The vocabulary's spelling of config fields whose names say something else (``env_id`` is ``--env``)."""

_RST = [
    (re.compile(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`"), r"\1"),  # :func:`~a.b.c` -> c
    (re.compile(r"``([^`]+)``"), r"\1"),
]


def _plain(text: str) -> str:
    for pattern, repl in _RST:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def _first_sentence(text: str) -> str:
    """The first sentence of a docstring (after a one-word tag such as ``Generation.``), as plain text."""
    text = _plain(text)
    depth = 0
    for i, ch in enumerate(text):  # a full stop outside brackets, followed by a space or the end
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch != "." or depth > 0 or (i + 1 < len(text) and text[i + 1] != " "):
            continue
        if text[max(0, i - 3) : i + 1] in ("e.g.", "i.e.") or text[max(0, i - 2) : i + 1] == "vs.":
            continue
        if " " not in text[:i].strip():  # a one-word tag: the sentence after it
            rest = _first_sentence(text[i + 1 :])
            return rest or text[: i + 1]
        return text[: i + 1]
    return text


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (and of its dataclass bases), read from the source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for a, b in zip(body, body[1:], strict=False):
            if (
                isinstance(a, ast.AnnAssign)
                and isinstance(a.target, ast.Name)
                and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant)
                and isinstance(b.value.value, str)
            ):
                docs[a.target.id] = b.value.value
    return docs


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (dict, list)) and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, dict) else " ".join(map(str, value))
    return str(value)


def _kind(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without ``None``, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), len(args) < len(typing.get_args(annotation))
    return annotation, False


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    flags: dict[str, Flag] | None = None,
    defaults: dict[str, Any] | None = None,
    level_split: Sequence[str] = ("level", "split"),
) -> list[str]:
    """Add one option per field of the dataclass ``cls`` (one help line each, with the real default).

    An option the user leaves out is absent from the parsed namespace (``argparse.SUPPRESS``), so that
    :func:`config_kwargs` returns only what was given and the config keeps its own defaults. ``bool`` fields become
    ``--name/--no-name``; ``X | None`` fields take ``none``; ``list`` fields take several values; ``dict`` fields
    take a JSON object.

    Args:
        parser: The (sub-)parser or argument group.
        cls: The config dataclass.
        only: The fields to add (default: all), in this order.
        exclude: Fields to leave out.
        flags: Per-field spelling, over :data:`STANDARD_FLAGS`.
        defaults: Defaults to show instead of the dataclass's (when the command sets the field itself).
        level_split: After an ``env_kwargs`` field, add these of ``--level`` and ``--split`` (see
            :func:`env_kwargs_with`).

    Returns:
        The names of the fields added.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    names = [n for n in (only if only is not None else by_name) if n not in exclude]
    added = []
    for name in names:
        f = by_name[name]
        spec = {**STANDARD_FLAGS, **(flags or {})}.get(name, Flag())
        option = spec.flag or "--" + name.replace("_", "-")
        default = (defaults or {}).get(name, _default(f))
        kind, nullable = _kind(hints.get(name, str))
        help_text = spec.help if spec.help is not None else _first_sentence(docs.get(name, ""))
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            shown = "on" if default else "off"
        else:
            origin = typing.get_origin(kind)
            if origin in (list, tuple, Sequence) or kind in (list, tuple):
                item = (typing.get_args(kind) or (str,))[0]
                kwargs["nargs"] = "+"
                kwargs["type"] = spec.type or (item if item in (int, float) else str)
            elif origin is dict or kind is dict:
                kwargs["type"] = spec.type or json_object
            else:
                base = spec.type or (kind if kind in (int, float) else str)
                kwargs["type"] = _optional(base, spec.zero_is_none) if nullable else base
            if spec.choices is not None:
                kwargs["choices"] = list(spec.choices)
                kwargs["metavar"] = spec.metavar or "{" + ",".join(map(str, spec.choices)) + "}"
            elif spec.metavar:
                kwargs["metavar"] = spec.metavar
            shown = _show(default) if default is not dataclasses.MISSING else ""
        if "(default:" not in help_text:
            help_text = f"{help_text} (default: {shown})" if shown else f"{help_text} (required)"
        kwargs["help"] = help_text.replace("%", "%%").strip()
        parser.add_argument(option, **kwargs)
        for old in spec.deprecated:
            add_deprecated(parser, old, option, **{k: v for k, v in kwargs.items() if k != "help"})
        added.append(name)
        if name == "env_kwargs" and level_split:
            add_env_level_split(parser, split="split" in level_split)
    return added


def config_kwargs(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The fields among ``names`` that the command line gave (see :func:`add_config_arguments`)."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def env_kwargs_with(env_kwargs: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``env_kwargs`` with the ``--level`` and ``--split`` the command line gave.

    Raises:
        UsageError: ``--env-kwargs`` sets the same key to another value.
    """
    out = dict(env_kwargs)
    for key in ("level", "split"):
        value = getattr(args, key, None)
        if value is None:
            continue
        if key in out and out[key] != value:
            raise UsageError(f"--{key} {value} and --env-kwargs '{{\"{key}\": {json.dumps(out[key])}}}' disagree")
        out[key] = value
    return out


def add_env_level_split(parser: argparse.ArgumentParser | argparse._ArgumentGroup, split: bool = True) -> None:
    """Add ``--level`` and ``--split`` (read them into the env's arguments with :func:`env_kwargs_with`).

    Args:
        parser: The command's parser.
        split: Add ``--split`` too (not for commands that choose the splits themselves).
    """
    from tdwgym.envs.factors import LEVELS, SPLITS

    parser.add_argument(
        "--level", type=int, choices=list(LEVELS), default=None, help="difficulty level (default: the env's own)"
    )
    if split:
        parser.add_argument(
            "--split",
            choices=list(SPLITS),
            default=None,
            help="factor split the scenes are drawn from (default: the env's own, train)",
        )


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


# ------------------------------------------------------------------------------------------- deprecated spellings


class _Deprecated(argparse.Action):
    """Stores like the option it stands for, after a deprecation message on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", store: Any = None, **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.store = new, store

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None):
        print(
            f"{parser.prog}: warning: {option or self.dest} is deprecated and goes in the next release; use {self.new}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, self.store if self.nargs == 0 else values)


def add_deprecated(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, new: str, **kwargs: Any
) -> None:
    """Keep ``old`` working as a hidden alias of ``new`` for one release, with a message on stderr.

    Args:
        parser: Where ``new`` was added.
        old: The old spelling (an option such as ``--env-id``).
        new: What to use instead (named in the message).
        **kwargs: ``new``'s ``dest``, ``type``, ``nargs``, ``choices``, ``default``; ``action`` of a flag
            (``store_true``, ``BooleanOptionalAction``) is replaced by storing True.
    """
    action = kwargs.pop("action", None)
    kwargs.pop("metavar", None)
    if action is not None:
        kwargs = {"dest": kwargs["dest"], "default": kwargs.get("default"), "nargs": 0, "store": True}
    parser.add_argument(old, action=_Deprecated, new=new, help=argparse.SUPPRESS, **kwargs)


# ----------------------------------------------------------------------------------------------- door checks


def check_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Make the env once (and close it) to refuse a bad id or bad arguments at the door, before workers start.

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
    try:
        env = gym.make(env_id, **kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"--env-kwargs {json.dumps(kwargs)} for {env_id}: {exc}") from None
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


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be one (before anything is written): an existing file, a path under a
    file, or a folder this user cannot write in.

    Raises:
        UsageError: Naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {path} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output file that cannot be written (before anything is): an existing folder, or a parent that
    cannot be a folder or is not writable.

    Raises:
        UsageError: Naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {path} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")
    return path


# ------------------------------------------------------------------------------------------------------- Ray


def add_ray_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--ray [ADDRESS]`` to a sub-command's parser; read it back with :func:`ray_address`.

    Absent, ``args.ray`` is None (run locally); ``--ray`` alone gives ``""`` (Ray's default discovery).
    """
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (pip install 'tdwgym[ray]'). Without ADDRESS: $RAY_ADDRESS, else the cluster `ray start` "
        "started on this machine, else a new local Ray instance; 'auto': an existing cluster only; "
        "'ray://HOST:10001': a remote cluster through Ray Client. The output directory must be on a file system "
        "shared by every node, at the same path. See docs/distributed.md",
    )


def ray_address(value: str | None) -> str | None:
    """The ``ray.init`` address of a parsed ``--ray`` value (``""`` -> None)."""
    return value or None
