"""``tdwgym record``: episodes of any env and any policy to video, optionally beside a world model's view.

Without a world model a frame is the env's render with a caption strip (env id, step, push events). With one,
a frame has four panels side by side: the observation, the world model's prediction of it, a per-pixel error
heatmap, and a running plot of the intrinsic reward (the model's surprise); see :func:`tdwgym.video.compose_panels`.

Policies (see :mod:`tdwgym.policies`): the built-in ``random``, ``static``, ``orbit`` (a scripted camera orbit) and
``seek`` (a scripted pusher), a stable-baselines3 model (``.zip``), or a training run folder (its latest agent
checkpoint). Files are named
``<root>/videos/<env_id>-<policy>-seed<seed>.mp4`` (root: the run folder when one is given, else ``runs``).

:func:`record_with_gym` records through Gymnasium's own ``RecordVideo`` wrapper instead.

    tdwgym record --env TDWRoom-Occlusion-v0 --policy orbit --steps 120
    tdwgym record --run runs/curiosity --steps 300            # the run's agent and world model, four panels
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.policies import BUILTIN_POLICIES, latest_agent, load_policy
from tdwgym.video import PANEL_TITLES, compose_panels, draw_text, error_heatmap, reward_plot, write_video

# load_policy lives in tdwgym.policies; it stays importable from here for existing callers.
__all__ = ["add_record_parser", "default_video_path", "load_policy", "record_episode", "record_with_gym", "run_env_id"]


def default_video_path(
    env_id: str,
    policy: str,
    seed: int,
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = "runs",
    ext: str = ".mp4",
) -> Path:
    """``<run_dir or root>/videos/<env_id>-<policy>-seed<seed><ext>``."""
    base = Path(run_dir) if run_dir is not None else Path(root)
    safe_policy = "".join(c if c.isalnum() or c in "-_." else "_" for c in policy)
    return base / "videos" / f"{env_id}-{safe_policy}-seed{seed}{ext}"


def _push_text(info: dict[str, Any]) -> str:
    push = info.get("push") or {}
    if not push.get("attempted"):
        text = ""
    elif push.get("moved"):
        text = f"push: moved #{push.get('object_id')}"
    elif push.get("hit"):
        text = f"push: hit #{push.get('object_id')}"
    else:
        text = "push: missed"
    events = info.get("events") or []
    if events:
        text = (text + "  " if text else "") + "event: " + ", ".join(map(str, events))
    return text


DEFAULT_ENV = "TDWRoom-Occlusion-v0"
"""Env of ``tdwgym record`` when neither ``--env`` nor ``--run`` names one."""


def run_env_id(run_dir: str | os.PathLike) -> str | None:
    """The env id a training run folder was trained on (its ``config.json``), or None when it names none."""
    config = Path(run_dir) / "config.json"
    if not config.exists():
        return None
    return json.loads(config.read_text()).get("env_id") or None


def record_episode(
    env_id: str,
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
    """Record one episode (``steps`` steps from ``reset(seed=seed)``) to video.

    Args:
        env_id: Gymnasium id.
        out: Output file (.mp4 or .gif); default :func:`default_video_path`.
        policy: Built-in name, SB3 ``.zip`` or run folder (see :func:`load_policy`). With ``run_dir`` and the
            default ``"random"``, the run's agent acts when it has one.
        world_model: A world-model checkpoint (``world_model.pt``) or run folder; adds the prediction, error and
            reward panels. Default: the run's world model when ``run_dir`` is given.
        run_dir: A training run folder: default source of policy, world model, env settings and output folder.
        steps: Env steps; the video has ``steps + 1`` frames (the reset frame first).
        seed: Seed of the scene and the policy.
        panel_size: Pixel edge of each panel (plain recordings render the env at this size).
        fps: Frames per second; default the env's ``metadata["render_fps"]``.
        gif: Write a GIF instead of an mp4 when ``out`` is not given.
        progress: Show a progress bar.
        device: Torch device of the world model and agent (``"auto"``: CUDA when available).
        env_kwargs: Extra ``gym.make`` arguments (the run's ``env_kwargs`` otherwise).

    Returns:
        The video's path.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if out is not None and Path(out).suffix.lower() not in (".mp4", ".gif"):  # fail before recording
        raise ValueError(f"unsupported video extension {Path(out).suffix!r}; use .mp4 or .gif")
    kwargs: dict[str, Any] = {}
    if run_dir is not None:
        run = Path(run_dir)
        if not run.is_dir():
            raise FileNotFoundError(f"run directory {run} does not exist")
        config = run / "config.json"
        if config.exists():
            cfg = json.loads(config.read_text())
            kwargs.update(cfg.get("env_kwargs") or {})
        if world_model is None:
            world_model = run
        if policy == "random" and latest_agent(run) is not None:
            policy = str(run)
    kwargs.update(env_kwargs or {})

    stepper = None
    if world_model is not None:
        from tdwgym.agents.device import configure_torch_threads
        from tdwgym.agents.evaluate import ModelStepper, load_run

        configure_torch_threads()

        loaded = load_run(
            run_dir=world_model if Path(world_model).is_dir() else None,
            model_path=None if Path(world_model).is_dir() else world_model,
            device=device,
        )
        stepper = ModelStepper(loaded.model)  # resizes observations to the model's frame size, as in training
        kwargs["obs_mode"] = "rgb"
    env = gym.make(env_id, render_mode="rgb_array", render_size=panel_size, **kwargs)
    try:
        pol = load_policy(policy, env, seed=None, device=device)
        label = pol.name
        if out is None:
            out = default_video_path(env_id, label, seed, run_dir=run_dir, ext=".gif" if gif else ".mp4")
        fps = float(fps or env.metadata.get("render_fps", 30))
        obs, info = env.reset(seed=seed)
        pol.reset(seed)
        rewards: list[float] = []
        frames = []

        def frame(obs: Any, info: dict[str, Any], t: int, pred: np.ndarray | None) -> np.ndarray:
            caption = [f"{env_id}  step {t}/{steps}  policy {label}", _push_text(info)]
            if stepper is None:
                return compose_panels([env.render()], caption, panel_size)
            seen = stepper.seen  # the observation at the world model's size (it may be smaller)
            err = error_heatmap(pred, seen) if pred is not None else None
            plot = reward_plot(rewards, panel_size, length=steps + 1)
            return compose_panels([seen, pred, err, plot], caption, panel_size, titles=PANEL_TITLES)

        if stepper is not None:
            stepper.reset(obs)
        frames.append(frame(obs, info, 0, None))
        for t in tqdm(range(1, steps + 1), desc=f"record {env_id} ({label})", unit="step", disable=not progress):
            action = pol(obs)
            obs, _, terminated, truncated, info = env.step(action)
            pred = None
            if stepper is not None:
                surprise, pred = stepper.step(action, obs, env.action_space)
                rewards.append(surprise)
            frames.append(frame(obs, info, t, pred))
            if terminated or truncated:
                obs, info = env.reset()
                pol.reset()
                if stepper is not None:
                    stepper.reset(obs)
                frames[-1] = draw_text(frames[-1], ["episode end"], origin=(frames[-1].shape[1] - 80, 3))
    finally:
        env.close()
    return write_video(frames, out, fps=fps)


def record_with_gym(
    env_id: str,
    video_folder: str | os.PathLike,
    policy: str = "random",
    steps: int = 300,
    seed: int = 0,
    render_size: int = 256,
    name_prefix: str | None = None,
    **env_kwargs: Any,
) -> list[Path]:
    """Record with Gymnasium's ``RecordVideo`` wrapper (plain frames, one file per episode, its own file names).

    Returns:
        The video files written (``<name_prefix>-episode-<n>.mp4``).
    """
    from gymnasium.wrappers import RecordVideo

    env = gym.make(env_id, render_mode="rgb_array", render_size=render_size, **env_kwargs)
    prefix = name_prefix or f"{env_id}-{policy if policy in BUILTIN_POLICIES else 'agent'}-seed{seed}"
    env = RecordVideo(env, str(video_folder), episode_trigger=lambda _: True, name_prefix=prefix, disable_logger=True)
    try:
        pol = load_policy(policy, env, seed=None)
        obs, _ = env.reset(seed=seed)
        pol.reset(seed)
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(pol(obs))
            if terminated or truncated:
                obs, _ = env.reset()
                pol.reset()
    finally:
        env.close()
    return sorted(Path(video_folder).glob(f"{prefix}-episode-*.mp4"))


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
        args.env = (run_env_id(args.run) if args.run and Path(args.run).is_dir() else None) or DEFAULT_ENV
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
