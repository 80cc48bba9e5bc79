"""The agents' commands of ``tdwgym``: ``demo``, ``train``, ``compare``, ``audit``, ``eval``, ``pretrain``, ``record``.

Each command's options come from its config dataclass (:func:`tdwgym.options.add_config_arguments`: one option per
field, the field's docstring as help, the real default), in the shared vocabulary (``--env``, ``--level``,
``--split``, ``--env-kwargs``, ``--total-steps``, ``--steps``, ``--seed``, ``--out``, ``--device``, ``--no-progress``,
``--ray``). Every run function checks what it was given before anything starts or is written: a user error is a
:class:`~tdwgym.options.UsageError`, one line with exit status 2 from the ``tdwgym`` command.

:data:`COMMANDS` lists the commands; one line adds one (``tdwgym/cli.py`` assembles them with core's)::

    COMMANDS = (add_train_parser, ..., add_my_parser)   # add_my_parser(subparsers) sets func=run_my
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.agents.curiosity import GATES
from tdwgym.agents.demo import add_demo_parser
from tdwgym.agents.pretrain import add_pretrain_parser
from tdwgym.agents.record import add_record_parser
from tdwgym.agents.rundir import RunDir
from tdwgym.agents.train import VEC_ENVS, TrainConfig
from tdwgym.options import (
    Flag,
    Parser,
    UsageError,
    add_config_arguments,
    add_ray_argument,
    check_env,
    check_output_folder,
    config_kwargs,
    env_kwargs_with,
    nonnegative_int,
    positive_float,
    positive_int,
    ray_address,
    run_command,
)
from tdwgym.util.files import DamagedFileError

VARIANT_CHOICES = ("pixel", "latent", "recurrent", "jepa", "rnd", "icm", "progress", "none")
"""Values of ``--curiosity`` (``tdwgym.agents.curiosity.VARIANTS`` and ``none``)."""
AGENT_CHOICES = ("random", "ppo", "curiosity", "oracle")
"""Agents of ``tdwgym compare`` (the same as ``tdwgym.agents.compare.AGENTS``)."""
AUDIT_CHOICES = ("random", "seek30", "seek", "spin")
"""Policies of ``tdwgym audit`` (the same as ``tdwgym.agents.audit.AUDIT_POLICIES``)."""

TRAIN_FLAGS: dict[str, Flag] = {
    "curiosity": Flag(choices=VARIANT_CHOICES),
    "vec_env": Flag(choices=VEC_ENVS),
    "action_baseline": Flag(choices=("zscore", "ratio", "difference", "none")),
    "reward_gate": Flag(choices=GATES),
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
"""How :class:`TrainConfig`'s fields appear on the command line beyond their names and types."""

RESUMABLE = ("total_steps", "progress_bar")
"""What ``train --resume`` may change; every other setting is the run's own (its ``config.json``)."""


