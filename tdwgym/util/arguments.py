"""Checking values given as JSON (``--env-kwargs``, ``--model-kwargs``) against the type hints of the signature
they feed: :func:`type_mismatch` says what a value should be, :func:`signature_hints` reads the hints of a class's
``__init__`` and of every base it forwards to."""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from typing import Any

__all__ = ["describe", "signature_hints", "type_mismatch"]


def _args(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint)


def describe(hint: Any) -> str:
    """A type hint in words, as a JSON user reads it: ``int | tuple[int, int]`` -> ``an integer or a list of 2
    [an integer, an integer]``."""
    origin = typing.get_origin(hint)
    words = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    if hint in words:
        return words[hint]
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(h) for h in _args(hint))
    if origin is tuple:
        args = _args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list (each item {describe(args[0])})"
        return f"a list of {len(args)} [{', '.join(describe(a) for a in args)}]"
    if origin in (list, collections.abc.Sequence):
        return f"a list (each item {describe(_args(hint)[0])})" if _args(hint) else "a list"
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return "a JSON object"
    return str(hint)


def _matches(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as JSON gives it: lists for tuples) fits ``hint``; hints this does not know pass."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(h, value) for h in _args(hint))
    if origin is tuple:
        args = _args(hint)
        if not isinstance(value, list | tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(args[0], v) for v in value)
        return len(value) == len(args) and all(_matches(a, v) for a, v in zip(args, value, strict=True))
    if origin in (list, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            return False
        return not _args(hint) or all(_matches(_args(hint)[0], v) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def type_mismatch(hint: Any, value: Any) -> str | None:
    """What ``value`` should be to fit the type hint ``hint`` (:func:`describe`), or None when it fits (or the hint
    is one this module does not check)."""
    return None if _matches(hint, value) else describe(hint)


def signature_hints(cls: type) -> dict[str, Any]:
    """The type hints of the keyword arguments of ``cls.__init__`` and of the ``__init__`` of every base it forwards
    to (a subclass's hint wins); an ``__init__`` whose annotations do not evaluate adds none."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            names = inspect.signature(init).parameters
            found = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - an annotation that does not evaluate: its names are still checked elsewhere
            continue
        hints.update({k: v for k, v in found.items() if k in names and k not in ("self", "return")})
    return hints
