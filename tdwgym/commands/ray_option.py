"""``--ray [ADDRESS]``: the option of the commands that can run on a Ray cluster (``dataset``, ``eval``)."""

from __future__ import annotations

import argparse

__all__ = ["add_ray_argument", "ray_address"]


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