def _train_config(kwargs: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _env_kwargs(given: dict[str, Any], defaults: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The env arguments of a command: ``--env-kwargs`` if given, else the command's defaults, with ``--level`` and
    ``--split`` over them (a default the command line sets otherwise gives way; a given ``--env-kwargs`` that
    disagrees with ``--level`` is an error)."""
    if "env_kwargs" in given:
        return env_kwargs_with(given["env_kwargs"], args)
    base = {k: v for k, v in defaults.items() if k not in ("level", "split") or getattr(args, k, None) is None}
    return env_kwargs_with(base, args)


def _door(cfg: TrainConfig, prog: str) -> None:
    """The door checks of a training config: env, env arguments, device."""
    from tdwgym.agents.device import check_device

    check_env(cfg.env_id, cfg.env_kwargs)
    check_device(cfg.device, prog)


# ------------------------------------------------------------------------------------------------------ train


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``train``: PPO with a curiosity reward; writes config, checkpoints, TensorBoard logs, video and plot."""
    p = subparsers.add_parser(
        "train",
        help="train a curiosity agent (PPO + world-model reward)",
        description="Train PPO with a curiosity reward (every TrainConfig field is an option). Writes config.json, "
        "checkpoints, TensorBoard logs, metrics, a rollout video and a plot to --out.",
    )
    names = add_config_arguments(p, TrainConfig, flags=TRAIN_FLAGS)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue an interrupted run with its own settings (only --total-steps, to raise the budget, and "
        "--no-progress may be given)",
    )
    p.set_defaults(func=run_train, config_fields=names)
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run ``tdwgym train``."""
    from tdwgym.agents.train import train

    given = config_kwargs(args, args.config_fields)
    if args.resume:
        run = RunDir(args.resume)
        if not run.config_path.is_file():
            raise UsageError(f"--resume {args.resume}: not a run folder of `tdwgym train` (no {RunDir.CONFIG} in it)")
        other = [n for n in given if n not in RESUMABLE] + [k for k in ("level", "split") if getattr(args, k)]
        if other:
            flags = ", ".join("--" + n.replace("_", "-") for n in other)
            raise UsageError(
                f"--resume continues a run with its own settings: {flags} cannot change; only --total-steps and "
                "--no-progress may be given"
            )
        try:
            data = run.read_config()
        except DamagedFileError as exc:
            raise UsageError(f"--resume {args.resume}: {exc}") from None
        try:
            saved = TrainConfig.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--resume {args.resume}: its {RunDir.CONFIG} does not load ({exc})") from None
        _door(saved, "tdwgym train")
        # 0: keep the run's budget; a given --total-steps raises it
        cfg = TrainConfig(total_steps=given.get("total_steps", 0), progress_bar=given.get("progress_bar", True))
    else:
        given["env_kwargs"] = _env_kwargs(given, TrainConfig().env_kwargs, args)
        cfg = _train_config(given)
        check_output_folder(cfg.run_dir)
        if RunDir(cfg.run_dir).holds_run() and not cfg.overwrite:
            raise UsageError(
                f"--out {cfg.run_dir} already holds a training run; continue it with --resume {cfg.run_dir}, start "
                "over with --overwrite (deletes its checkpoints, metrics and logs), or pick another --out"
            )
        _door(cfg, "tdwgym train")
    result = train(cfg, resume=args.resume)
    print(f"trained {result.num_timesteps} steps in {result.wall_time_s:.1f} s -> {result.run_dir}")
    if result.video_path:
        print(f"video: {result.video_path}")
    if result.plot_path:
        print(f"plot:  {result.plot_path}")
    return 0


# ---------------------------------------------------------------------------------------------------- compare

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
""":class:`TrainConfig` fields that ``compare`` sets for every agent itself (the rest are options)."""


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``compare``: curiosity agent vs a random agent, plain PPO and push-rewarded PPO (the oracle) at the same
    budget and seeds."""
    from tdwgym.agents.compare import CompareConfig

    p = subparsers.add_parser(
        "compare",
        help="compare curiosity with random, plain-PPO and push-rewarded (oracle) PPO agents",
        description=add_compare_parser.__doc__,
    )
    names = add_config_arguments(
        p,
        CompareConfig,
        exclude=("train_overrides",),
        flags={
            "curiosity": Flag(choices=VARIANT_CHOICES[:-1]),
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
    group = p.add_argument_group("training settings of every agent (TrainConfig)")
    overrides = add_config_arguments(group, TrainConfig, exclude=COMPARE_SETS, flags=TRAIN_FLAGS)
    p.set_defaults(func=run_compare, config_fields=names, train_fields=overrides)
    return p


def run_compare(args: argparse.Namespace) -> int:
    """Run ``tdwgym compare``."""
    from tdwgym.agents.compare import CompareConfig, compare, format_table, merge_results, write_results

    given = config_kwargs(args, args.config_fields)
    out = check_output_folder(given.get("out", CompareConfig.out))
    if args.merge:
        if out.resolve() in {Path(d).resolve() for d in args.merge}:
            raise UsageError(f"--out {out} is one of the --merge folders; give a new one")
        try:
            results = merge_results(args.merge)
        except ValueError as e:
            raise UsageError(str(e)) from None
        write_results(results, out)
        print(format_table(results))
        print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
        return 0
    defaults = CompareConfig()
    given["env_kwargs"] = _env_kwargs(given, defaults.env_kwargs, args)
    given["agents"] = list(dict.fromkeys(given.get("agents", defaults.agents)))
    overrides = config_kwargs(args, args.train_fields)
    cfg = CompareConfig(**given, train_overrides=overrides)
    _door(
        _train_config({"env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs, "curiosity": cfg.curiosity, **overrides}),
        "tdwgym compare",
    )
    results = compare(cfg)
    print(format_table(results))
    print(f"\ntable: {out / 'results.md'}\nplots: {out / 'pushes.png'}, {out / 'training.png'}")
    return 0


# ------------------------------------------------------------------------------------------------------ audit

AUDIT_TRAIN_FIELDS = (
    "curiosity",
    "world_model",
    "action_baseline",
    "zscore_threshold",
    "reward_gate",
    "int_norm_horizon",
    "gamma",
    "wm_fovea",
    "wm_warp",
    "wm_resolution",
    "context_frames",
    "wm_width",
    "wm_capacity",
    "wm_batch_size",
    "wm_updates_per_transition",
    "wm_learning_rate",
    "wm_background",
    "n_envs",
    "vec_env",
    "device",
    "torch_threads",
)
""":class:`TrainConfig` fields that shape the reward the audit measures (no PPO setting: the audit trains no agent)."""


def add_audit_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``audit``: what a curiosity reward pays a random, a pushing and a spinning policy (no PPO)."""
    from tdwgym.agents.audit import AuditConfig

    p = subparsers.add_parser(
        "audit",
        help="what a curiosity reward pays random, object-pushing and spinning policies (minutes, no PPO)",
        description=add_audit_parser.__doc__,
    )
    names = add_config_arguments(
        p,
        AuditConfig,
        exclude=("train_overrides",),
        flags={
            "steps": Flag(type=positive_int),
            "policies": Flag(choices=AUDIT_CHOICES),
            "seed": Flag(type=nonnegative_int),
            "out": Flag(metavar="DIR"),
        },
    )
    group = p.add_argument_group("the reward's settings (TrainConfig)")
    reward = add_config_arguments(
        group,
        TrainConfig,
        only=AUDIT_TRAIN_FIELDS,
        flags={**TRAIN_FLAGS, "curiosity": Flag(choices=VARIANT_CHOICES[:-1])},
    )
    p.set_defaults(func=run_audit, config_fields=names, train_fields=reward)
    return p


def run_audit(args: argparse.Namespace) -> int:
    """Run ``tdwgym audit``."""
    from tdwgym.agents.audit import AuditConfig, audit, format_audit

    given = config_kwargs(args, args.config_fields)
    defaults = AuditConfig()
    given["env_kwargs"] = _env_kwargs(given, defaults.env_kwargs, args)
    if "policies" in given:
        given["policies"] = list(dict.fromkeys(given["policies"]))
    if given.get("out") is not None:
        check_output_folder(given["out"])
    try:
        cfg = AuditConfig(**given, train_overrides=config_kwargs(args, args.train_fields))
        tcfg = cfg.train_config()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _door(tcfg, "tdwgym audit")
    print(format_audit(audit(cfg)))
    return 0


# ------------------------------------------------------------------------------------------------------- eval


@dataclass
class EvalCommand:
    """What ``tdwgym eval`` evaluates, where, and on what (the sizes are :class:`EvalSettings` fields)."""

    run: str | None = None
    """A training run folder (tdwgym train's output): its latest world model, env and agent."""
    model: str | None = None
    """A world-model checkpoint file (world_model.pt), 'pretrained' (shipped), or module:attr / file.py:attr (any
    model with surprise(frames), docs/world_models.md)."""
    export_sets: str | None = None
    """Write the frozen VoE pairs and probe clips here instead (no model needed; frame size from --env-kwargs
    resolution, default 64) so others can report numbers on the same clips."""
    env_id: str | None = None
    """The env to evaluate on (default: the run's env, else TDWRoom-Occlusion-v0)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments over the run's own."""
    quick: bool = False
    """Tiny settings (seconds), for smoke tests; the size options given still apply."""
    out: str | None = None
    """Output folder (default: RUN/eval, or eval beside the checkpoint)."""
    device: str = "auto"
    """Torch device: auto (CUDA when available), cpu, cuda."""
    progress_bar: bool = True
    """Print a line per section."""


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym eval`` to an argparse sub-parser collection (sets ``func``)."""
    from tdwgym.agents.evaluate import EvalSettings

    p = subparsers.add_parser(
        "eval",
        help="evaluate a world model: prediction quality, violation of expectation, physics probes",
        description="Write report.json, report.md and PNG plots evaluating a world model (and its agent): "
        "give one of --run, --model, --export-sets.",
    )
    names = add_config_arguments(
        p,
        EvalCommand,
        flags={"run": Flag(metavar="RUN_DIR"), "model": Flag(metavar="MODEL"), "out": Flag(metavar="DIR")},
        level_split=("level",),  # the evaluation draws from the held-out splits itself
    )
    add_ray_argument(p)
    group = p.add_argument_group("sizes of the evaluation (EvalSettings)")
    settings = add_config_arguments(
        group,
        EvalSettings,
        flags={
            "frames": Flag("--steps", deprecated=("--frames",), type=positive_int),
            "seed": Flag(type=nonnegative_int),
            **{
                n: Flag(type=positive_int)
                for n in ("episodes", "horizon", "voe_pairs", "voe_post_frames", "probe_clips", "probe_frames")
            },
            **{n: Flag(type=nonnegative_int) for n in ("exploration_episodes", "exploration_steps")},
        },
    )
    p.set_defaults(func=run_eval, config_fields=names, settings_fields=settings)
    return p


def run_eval(args: argparse.Namespace) -> int:
    """``tdwgym eval``: the evaluation report of a run or world-model checkpoint (locally or on Ray)."""
    from tdwgym.agents.device import check_device
    from tdwgym.agents.evaluate import EvalConfig, EvalSettings, evaluate, export_eval_sets

    cmd = EvalCommand(**config_kwargs(args, args.config_fields))
    sources = [f"--{n.replace('_', '-')}" for n in ("run", "model", "export_sets") if getattr(cmd, n) is not None]
    if len(sources) != 1:
        raise UsageError(f"give exactly one of --run, --model, --export-sets (got {', '.join(sources) or 'none'})")
    settings = EvalSettings.quick() if cmd.quick else EvalSettings()
    settings = dataclasses.replace(settings, **config_kwargs(args, args.settings_fields))
    env_kwargs = env_kwargs_with(cmd.env_kwargs, args)
    if cmd.export_sets is not None:
        check_output_folder(cmd.export_sets, "--export-sets")
        env_kwargs = dict(env_kwargs)
        resolution = int(env_kwargs.pop("resolution", 64))
        env = cmd.env_id or "TDWRoom-Occlusion-v0"
        check_env(env, env_kwargs)
        index = export_eval_sets(cmd.export_sets, env, env_kwargs, resolution, settings, progress=cmd.progress_bar)
        print(f"evaluation sets: {index}")
        return 0
    if cmd.run is not None:
        run = RunDir(cmd.run).require()
        if run.world_model_path() is None:
            raise UsageError(f"--run {cmd.run}: the run holds no world model (world_model.pt in its checkpoints)")
        env = cmd.env_id or run.env_id or "TDWRoom-Occlusion-v0"
        check_env(env, {**(run.env_kwargs if env == run.env_id else {}), **env_kwargs})
    else:
        from tdwgym.agents.external import is_external_spec
        from tdwgym.agents.models import resolve_model_path

        if not is_external_spec(cmd.model) and not resolve_model_path(cmd.model).exists():
            raise UsageError(f"--model {cmd.model}: no such file; give a world_model.pt, 'pretrained' or module:attr")
        if cmd.env_id is not None or env_kwargs:
            check_env(cmd.env_id or "TDWRoom-Occlusion-v0", env_kwargs)
    if cmd.out is not None:
        check_output_folder(cmd.out)
    check_device(cmd.device, "tdwgym eval")
    config = EvalConfig(
        run_dir=cmd.run,
        model_path=cmd.model,
        env_id=cmd.env_id,
        env_kwargs=env_kwargs,
        out=cmd.out,
        settings=settings,
        device=cmd.device,
        progress=cmd.progress_bar,
    )
    if args.ray is not None:
        from tdwgym.agents.distributed import evaluate_on_ray

        evaluate_on_ray(config, address=ray_address(args.ray), progress=cmd.progress_bar)
    else:
        evaluate(config)
    return 0


# ---------------------------------------------------------------------------------------------------- the table

COMMANDS = (
    add_demo_parser,
    add_train_parser,
    add_compare_parser,
    add_audit_parser,
    add_eval_parser,
    add_pretrain_parser,
    add_record_parser,
)
"""The agents' commands, in the order ``tdwgym --help`` lists them; each ``add_*_parser(subparsers)`` adds one
sub-parser whose ``func`` runs it. One line here adds a command."""


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m tdwgym.agents.cli train ...``), the agents' commands only."""
    parser = Parser(prog="tdwgym")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in COMMANDS:
        add(sub)
    return run_command(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
