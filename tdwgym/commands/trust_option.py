"""``--trust-pickles``: the option of the commands that read a stored agent (``train --resume``, ``eval``,
``record``, ``dataset``). Without it an agent is rebuilt from its settings and weights, and nothing in a file runs
(:mod:`tdwgym.agents.agent_zip`); with it stable-baselines3's ``PPO.load`` unpickles the file."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from tdwgym.tools.policies import TRUST_PICKLES_ENV

__all__ = ["add_trust_pickles_argument", "trusting_pickles"]


def add_trust_pickles_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--trust-pickles``; :func:`apply_trust_pickles` acts on it."""
    parser.add_argument(
        "--trust-pickles",
        action="store_true",
        help="load stored agents with stable-baselines3's PPO.load, which unpickles the .zip and so runs any code "
        "it holds: only for files from someone you trust (by default an agent is rebuilt from its settings and "
        "weights, and nothing in the file runs)",
    )


@contextlib.contextmanager
def trusting_pickles(args: argparse.Namespace) -> Iterator[bool]:
    """With ``--trust-pickles``, ``$TDWGYM_TRUST_PICKLES=1`` for the block (this process and the workers it starts),
    restored after; yields the flag."""
    trusted = bool(getattr(args, "trust_pickles", False))
    before = os.environ.get(TRUST_PICKLES_ENV)
    if trusted:
        os.environ[TRUST_PICKLES_ENV] = "1"
    try:
        yield trusted
    finally:
        if trusted:
            if before is None:
                os.environ.pop(TRUST_PICKLES_ENV, None)
            else:
                os.environ[TRUST_PICKLES_ENV] = before
