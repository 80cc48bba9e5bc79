"""The one function that makes a command's options from its config dataclass, in the shared words of tdwgym's
command line.

Every command's options come from a config dataclass (:func:`add_config_arguments`): one option per field, its help
the first sentence of the field's docstring and its real default. The vocabulary is the same in every command
(``docs/design.md``, "Command-line vocabulary"):

- ``--env`` (an id or a short name such as ``occlusion``), ``--level``, ``--split``, ``--env-kwargs`` wherever an
  env is made;
- ``--total-steps`` for training budgets, ``--steps`` for rollout lengths;
- ``--seed`` (``--seeds`` where a list is natural), ``--out``, ``--device``, ``--no-progress``, ``--ray``.

A user error is one line naming the bad value and the valid ones, with exit status 2
(:class:`~tdwgym.util.errors.UsageError`, :class:`~tdwgym.commands.door.Parser`), raised before any worker starts
and before anything is written.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from tdwgym.commands.values import env_id, json_object, optional, positive_int
from tdwgym.util.errors import UsageError

__all__ = [
    "STANDARD_FLAGS",
    "Flag",
    "add_config_arguments",
    "add_env_level_split",
    "command_env_kwargs",
    "config_kwargs",
    "env_kwargs_with",
    "field_docs",
]


@dataclasses.dataclass(frozen=True)
class Flag:
    """How one config field appears on the command line (anything left None comes from the field)."""

    flag: str | None = None
    """The option, e.g. ``"--env"`` (default: ``--field-name``)."""
    type: Callable[[str], Any] | None = None
    """argparse type (default: from the field's annotation)."""
    choices: Sequence[Any] | None = None
    """Valid values."""
    help: str | None = None
    """Help text (default: the first sentence of the field's docstring)."""
    metavar: str | None = None
    """Metavariable in the usage line."""
    zero_is_none: bool = False
    """For ``int | None`` fields: ``0`` also means None."""


STANDARD_FLAGS: dict[str, Flag] = {
    "env_id": Flag("--env", type=env_id, metavar="ENV"),
    "env_kwargs": Flag("--env-kwargs", type=json_object, metavar="JSON"),
    "run_dir": Flag("--out", metavar="DIR"),
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
                kwargs["type"] = optional(base, spec.zero_is_none) if nullable else base
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


def command_env_kwargs(given: dict[str, Any], defaults: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The env arguments of a command: ``--env-kwargs`` if given, else the command's defaults, with ``--level`` and
    ``--split`` over them (a default the command line sets otherwise gives way; a given ``--env-kwargs`` that
    disagrees with ``--level`` is an error)."""
    if "env_kwargs" in given:
        return env_kwargs_with(given["env_kwargs"], args)
    base = {k: v for k, v in defaults.items() if k not in ("level", "split") or getattr(args, k, None) is None}
    return env_kwargs_with(base, args)
