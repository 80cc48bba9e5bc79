"""Old option spellings that keep working for one release, with a message on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_deprecated"]


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
