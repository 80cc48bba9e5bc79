"""``tdwgym record``: an episode of any env and any policy to video; with a world model or a training run, beside
the model's prediction, error and surprise.

A plain recording (a built-in policy, no ``--run``, no ``--world-model``) needs core only
(:func:`tdwgym.tools.recording.record_episode`); a run, a world model or a stored agent need the ``agents`` extra
(:func:`tdwgym.agents.panels.record_episode`).

    tdwgym record --env TDWRoom-Occlusion-v0 --policy orbit --steps 120
    tdwgym record --run runs/curiosity --steps 300            # the run's agent and world model, four panels
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs, env_kwargs_with
from tdwgym.commands.door import check_default_output, check_env
from tdwgym.commands.trust_option import add_trust_pickles_argument, trusting_pickles
from tdwgym.commands.values import nonnegative_int, positive_float, positive_int
from tdwgym.tools.policies import BUILTIN_POLICIES
from tdwgym.tools.recording import DEFAULT_ENV, check_recording, default_video_path, record_with_gym
from tdwgym.tools.recording import record_episode as record_plain
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_file, check_output_folder
from tdwgym.util.locks import file_lock, run_lock

__all__ = ["EXTRA", "HELP", "RecordCommand", "add_parser", "run"]

EXTRA = None
"""The pip extra the command needs (a run, a world model or a stored agent need ``agents``)."""

HELP = "record an episode to video (optionally beside a world model's prediction, error, surprise)"
"""The command's line in ``tdwgym --help``."""


@dataclass
class RecordCommand:
    """What ``tdwgym record`` records (one option per field)."""

    env_id: str | None = None
    """The env (default: the run's env with --run, else TDWRoom-Occlusion-v0)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments (over the run's own with --run)."""
    policy: str = "random"
    """random, orbit, static, seek, a stable-baselines3 PPO .zip, or a run folder (its latest agent)."""
    run: str | None = None
    """A training run folder: its env, env arguments, agent and world model (four panels)."""
    world_model: str | None = None
    """A world model to show beside the observation: a world_model.pt, a run folder, or a shipped model
    ('pretrained': the objects model; 'pretrained-recurrent': the pixel one; 'pretrained-playroom': the objects model
    fine-tuned on Playroom)."""
    steps: int = 300
    """Env steps; the video has steps + 1 frames."""
    seed: int = 0
    """Seed of the scene and the policy."""
    size: int = 128
    """Pixel edge of each panel."""
    fps: float | None = None
    """Frames per second (default: the env's render_fps)."""
    gif: bool = False
    """Write a GIF instead of an mp4 (when --out is not given)."""
    gym_record_video: bool = False
    """A plain recording through gymnasium.wrappers.RecordVideo instead (one file per episode; --out a folder)."""
    out: str | None = None
    """Output file (default: RUN/videos/ENV-POLICY-seedSEED.mp4, or runs/videos/...)."""
    device: str = "auto"
    """Torch device of the world model and agent: auto (CUDA when available), cpu, cuda."""
    progress_bar: bool = True
    """Show a progress bar."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym record`` to an argparse sub-parser collection (sets ``func``)."""
    p = subparsers.add_parser(
        "record",
        help=HELP,
        description="Record an episode of any env with any policy. With a world model (--world-model or --run) "
        "every frame shows four panels: observation, prediction, per-pixel error, intrinsic reward.",
    )
    names = add_config_arguments(
        p,
        RecordCommand,
        flags={
            "run": Flag(metavar="RUN_DIR"),
            "steps": Flag(type=positive_int),
            "seed": Flag(type=nonnegative_int),
            "size": Flag(type=positive_int),
            "fps": Flag(type=positive_float),
            "out": Flag(metavar="FILE"),
        },
    )
    add_trust_pickles_argument(p)
    p.set_defaults(func=run, config_fields=names)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym record``: check everything at the door, then record."""
    with trusting_pickles(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    cmd = RecordCommand(**config_kwargs(args, args.config_fields))
    env_kwargs = env_kwargs_with(cmd.env_kwargs, args)
    run_dir = None
    if cmd.run is not None:
        from tdwgym.agents.rundir import RunDir

        run_dir = RunDir(cmd.run)
        if not run_dir.path.is_dir():
            raise UsageError(f"--run {cmd.run}: no such run folder")
    env = cmd.env_id or (run_dir.env_id if run_dir else None) or DEFAULT_ENV  # a run records in its own env
    if cmd.out is not None:
        (check_output_folder if cmd.gym_record_video else check_output_file)(cmd.out)
    try:
        check_recording(cmd.steps, None if cmd.gym_record_video else cmd.out)
    except ValueError as exc:
        raise UsageError(f"--out {cmd.out}: {exc}") from None
    if cmd.policy not in BUILTIN_POLICIES and not Path(cmd.policy).exists():
        raise UsageError(
            f"--policy {cmd.policy}: no such file or folder; valid policies are {', '.join(BUILTIN_POLICIES)}, "
            "a stable-baselines3 .zip or a run folder"
        )
    if cmd.world_model is not None:
        from tdwgym.agents.models.registry import SHIPPED, resolve_model_path

        if not resolve_model_path(cmd.world_model).exists():
            raise UsageError(
                f"--world-model {cmd.world_model}: no such file or folder; or give a shipped model "
                f"({', '.join(SHIPPED)})"
            )
    check_env(env, {**(run_dir.env_kwargs if run_dir and env == run_dir.env_id else {}), **env_kwargs})
    if run_dir is not None or cmd.world_model is not None or cmd.policy not in BUILTIN_POLICIES:
        from tdwgym.agents.device import check_device

        check_device(cmd.device, "tdwgym record")
    folder = Path(cmd.out) if cmd.out and cmd.gym_record_video else _default_folder(cmd, env)
    if cmd.gym_record_video:
        with run_lock(folder):
            paths = record_with_gym(
                env, folder, policy=cmd.policy, steps=cmd.steps, seed=cmd.seed, render_size=cmd.size, **env_kwargs
            )
        for path in paths:
            print(f"wrote {path}")
        return 0
    options = {
        "out": cmd.out,
        "policy": cmd.policy,
        "steps": cmd.steps,
        "seed": cmd.seed,
        "panel_size": cmd.size,
        "fps": cmd.fps,
        "gif": cmd.gif,
        "progress": cmd.progress_bar,
        "device": cmd.device,
        "env_kwargs": env_kwargs,
    }
    with file_lock(cmd.out) if cmd.out is not None else run_lock(folder):
        if run_dir is None and cmd.world_model is None:  # core's recorder: no agents needed
            path = record_plain(env, **options)
        else:
            from tdwgym.agents.panels import record_episode

            path = record_episode(env, world_model=cmd.world_model, run_dir=cmd.run, **options)
    print(f"wrote {path}")
    return 0


def _default_folder(cmd: RecordCommand, env: str) -> Path | None:
    """The videos' folder without ``--out`` (``RUN/videos`` or ``runs/videos``), checked to be writable and not a
    link out of the run: else one line saying to pass ``--out`` (a run on a read-only mount). None with ``--out``."""
    if cmd.out is not None:
        return None
    folder = default_video_path(env, cmd.policy, cmd.seed, run_dir=cmd.run).parent
    source = f"--run {cmd.run}: its" if cmd.run is not None else "the"
    return check_default_output(
        folder,
        cmd.run,
        f"{source} videos",
        "pass --out FILE to write the video elsewhere",
        "pass --out FILE to write elsewhere",
    )
