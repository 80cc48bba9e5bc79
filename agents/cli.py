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
import sys
from pathlib import Path
from typing import Any

VARIANT_CHOICES = ("pixel", "latent", "recurrent", "jepa", "rnd", "icm", "progress", "none")
AGENT_CHOICES = ("random", "ppo", "curiosity", "oracle")
AUDIT_CHOICES = ("random", "seek30", "seek", "spin")
"""Policies of ``tdwgym audit`` (the same as ``tdwgym.agents.audit.AUDIT_POLICIES``)."""
"""Agents of ``tdwgym compare`` (the same as ``tdwgym.agents.compare.AGENTS``, without importing torch here)."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a zero or negative budget is an error at the door, not a default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``compare``; an option left out keeps ``TrainConfig``'s default."""
    p.add_argument(
        "--env-id",
        default=None,
        help="environment id (default: TDWRoom-Occlusion-v0 for train, TDWRoom-Playroom-v0 for compare)",
    )
    p.add_argument(
        "--env-kwargs",
        type=json.loads,
        default=None,
        help='JSON dict of env kwargs, e.g. \'{"level": 1}\' (default: {} for train, {"level": 1, "push_cone": 20} '
        "for compare and audit)",
    )
    p.add_argument(
        "--total-steps",
        type=positive_int,
        default=None,
        help="environment steps (default: 20000; with --resume: raise the run's budget)",
    )
    p.add_argument(
        "--world-model",
        default=None,
        help="start the curiosity reward from this world model: 'pretrained' (shipped with tdwgym) or a "
        "world_model.pt file; it keeps learning online (default: a fresh model of --curiosity's variant)",
    )
    p.add_argument("--n-envs", type=int, default=None, help="parallel environments (default: 4)")
    p.add_argument("--vec-env", choices=("subproc", "dummy"), default=None, help="VecEnv kind (default: subproc)")
    p.add_argument("--frame-stack", type=int, default=None, help="frames stacked for the policy (default: 1)")
    p.add_argument("--n-steps", type=int, default=None, help="PPO rollout length per env (default: 128)")
    p.add_argument("--batch-size", type=int, default=None, help="PPO minibatch size (default: 256)")
    p.add_argument("--n-epochs", type=int, default=None, help="PPO epochs per rollout (default: 4)")
    p.add_argument("--ent-coef", type=float, default=None, help="PPO entropy bonus (default: 0.01)")
    p.add_argument("--int-coef", type=float, default=None, help="intrinsic reward weight (default: 1.0)")
    p.add_argument(
        "--action-baseline",
        choices=("zscore", "ratio", "difference", "none"),
        default=None,
        help="reward the world model's error against the errors usual after the same action (default: zscore; "
        "none: the raw error; see docs/agents.md)",
    )
    p.add_argument(
        "--int-norm-horizon",
        type=int,
        default=None,
        help="transitions the intrinsic reward's normalising std remembers (default: all; 0: all)",
    )
    p.add_argument(
        "--zscore-threshold",
        type=float,
        default=None,
        help="with --action-baseline zscore: standard scores up to this many std pay nothing (default: 2)",
    )
    p.add_argument(
        "--wm-warp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pixel world model: learned per-action warp of the last frame, the camera's own motion (default: on)",
    )
    p.add_argument(
        "--wm-resolution",
        type=int,
        default=None,
        help="side in pixels of the frames the world model sees, observations area-downsampled to it (default: 32; "
        "0: the observation's size)",
    )
    p.add_argument(
        "--wm-fovea",
        type=float,
        default=None,
        help="pixel world model: the surprise counts only this central fraction of the frame, where a push "
        "lands (default: 0.5; 1: the whole frame)",
    )
    p.add_argument(
        "--wm-background",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the world model in a background thread, deterministically (default: on)",
    )
    p.add_argument("--context-frames", type=int, default=None, help="world-model context frames k (default: 2)")
    p.add_argument("--device", default=None, help="torch device: auto (CUDA if available), cpu, cuda")


