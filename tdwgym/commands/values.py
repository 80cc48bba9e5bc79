"""The argparse value types of tdwgym's command line: a bad value is one line naming it (and the valid ones)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = [
    "env_id",
    "json_object",
    "nonnegative_float",
    "nonnegative_int",
    "optional",
    "positive_float",
    "positive_int",
]


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


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


MAX_JSON_DEPTH = 8
"""How deep the JSON of ``--env-kwargs`` / ``--model-kwargs`` may nest (no setting of tdwgym nests deeper)."""


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object such as ``'{"level": 1}'``, nested at most :data:`MAX_JSON_DEPTH` deep."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    except RecursionError:
        raise argparse.ArgumentTypeError(
            f"nests deeper than {MAX_JSON_DEPTH} levels (no setting does), got {shown!r}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"level\": 1}}', got {shown!r}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise argparse.ArgumentTypeError(f"nests deeper than {MAX_JSON_DEPTH} levels (no setting does), got {shown!r}")
    return value


def env_id(text: str) -> str:
    """argparse type: an env id or short name (``occlusion``) -> its Gymnasium id."""
    from tdwgym.registration import resolve_env_id

    try:
        return resolve_env_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def optional(kind: Callable[[str], Any], zero_is_none: bool = False) -> Callable[[str], Any]:
    """argparse type: ``kind``, or None for ``none`` (and for ``0`` with ``zero_is_none``)."""

    def parse(text: str) -> Any:
        if text.strip().lower() == "none":
            return None
        value = kind(text)
        return None if zero_is_none and value == 0 else value

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse
