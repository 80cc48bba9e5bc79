"""``tdwgym audit``: what a curiosity reward pays a random, a pushing and a spinning policy, no PPO
(:func:`tdwgym.agents.reward_audit.audit`)."""

from __future__ import annotations

import argparse

from tdwgym.commands.config_options import Flag, add_config_arguments, command_env_kwargs, config_kwargs
from tdwgym.commands.train import door, train_flags
from tdwgym.commands.values import nonnegative_int, positive_int
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_folder

__all__ = ["AUDIT_CHOICES", "AUDIT_TRAIN_FIELDS", "EXTRA", "HELP", "add_parser", "run"]

EXTRA = "agents"
"""The pip extra the command needs."""

HELP = "what a curiosity reward pays random, object-pushing and spinning policies (minutes, no PPO)"
"""The command's line in ``tdwgym --help``."""

AUDIT_CHOICES = ("random", "seek30", "seek", "spin")
"""Policies of ``tdwgym audit`` (the same as ``tdwgym.agents.reward_audit.AUDIT_POLICIES``)."""

AUDIT_TRAIN_FIELDS = (
    "curiosity",
    "world_model",
    "action_baseline",
    "zscore_threshold",
    "reward_gate",
    "int_norm_horizon",
    "gamma",
    "wm_fovea",
    "wm_surprise",
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
""":class:`~tdwgym.agents.training.TrainConfig` fields that shape the reward the audit measures (no PPO setting: the
audit trains no agent)."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``audit``: what a curiosity reward pays a random, a pushing and a spinning policy (no PPO)."""
    from tdwgym.agents.reward_audit import AuditConfig
    from tdwgym.agents.training import TrainConfig

    flags = train_flags()
    p = subparsers.add_parser(
        "audit",
        help=HELP,
        description=add_parser.__doc__,
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
        flags={**flags, "curiosity": Flag(choices=flags["curiosity"].choices[:-1])},
    )
    p.set_defaults(func=run, config_fields=names, train_fields=reward)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym audit``."""
    from tdwgym.agents.reward_audit import AuditConfig, audit, format_audit

    given = config_kwargs(args, args.config_fields)
    defaults = AuditConfig()
    given["env_kwargs"] = command_env_kwargs(given, defaults.env_kwargs, args)
    if "policies" in given:
        given["policies"] = list(dict.fromkeys(given["policies"]))
    if given.get("out") is not None:
        check_output_folder(given["out"])
    try:
        cfg = AuditConfig(**given, train_overrides=config_kwargs(args, args.train_fields))
        tcfg = cfg.train_config()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    door(tcfg, "tdwgym audit")
    print(format_audit(audit(cfg)))
    return 0