_COMMON_FIELDS = (
    "env_id",
    "env_kwargs",
    "n_envs",
    "vec_env",
    "frame_stack",
    "n_steps",
    "batch_size",
    "n_epochs",
    "ent_coef",
    "int_coef",
    "action_baseline",
    "zscore_threshold",
    "int_norm_horizon",
    "wm_warp",
    "wm_resolution",
    "wm_fovea",
    "wm_background",
    "context_frames",
    "world_model",
    "device",
)
"""``TrainConfig`` fields set by :func:`_add_common`'s options (argparse dest = field name)."""


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The common options given on the command line (those left out keep the ``TrainConfig`` default)."""
    given = {name: getattr(args, name) for name in _COMMON_FIELDS if getattr(args, name, None) is not None}
    if given.get("wm_resolution") is not None:
        given["wm_resolution"] = given["wm_resolution"] or None  # 0: the observation's size
    if given.get("int_norm_horizon") is not None:
        given["int_norm_horizon"] = given["int_norm_horizon"] or None  # 0: all transitions
    return given


def _train_config(args: argparse.Namespace, **extra: Any):
    from tdwgym.agents.train import TrainConfig

    return TrainConfig(total_steps=args.total_steps or 20_000, **_given(args), **extra)


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
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start a fresh run in a folder that already holds one, deleting its checkpoints, metrics and logs "
        "(without it such a folder is refused)",
    )
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
        overwrite=args.overwrite,
    )
    if args.resume:
        # only the budget can change on resume (raise it with --total-steps); the rest comes from config.json
        cfg = dataclasses.replace(cfg, total_steps=args.total_steps or 0)
    from tdwgym.agents.train import RunDirExistsError

    try:
        result = train(cfg, resume=args.resume)
    except RunDirExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trained {result.num_timesteps} steps in {result.wall_time_s:.1f} s -> {result.run_dir}")
    if result.video_path:
        print(f"video: {result.video_path}")
    if result.plot_path:
        print(f"plot:  {result.plot_path}")
    return 0


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare``: curiosity agent vs a random agent, plain PPO and push-rewarded PPO (the oracle) at the same
    budget and seeds."""
    p = subparsers.add_parser(
        "compare",
        help="compare curiosity with random, plain-PPO and push-rewarded (oracle) PPO agents",
        description=add_compare_parser.__doc__,
    )
    _add_common(p)
    p.add_argument("--curiosity", choices=VARIANT_CHOICES[:-1], default="pixel", help="curiosity variant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--eval-episodes", type=int, default=5, help="held-out episodes per agent and seed (default: 5)")
    p.add_argument("--eval-steps", type=int, default=500, help="steps per held-out episode (default: 500)")
    p.add_argument(
        "--out",
        default="runs/compare",
        help="output folder (results.json, results.md: the markdown table, pushes.png, training.png)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (print one line per phase)")
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        default=None,
        help="train nothing: join the results of finished comparisons of the same settings (agents or seeds run "
        "separately) and write one results.json, results.md and plots to --out",
    )
    p.add_argument(
        "--agents",
        nargs="+",
        choices=AGENT_CHOICES,
        default=list(AGENT_CHOICES),
        help="which agents to train and measure (default: all four; oracle is PPO rewarded for pushes that move an "
        "object, the ceiling at the budget), e.g. --agents curiosity for a variant screen",
    )
    p.set_defaults(func=run_compare)
    return p


def run_compare(args: argparse.Namespace) -> int:
    """Run ``tdwgym compare``."""
    from tdwgym.agents.compare import CompareConfig, compare, format_table, merge_results, write_results

    if args.merge:
        if Path(args.out).resolve() in {Path(d).resolve() for d in args.merge}:
            print(f"tdwgym compare: --out {args.out} is one of the --merge folders; give a new one", file=sys.stderr)
            return 2
        try:
            results = merge_results(args.merge)
        except ValueError as e:
            print(f"tdwgym compare: {e}", file=sys.stderr)
            return 2
        write_results(results, args.out)
        print(format_table(results))
        out = Path(args.out)
        print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
        return 0

    overrides = _given(args)
    env_id = overrides.pop("env_id", None)
    env_kwargs = overrides.pop("env_kwargs", None)
    defaults = CompareConfig()
    cfg = CompareConfig(
        total_steps=args.total_steps or defaults.total_steps,
        seeds=args.seeds,
        env_id=env_id or defaults.env_id,
        env_kwargs=defaults.env_kwargs if env_kwargs is None else env_kwargs,
        curiosity=args.curiosity,
        eval_episodes=args.eval_episodes,
        eval_steps=args.eval_steps,
        out=args.out,
        agents=list(dict.fromkeys(args.agents)),
        train_overrides=overrides,
        progress_bar=not args.no_progress,
    )
    results = compare(cfg)
    print(format_table(results))
    out = Path(cfg.out)
    print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
    return 0


