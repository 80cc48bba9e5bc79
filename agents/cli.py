"""``tdwgym train`` and ``tdwgym compare``: argparse sub-commands for tdwgym's CLI.

Hook them into the main parser with::

    from tdwgym.agents.cli import add_compare_parser, add_train_parser
    add_train_parser(subparsers)
    add_compare_parser(subparsers)
    ...
    args = parser.parse_args(argv)
    return args.func(args)   # each sub-command sets ``func``

Both import torch and stable-baselines3 only when run, so ``tdwgym --help`` works without the ``agents`` extra.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

VARIANT_CHOICES = ("pixel", "latent", "rnd", "icm", "progress", "none")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-id", default="TDWRoom-Occlusion-v0", help="environment id (default: %(default)s)")
    p.add_argument(
        "--env-kwargs", type=json.loads, default={}, help="JSON dict of env kwargs, e.g. '{\"resolution\": 64}'"
    )
    p.add_argument(
        "--total-steps",
        type=int,
        default=None,
        help="environment steps (default: 20000; with --resume: raise the run's budget)",
    )
    p.add_argument("--n-envs", type=int, default=4, help="parallel environments (default: %(default)s)")
    p.add_argument("--vec-env", choices=("subproc", "dummy"), default="subproc", help="VecEnv kind")
    p.add_argument("--frame-stack", type=int, default=1, help="frames stacked for the policy (default: 1)")
    p.add_argument("--n-steps", type=int, default=128, help="PPO rollout length per env (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, help="PPO minibatch size (default: %(default)s)")
    p.add_argument("--n-epochs", type=int, default=4, help="PPO epochs per rollout (default: %(default)s)")
    p.add_argument("--int-coef", type=float, default=1.0, help="intrinsic reward weight (default: %(default)s)")
    p.add_argument("--context-frames", type=int, default=2, help="world-model context frames k (default: 2)")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda")


def _train_config(args: argparse.Namespace, **extra: Any):
    from tdwgym.agents.train import TrainConfig

    return TrainConfig(
        env_id=args.env_id,
        env_kwargs=args.env_kwargs,
        total_steps=args.total_steps or 20_000,
        n_envs=args.n_envs,
        vec_env=args.vec_env,
        frame_stack=args.frame_stack,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        int_coef=args.int_coef,
        context_frames=args.context_frames,
        device=args.device,
        **extra,
    )


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``train``: PPO with a curiosity reward; writes config, checkpoints, TensorBoard logs, video and plot."""
    p = subparsers.add_parser(
        "train", help="train a curiosity agent (PPO + world-model reward)", description=add_train_parser.__doc__
    )
    _add_common(p)
    p.add_argument("--curiosity", choices=VARIANT_CHOICES, default="pixel", help="intrinsic reward (default: pixel)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--out", "--run-dir", dest="run_dir", default="runs/curiosity", help="run folder")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run")
    p.add_argument("--checkpoint-every", type=int, default=5_000, help="steps between checkpoints")
    p.add_argument("--video-steps", type=int, default=300, help="steps of the final rollout video (0: none)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_train)
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run ``tdwgym train``."""
    from tdwgym.agents.train import train

    cfg = _train_config(
        args,
        curiosity=args.curiosity,
        seed=args.seed,
        run_dir=args.run_dir,
        checkpoint_every=args.checkpoint_every,
        video_steps=args.video_steps,
        progress_bar=not args.no_progress,
    )
    if args.resume:
        # only the budget can change on resume (raise it with --total-steps); the rest comes from config.json
        cfg = dataclasses.replace(cfg, total_steps=args.total_steps or 0)
    result = train(cfg, resume=args.resume)
    print(f"trained {result.num_timesteps} steps in {result.wall_time_s:.1f} s -> {result.run_dir}")
    if result.video_path:
        print(f"video: {result.video_path}")
    if result.plot_path:
        print(f"plot:  {result.plot_path}")
    return 0


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare``: curiosity agent vs a random agent and plain PPO at the same budget and seeds."""
    p = subparsers.add_parser(
        "compare", help="compare curiosity with random and plain-PPO agents", description=add_compare_parser.__doc__
    )
    _add_common(p)
    p.add_argument("--curiosity", choices=VARIANT_CHOICES[:-1], default="pixel", help="curiosity variant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--eval-episodes", type=int, default=3, help="held-out episodes per agent and seed")
    p.add_argument("--eval-steps", type=int, default=300, help="steps per held-out episode")
    p.add_argument("--out", default="runs/compare", help="output folder (results.json, results.md)")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args: argparse.Namespace) -> int:
    """Run ``tdwgym compare``."""
    from tdwgym.agents.compare import CompareConfig, compare, format_table

    tcfg = _train_config(args)
    overrides = {
        f.name: getattr(tcfg, f.name)
        for f in dataclasses.fields(tcfg)
        if f.name
        in (
            "env_id",
            "env_kwargs",
            "n_envs",
            "vec_env",
            "frame_stack",
            "n_steps",
            "batch_size",
            "n_epochs",
            "int_coef",
            "context_frames",
            "device",
        )
    }
    cfg = CompareConfig(
        total_steps=tcfg.total_steps,
        seeds=args.seeds,
        curiosity=args.curiosity,
        eval_episodes=args.eval_episodes,
        eval_steps=args.eval_steps,
        out=args.out,
        train_overrides=overrides,
    )
    results = compare(cfg)
    print(format_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m tdwgym.agents.cli train ...``)."""
    parser = argparse.ArgumentParser(prog="tdwgym-agents")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_compare_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
