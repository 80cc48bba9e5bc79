"""``tdwgym compare``: a curiosity agent against a random agent, plain PPO and push-rewarded PPO (the oracle) at the
same budget and seeds (:func:`tdwgym.agents.comparison.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tdwgym.commands.config_options import Flag, add_config_arguments, command_env_kwargs, config_kwargs
from tdwgym.commands.ray_option import add_ray_argument, ray_address
from tdwgym.commands.train import door, train_config, train_flags
from tdwgym.commands.values import nonnegative_float, nonnegative_int, positive_float, positive_int
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_folder

__all__ = ["AGENT_CHOICES", "COMPARE_SETS", "EXTRA", "HELP", "add_parser", "run"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "compare curiosity with random, plain-PPO and push-rewarded (oracle) PPO agents"
"""The command's line in ``tdwgym --help``."""

AGENT_CHOICES = ("random", "ppo", "curiosity", "oracle")
"""Agents of ``tdwgym compare`` (the same as ``tdwgym.agents.comparison.AGENTS``)."""

COMPARE_SETS = (
    "env_id",
    "env_kwargs",
    "curiosity",
    "seed",
    "total_steps",
    "run_dir",
    "video_steps",
    "progress_bar",
    "checkpoint_every",
    "overwrite",
)
""":class:`~tdwgym.agents.training.TrainConfig` fields that ``compare`` sets for every agent itself (the rest are
options)."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare``: curiosity agent vs a random agent, plain PPO and push-rewarded PPO (the oracle) at the same
    budget and seeds."""
    from tdwgym.agents.comparison import CompareConfig
    from tdwgym.agents.training import TrainConfig

    flags = train_flags()
    p = subparsers.add_parser(
        "compare",
        help=HELP,
        description=add_parser.__doc__,
    )
    names = add_config_arguments(
        p,
        CompareConfig,
        exclude=("train_overrides",),
        flags={
            "curiosity": Flag(choices=flags["curiosity"].choices[:-1]),
            "agents": Flag(choices=AGENT_CHOICES),
            "seeds": Flag(type=nonnegative_int),
            "eval_episodes": Flag(type=positive_int),
            "eval_steps": Flag(type=positive_int),
            "out": Flag(metavar="DIR"),
        },
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        default=None,
        help="train nothing: join the results of finished comparisons of the same settings (agents or seeds run "
        "separately) and write one results.json, results.md and plots to --out",
    )
    cluster = p.add_argument_group("on a Ray cluster (docs/distributed.md)")
    add_ray_argument(cluster)
    cluster.add_argument(
        "--cpus-per-run",
        type=positive_float,
        default=None,
        metavar="N",
        help="with --ray: CPUs Ray reserves for each (agent, seed) run; a fraction packs runs onto a CPU (default: 1)",
    )
    cluster.add_argument(
        "--gpus-per-run",
        type=nonnegative_float,
        default=None,
        metavar="N",
        help="with --ray: GPUs Ray reserves for each run; a fraction such as 0.25 shares one GPU between runs "
        "(default: 0, the runs train on CPUs)",
    )
    group = p.add_argument_group("training settings of every agent (TrainConfig)")
    overrides = add_config_arguments(group, TrainConfig, exclude=COMPARE_SETS, flags=flags)
    p.set_defaults(func=run, config_fields=names, train_fields=overrides)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym compare``."""
    from tdwgym.agents.comparison import (
        CompareConfig,
        check_compare_out,
        compare,
        format_table,
        merge_results,
        write_results,
    )
    from tdwgym.util.locks import run_lock

    given = config_kwargs(args, args.config_fields)
    out = check_output_folder(given.get("out", CompareConfig.out))
    per_run = [f"--{n}" for n in ("cpus-per-run", "gpus-per-run") if getattr(args, n.replace("-", "_")) is not None]
    if per_run and args.ray is None:
        raise UsageError(f"{' and '.join(per_run)} only apply with --ray (each run is then a Ray task)")
    if args.merge and args.ray is not None:
        raise UsageError("--merge trains nothing: leave out --ray")
    if args.merge:
        if out.resolve() in {Path(d).resolve() for d in args.merge}:
            raise UsageError(f"--out {out} is one of the --merge folders; give a new one")
        if (out / "results.json").exists() and not given.get("overwrite"):
            raise UsageError(f"--out {out} holds an earlier comparison's results.json; replace it with --overwrite")
        try:
            results = merge_results(args.merge)
        except ValueError as e:
            raise UsageError(str(e)) from None
        with run_lock(out):
            check_compare_out(CompareConfig(out=str(out), overwrite=True))  # never a training run's folder
            write_results(results, out)
        print(format_table(results))
        print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
        return 0
    defaults = CompareConfig()
    given["env_kwargs"] = command_env_kwargs(given, defaults.env_kwargs, args)
    given["agents"] = list(dict.fromkeys(given.get("agents", defaults.agents)))
    overrides = config_kwargs(args, args.train_fields)
    cfg = CompareConfig(**given, train_overrides=overrides)
    door(
        train_config({"env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs, "curiosity": cfg.curiosity, **overrides}),
        "tdwgym compare",
    )
    check_compare_out(cfg)  # before anything starts; again under the lock
    with run_lock(out):
        if args.ray is not None:
            from tdwgym.agents.comparison_ray import compare_on_ray  # imports ray only here

            results = compare_on_ray(
                cfg,
                address=ray_address(args.ray),
                cpus_per_run=args.cpus_per_run if args.cpus_per_run is not None else 1.0,
                gpus_per_run=args.gpus_per_run or 0.0,
            )
        else:
            results = compare(cfg)
    print(format_table(results))
    print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
    return 0
