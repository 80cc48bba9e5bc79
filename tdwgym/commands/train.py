"""``tdwgym train``: PPO with a curiosity reward (:func:`tdwgym.agents.training.train`).

Its options are :class:`~tdwgym.agents.training.TrainConfig`'s fields (one each, the field's docstring as help, the
real default), in the shared vocabulary. :func:`train_flags` and :func:`door` serve ``compare`` and ``audit`` too,
which set the same fields.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tdwgym.commands.config_options import Flag, add_config_arguments, command_env_kwargs, config_kwargs
from tdwgym.commands.door import check_env
from tdwgym.commands.trust_option import add_trust_pickles_argument, trusting_pickles
from tdwgym.commands.values import nonnegative_int, positive_float, positive_int
from tdwgym.util.errors import UsageError
from tdwgym.util.files import DamagedFileError, check_output_folder

if TYPE_CHECKING:
    from tdwgym.agents.training import TrainConfig

__all__ = ["EXTRA", "HELP", "RESUMABLE", "add_parser", "door", "run", "train_config", "train_flags"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "train a curiosity agent (PPO + world-model reward)"
"""The command's line in ``tdwgym --help``."""

RESUMABLE = ("total_steps", "progress_bar")
"""What ``train --resume`` may change; every other setting is the run's own (its ``config.json``)."""


def train_flags() -> dict[str, Flag]:
    """How :class:`~tdwgym.agents.training.TrainConfig`'s fields appear on the command line beyond their names and
    types."""
    from tdwgym.agents.curiosity import BASELINES, GATES, VARIANTS
    from tdwgym.agents.models.objects import SURPRISE_TERMS
    from tdwgym.agents.training import VEC_ENVS

    return {
        "curiosity": Flag(choices=(*VARIANTS, "none")),
        "vec_env": Flag(choices=VEC_ENVS),
        "action_baseline": Flag(choices=BASELINES),
        "reward_gate": Flag(choices=GATES),
        "wm_surprise": Flag(choices=SURPRISE_TERMS),
        "wm_resolution": Flag(zero_is_none=True),
        "int_norm_horizon": Flag(zero_is_none=True),
        "seed": Flag(type=nonnegative_int),
        "learning_rate": Flag(type=positive_float),
        "wm_learning_rate": Flag(type=positive_float),
        "video_steps": Flag(type=nonnegative_int),
        "verbose": Flag(type=nonnegative_int),
        **{
            name: Flag(type=positive_int)
            for name in (
                "n_envs",
                "frame_stack",
                "n_steps",
                "batch_size",
                "n_epochs",
                "features_dim",
                "wm_width",
                "wm_capacity",
                "wm_batch_size",
                "checkpoint_every",
                "video_size",
                "torch_threads",
                "context_frames",
            )
        },
    }


def train_config(kwargs: dict[str, Any]) -> TrainConfig:
    """A :class:`~tdwgym.agents.training.TrainConfig`; a bad value is a :class:`~tdwgym.util.errors.UsageError`."""
    from tdwgym.agents.training import TrainConfig

    try:
        return TrainConfig(**kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def door(cfg: TrainConfig, prog: str) -> None:
    """The door checks of a training config: env, env arguments, device."""
    from tdwgym.agents.device import check_device

    check_env(cfg.env_id, cfg.env_kwargs)
    check_device(cfg.device, prog)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``train``: PPO with a curiosity reward; writes config, checkpoints, TensorBoard logs, video and plot."""
    from tdwgym.agents.training import TrainConfig

    flags = train_flags()
    p = subparsers.add_parser(
        "train",
        help=HELP,
        description="Train PPO with a curiosity reward (every TrainConfig field is an option). Writes config.json, "
        "checkpoints, TensorBoard logs, metrics, a rollout video and a plot to --out.",
    )
    import dataclasses

    from tdwgym.agents.curiosity import CuriosityConfig

    reward = [f.name for f in dataclasses.fields(CuriosityConfig)]
    own = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in reward]
    names = add_config_arguments(p, TrainConfig, only=own, flags=flags)
    group = p.add_argument_group("the curiosity reward (CuriosityConfig: CuriosityVecEnv's settings too)")
    names += add_config_arguments(group, TrainConfig, only=reward, flags=flags)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue an interrupted run with its own settings (only --total-steps, to raise the budget, and "
        "--no-progress may be given)",
    )
    add_trust_pickles_argument(p)
    p.set_defaults(func=run, config_fields=names)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym train``."""
    from tdwgym.agents.rundir import RunDir
    from tdwgym.agents.training import TrainConfig, train

    given = config_kwargs(args, args.config_fields)
    if args.resume:
        run_dir = RunDir(args.resume)
        if not run_dir.config_path.is_file():
            raise UsageError(f"--resume {args.resume}: not a run folder of `tdwgym train` (no {RunDir.CONFIG} in it)")
        other = [n for n in given if n not in RESUMABLE] + [k for k in ("level", "split") if getattr(args, k)]
        if other:
            flags = ", ".join("--" + n.replace("_", "-") for n in other)
            raise UsageError(
                f"--resume continues a run with its own settings: {flags} cannot change; only --total-steps and "
                "--no-progress may be given"
            )
        try:
            data = run_dir.read_config()
        except DamagedFileError as exc:
            raise UsageError(f"--resume {args.resume}: {exc}") from None
        try:
            saved = TrainConfig.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--resume {args.resume}: its {RunDir.CONFIG} does not load ({exc})") from None
        door(saved, "tdwgym train")
        # 0: keep the run's budget; a given --total-steps raises it
        cfg = TrainConfig(total_steps=given.get("total_steps", 0), progress_bar=given.get("progress_bar", True))
    else:
        given["env_kwargs"] = command_env_kwargs(given, TrainConfig().env_kwargs, args)
        cfg = train_config(given)
        check_output_folder(cfg.run_dir)
        if RunDir(cfg.run_dir).holds_run() and not cfg.overwrite:
            raise UsageError(
                f"--out {cfg.run_dir} already holds a training run; continue it with --resume {cfg.run_dir}, start "
                "over with --overwrite (deletes its checkpoints, metrics and logs), or pick another --out"
            )
        door(cfg, "tdwgym train")
    with trusting_pickles(args) as trusted:
        result = train(cfg, resume=args.resume, trust_pickles=trusted or None)
    print(f"trained {result.num_timesteps} steps in {result.wall_time_s:.1f} s -> {result.run_dir}")
    if result.video_path:
        print(f"video: {result.video_path}")
    if result.plot_path:
        print(f"plot:  {result.plot_path}")
    return 0
