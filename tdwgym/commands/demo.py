"""``tdwgym demo`` (``make demo``): train, film and evaluate a curiosity agent in one command
(:func:`tdwgym.agents.demo_run.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs
from tdwgym.commands.values import nonnegative_int, positive_int
from tdwgym.util.files import check_output_folder

__all__ = ["EXTRA", "HELP", "add_parser", "run"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "train, film and evaluate a curiosity agent in a few minutes (make demo)"
"""The command's line in ``tdwgym --help``."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym demo`` to an argparse sub-parser collection (sets ``func``)."""
    from tdwgym.agents.demo_run import DemoConfig

    p = subparsers.add_parser(
        "demo",
        help=HELP,
        description="Train a curiosity agent with tdwgym train's defaults, film it with its world model's panels "
        "and push markers (rollout.mp4), and write the training plot, the world model's evaluation report with its "
        "plots (eval/) and a summary (demo.md), all in --out.",
    )
    names = add_config_arguments(
        p,
        DemoConfig,
        exclude=("train_overrides",),
        flags={
            "seed": Flag(type=nonnegative_int),
            "steps": Flag(type=positive_int),
            "size": Flag(type=positive_int),
        },
    )
    p.set_defaults(func=run, config_fields=names)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym demo``: check at the door, then train, film, evaluate."""
    from tdwgym.agents.demo_run import DemoConfig, demo
    from tdwgym.agents.device import check_device

    cfg = DemoConfig(**config_kwargs(args, args.config_fields))
    check_output_folder(cfg.run_dir)
    check_device(cfg.device, "tdwgym demo")
    result = demo(cfg)
    print(result.summary_path.read_text())
    print(f"-> {result.run_dir}")
    return 0
