"""``tdwgym record`` with a world model or a training run: the run's agent, env settings and world-model panels.

:func:`record_episode` resolves a run folder (:class:`~tdwgym.agents.rundir.RunDir`: its env, env arguments, agent
and world model) and a world model (a ``world_model.pt``, a run folder, or ``"pretrained"``), and hands a
:class:`~tdwgym.agents.evaluate.ModelStepper` to core's :func:`tdwgym.record.record_episode`, which draws the panels.

    tdwgym record --env TDWRoom-Occlusion-v0 --policy orbit --steps 120
    tdwgym record --run runs/curiosity --steps 300            # the run's agent and world model, four panels
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tdwgym.agents.rundir import RunDir

from tdwgym.policies import BUILTIN_POLICIES
from tdwgym.record import check_recording, default_video_path, record_with_gym
from tdwgym.record import record_episode as record_plain

__all__ = ["DEFAULT_ENV", "add_record_parser", "record_episode"]

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
) -> Path:
    """Record one episode (``steps`` steps from ``reset(seed=seed)``) to video, with a world model's panels.

    Args:
        env_id: Gymnasium id (default: the run's env, else :data:`DEFAULT_ENV`).
        out: Output file (.mp4 or .gif); default :func:`~tdwgym.record.default_video_path` (in ``RUN/videos``
            with a run).
        policy: Built-in name, SB3 ``.zip`` or run folder (see :func:`tdwgym.policies.load_policy`). With
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
        from tdwgym.agents.evaluate import ModelStepper, load_run

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
    )


# ----------------------------------------------------------------------------------------------------------- CLI


def add_record_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym record`` to an argparse sub-parser collection (sets ``func``)."""
    p = subparsers.add_parser(
        "record",
        help="record an episode to video (optionally beside a world model's prediction, error, surprise)",
        description="Record an episode of any env with any policy. With a world model (--world-model or --run) "
        "every frame shows four panels: observation, prediction, per-pixel error, intrinsic reward.",
    )
    p.add_argument("--env", default=None, help=f"Gymnasium id (default: the run's env with --run, else {DEFAULT_ENV})")
    p.add_argument(
        "--policy",
        default="random",
        help=f"{', '.join(BUILTIN_POLICIES)}, a stable-baselines3 .zip, or a run folder (default: %(default)s)",
    )
    p.add_argument("--run", default=None, help="training run folder: its agent, world model, env settings")
    p.add_argument(
        "--world-model",
        default=None,
        help="world model to show: a world_model.pt checkpoint, a run folder, or 'pretrained' (shipped)",
    )
    p.add_argument("--steps", type=int, default=300, help="env steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of scene and policy (default: %(default)s)")
    p.add_argument("--size", type=int, default=128, help="pixel edge of each panel (default: %(default)s)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the env's render_fps)")
    p.add_argument("--gif", action="store_true", help="write a GIF instead of an mp4")
    p.add_argument(
        "--gym-record-video",
        action="store_true",
        help="plain recording through gymnasium.wrappers.RecordVideo (one file per episode)",
    )
    p.add_argument(
        "--out", default=None, help="output file (default: RUN/videos/ENV-POLICY-seedSEED.mp4 or runs/videos/...)"
    )
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA if available), cpu, cuda")
    p.set_defaults(func=_cmd_record)
    return p


def _cmd_record(args: argparse.Namespace) -> int:
    if args.env is None:  # a run records in the env it was trained on
        args.env = (RunDir(args.run).env_id if args.run and Path(args.run).is_dir() else None) or DEFAULT_ENV
    if args.gym_record_video:
        folder = (
            Path(args.out)
            if args.out
            else default_video_path(args.env, args.policy, args.seed, run_dir=args.run).parent
        )
        paths = record_with_gym(
            args.env, folder, policy=args.policy, steps=args.steps, seed=args.seed, render_size=args.size
        )
        for path in paths:
            print(f"wrote {path}")
        return 0
    path = record_episode(
        args.env,
        out=args.out,
        policy=args.policy,
        world_model=args.world_model,
        run_dir=args.run,
        steps=args.steps,
        seed=args.seed,
        panel_size=args.size,
        fps=args.fps,
        gif=args.gif,
        device=args.device,
    )
    print(f"wrote {path}")
    return 0
