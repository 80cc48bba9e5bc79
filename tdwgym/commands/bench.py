"""``tdwgym bench`` (``make bench``): throughput figures against a floor measured in the same run
(:mod:`tdwgym.tools.throughput`).

    tdwgym bench
    tdwgym bench --steps 2000 --out bench.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs
from tdwgym.commands.values import positive_int
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_file

__all__ = ["EXTRA", "HELP", "BenchCommand", "add_parser", "run"]

EXTRA = None
"""The pip extra the command needs (the vectorized figures need stable-baselines3, from ``tdwgym[agents]``)."""

HELP = "measure env throughput against the bare backend floor"
"""The command's line in ``tdwgym --help``."""


@dataclass
class BenchCommand:
    """What ``tdwgym bench`` measures (one option per field)."""

    steps: int = 1000
    """Steps per timed round (at least 10)."""
    repeats: int = 3
    """Timed rounds; the best is reported."""
    vector: bool = True
    """Also time the 2-process vectorized envs."""
    dataset: bool = True
    """Also time labeled dataset generation."""
    dataset_episodes: int = 12
    """Episodes of 150 frames per dataset round."""
    out: str = "bench.json"
    """Where to write the figures as JSON."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tdwgym bench``."""
    p = subparsers.add_parser("bench", help=HELP)
    names = add_config_arguments(
        p,
        BenchCommand,
        flags={
            "steps": Flag(type=positive_int),
            "repeats": Flag(type=positive_int),
            "dataset_episodes": Flag(type=positive_int),
            "out": Flag(metavar="FILE"),
        },
    )
    p.set_defaults(func=run, config_fields=names)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym bench``."""
    from tdwgym.tools.throughput import format_results
    from tdwgym.tools.throughput import run as measure

    cmd = BenchCommand(**config_kwargs(args, args.config_fields))
    if cmd.steps < 10:
        raise UsageError(f"--steps must be >= 10, got {cmd.steps}")
    out = check_output_file(cmd.out)
    results = measure(
        cmd.steps,
        cmd.repeats,
        include_vector=cmd.vector,
        include_dataset=cmd.dataset,
        dataset_episodes=cmd.dataset_episodes,
    )
    print(format_results(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2, default=float)
    print(f"wrote {out}")
    return 0