def add_audit_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``audit``: what a curiosity reward pays a random, a pushing and a spinning policy (no PPO)."""
    p = subparsers.add_parser(
        "audit",
        help="what a curiosity reward pays random, object-pushing and spinning policies (minutes, no PPO)",
        description=add_audit_parser.__doc__,
    )
    _add_common(p)
    p.add_argument("--curiosity", choices=VARIANT_CHOICES[:-1], default="pixel", help="curiosity variant")
    p.add_argument("--steps", type=int, default=8000, help="environment steps per policy (default: 8000)")
    p.add_argument("--seed", type=int, default=0, help="seed of envs, world model and random actions (default: 0)")
    p.add_argument(
        "--policies",
        nargs="+",
        choices=AUDIT_CHOICES,
        default=list(AUDIT_CHOICES),
        help="which policies to run (default: all)",
    )
    p.add_argument("--out", default=None, help="folder for audit.json and audit.md (default: print only)")
    p.set_defaults(func=run_audit)
    return p


def run_audit(args: argparse.Namespace) -> int:
    """Run ``tdwgym audit``."""
    from tdwgym.agents.audit import AuditConfig, audit, format_audit

    if args.total_steps is not None:
        raise SystemExit("tdwgym audit: --total-steps is a training budget; the audit runs --steps steps per policy")
    overrides = _given(args)
    defaults = AuditConfig()
    env_id = overrides.pop("env_id", None) or defaults.env_id
    env_kwargs = overrides.pop("env_kwargs", None)
    cfg = AuditConfig(
        steps=args.steps,
        policies=list(dict.fromkeys(args.policies)),
        env_id=env_id,
        env_kwargs=defaults.env_kwargs if env_kwargs is None else env_kwargs,
        seed=args.seed,
        train_overrides={**overrides, "curiosity": args.curiosity},
        out=args.out,
    )
    print(format_audit(audit(cfg)))
    return 0


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym eval`` to an argparse sub-parser collection (sets ``func``)."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a world model: prediction quality, violation of expectation, physics probes",
        description="Write report.json, report.md and PNG plots evaluating a world model (and its agent).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", default=None, help="training run folder (tdwgym train's output)")
    src.add_argument(
        "--model",
        default=None,
        help="world-model checkpoint file (world_model.pt), 'pretrained' (shipped), or module:attr / file.py:attr "
        "(any model with surprise(frames), docs/world_models.md)",
    )
    src.add_argument(
        "--export-sets",
        metavar="DIR",
        default=None,
        help="write the frozen VoE pairs and probe clips (no model needed; frame size from --env-kwargs "
        "resolution, default 64) so others can report numbers on the same clips",
    )
    p.add_argument("--env", default=None, help="env id (default: the run's env, else TDWRoom-Occlusion-v0)")
    p.add_argument(
        "--env-kwargs", type=json.loads, default=None, help="JSON dict of env arguments, e.g. '{\"level\": 1}'"
    )
    p.add_argument("--episodes", type=int, default=None, help="held-out episodes per split (default: 6)")
    p.add_argument("--frames", type=int, default=None, help="steps per prediction episode (default: 32)")
    p.add_argument("--horizon", type=int, default=None, help="multi-step prediction horizon (default: 8)")
    p.add_argument("--voe-pairs", type=int, default=None, help="possible/impossible pairs per kind (default: 24)")
    p.add_argument("--probe-clips", type=int, default=None, help="probe clips per kind and split (default: 6)")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds), for smoke tests")
    p.add_argument("--out", default=None, help="output folder (default: RUN/eval)")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda")
    from tdwgym.distributed import add_ray_argument  # does not import ray

    add_ray_argument(p)
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    """``tdwgym eval``: the evaluation report of a run or world-model checkpoint (locally or on Ray)."""
    from tdwgym.agents.evaluate import EvalSettings, evaluate

    s = EvalSettings.quick() if args.quick else EvalSettings()
    for name in ("horizon", "voe_pairs", "probe_clips"):
        if getattr(args, name) is not None:
            setattr(s, name, int(getattr(args, name)))
    if args.export_sets is not None:
        from tdwgym.agents.evaluate import export_eval_sets

        env_kwargs = dict(args.env_kwargs or {})
        resolution = int(env_kwargs.pop("resolution", 64))
        index = export_eval_sets(args.export_sets, args.env or "TDWRoom-Occlusion-v0", env_kwargs, resolution, s)
        print(f"evaluation sets: {index}")
        return 0
    kwargs: dict[str, Any] = {
        "run_dir": args.run,
        "model_path": args.model,
        "env_id": args.env,
        "env_kwargs": args.env_kwargs,
        "episodes": args.episodes,
        "frames": args.frames,
        "out": args.out,
        "settings": s,
        "device": args.device,
    }
    if args.ray is not None:
        from tdwgym.agents.distributed import evaluate_on_ray

        from tdwgym.distributed import ray_address

        evaluate_on_ray(address=ray_address(args.ray), **kwargs)
    else:
        evaluate(**kwargs)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m tdwgym.agents.cli train ...``)."""
    parser = argparse.ArgumentParser(prog="tdwgym-agents")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_compare_parser(sub)
    add_audit_parser(sub)
    add_eval_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
