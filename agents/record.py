"""``tdwgym record`` with a world model or a training run: the run's agent, env settings and world-model panels.

:func:`record_episode` resolves a run folder (:class:`~tdwgym.agents.rundir.RunDir`: its env, env arguments, agent
and world model) and a world model (a ``world_model.pt``, a run folder, or ``"pretrained"``), and hands a
:class:`~tdwgym.agents.evaluate.ModelStepper` to core's :func:`tdwgym.tools.recording.record_episode`, which draws
the panels.

    tdwgym record --env TDWRoom-Occlusion-v0 --policy orbit --steps 120
    tdwgym record --run runs/curiosity --steps 300            # the run's agent and world model, four panels
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.agents.rundir import RunDir
from tdwgym.options import (
    Flag,
    UsageError,
    add_config_arguments,
    check_env,
    check_output_file,
    check_output_folder,
    config_kwargs,
    env_kwargs_with,
    nonnegative_int,
    positive_float,
    positive_int,
)
from tdwgym.tools.policies import BUILTIN_POLICIES
from tdwgym.tools.recording import check_recording, default_video_path, record_with_gym
from tdwgym.tools.recording import record_episode as record_plain

__all__ = ["DEFAULT_ENV", "RecordCommand", "add_record_parser", "record_episode", "run_record"]

DEFAULT_ENV = "TDWRoom-Occlusion-v0"
"""Env of ``tdwgym record`` when neither ``--env`` nor ``--run`` names one."""


def record_episode(
    env_id: str | None = None,
    out: str | os.PathLike | None = None,
    policy: str = "random",
    world_model: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    steps: int = 300,
    seed: int = 0,
    panel_size: int = 128,
    fps: float | None = None,
    gif: bool = False,
    progress: bool = True,
    device: str = "auto",
    env_kwargs: dict[str, Any] | None = None,
    pushes: list[int] | None = None,
) -> Path:
    """Record one episode (``steps`` steps from ``reset(seed=seed)``) to video, with a world model's panels.

    Args:
        env_id: Gymnasium id (default: the run's env, else :data:`DEFAULT_ENV`).
        out: Output file (.mp4 or .gif); default :func:`~tdwgym.tools.recording.default_video_path` (in ``RUN/videos``
            with a run).
        policy: Built-in name, SB3 ``.zip`` or run folder (see :func:`tdwgym.tools.policies.load_policy`). With
            ``run_dir`` and the default ``"random"``, the run's agent acts when it has one.
        world_model: A world-model checkpoint (``world_model.pt``), run folder or ``"pretrained"``; adds the
            prediction, error and reward panels. Default: the run's world model when ``run_dir`` is given.
        run_dir: A training run folder: default source of env, policy, world model, env settings and output folder.
        steps: Env steps; the video has ``steps + 1`` frames (the reset frame first).
        seed: Seed of the scene and the policy.
        panel_size: Pixel edge of each panel (plain recordings render the env at this size).
        fps: Frames per second; default the env's ``metadata["render_fps"]``.
        gif: Write a GIF instead of an mp4 when ``out`` is not given.
        progress: Show a progress bar.
        device: Torch device of the world model and agent (``"auto"``: CUDA when available).
        env_kwargs: Extra ``gym.make`` arguments (over the run's ``env_kwargs``).
        pushes: If given, the steps whose push moved an object are appended to it.

    Returns:
        The video's path.

    Raises:
        FileNotFoundError: The run folder does not exist.
        ValueError: ``steps`` below 1 or an unsupported video extension.
    """
    check_recording(steps, out)
    kwargs: dict[str, Any] = {}
    root: str | os.PathLike = "runs"
    if run_dir is not None:
        run = RunDir(run_dir).require()
        kwargs.update(run.env_kwargs)
        env_id = env_id or run.env_id
        if world_model is None:
            world_model = run.path
        if policy == "random" and run.agent_path() is not None:
            policy = str(run.path)
        root = run.path
    kwargs.update(env_kwargs or {})
    view = None
    if world_model is not None:
        from tdwgym.agents.device import configure_torch_threads
        from tdwgym.agents.evaluation.plan import ModelStepper, load_run

        configure_torch_threads()
        is_run = Path(world_model).is_dir()
        loaded = load_run(
            run_dir=world_model if is_run else None, model_path=None if is_run else world_model, device=device
        )
        view = ModelStepper(loaded.model)  # resizes observations to the model's frame size, as in training
    return record_plain(
        env_id or DEFAULT_ENV,
        out=out,
        policy=policy,
        steps=steps,
        seed=seed,
        panel_size=panel_size,
        fps=fps,
        gif=gif,
        progress=progress,
        device=device,
        env_kwargs=kwargs,
        model_view=view,
        root=root,
        pushes=pushes,
    )


# ----------------------------------------------------------------------------------------------------------- CLI


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
    """A world model to show beside the observation: a world_model.pt, a run folder, or 'pretrained' (shipped)."""
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


def add_record_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym record`` to an argparse sub-parser collection (sets ``func``)."""
    p = subparsers.add_parser(
        "record",
        help="record an episode to video (optionally beside a world model's prediction, error, surprise)",
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
    p.set_defaults(func=run_record, config_fields=names)
    return p


def run_record(args: argparse.Namespace) -> int:
    """Run ``tdwgym record``: check everything at the door, then record."""
    from tdwgym.agents.device import check_device

    cmd = RecordCommand(**config_kwargs(args, args.config_fields))
    env_kwargs = env_kwargs_with(cmd.env_kwargs, args)
    run = None
    if cmd.run is not None:
        run = RunDir(cmd.run)
        if not run.path.is_dir():
            raise UsageError(f"--run {cmd.run}: no such run folder")
    env = cmd.env_id or (run.env_id if run else None) or DEFAULT_ENV  # a run records in the env it trained on
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
    if cmd.world_model is not None and cmd.world_model != "pretrained" and not Path(cmd.world_model).exists():
        raise UsageError(f"--world-model {cmd.world_model}: no such file or folder; or give 'pretrained'")
    check_env(env, {**(run.env_kwargs if run and env == run.env_id else {}), **env_kwargs})
    if run is not None or cmd.world_model is not None or cmd.policy not in BUILTIN_POLICIES:
        check_device(cmd.device, "tdwgym record")
    if cmd.gym_record_video:
        folder = Path(cmd.out) if cmd.out else default_video_path(env, cmd.policy, cmd.seed, run_dir=cmd.run).parent
        paths = record_with_gym(
            env, folder, policy=cmd.policy, steps=cmd.steps, seed=cmd.seed, render_size=cmd.size, **env_kwargs
        )
        for path in paths:
            print(f"wrote {path}")
        return 0
    path = record_episode(
        env,
        out=cmd.out,
        policy=cmd.policy,
        world_model=cmd.world_model,
        run_dir=cmd.run,
        steps=cmd.steps,
        seed=cmd.seed,
        panel_size=cmd.size,
        fps=cmd.fps,
        gif=cmd.gif,
        progress=cmd.progress_bar,
        device=cmd.device,
        env_kwargs=env_kwargs,
    )
    print(f"wrote {path}")
    return 0
