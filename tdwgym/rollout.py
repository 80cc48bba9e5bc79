"""Scripted and random rollouts of any tdwgym environment, saved as video."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.envs.base import DISCRETE_ACTIONS
from tdwgym.video import write_video

POLICIES: tuple[str, ...] = ("random", "static", "orbit")
"""Built-in policies: uniform random actions, no-ops, and a camera that keeps turning right."""


def make_policy(name: str, env: gym.Env, seed: int) -> Callable[[Any], Any]:
    """An ``obs -> action`` function for a built-in policy name (discrete action spaces)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid policies are {list(POLICIES)}")
    if name == "random":
        env.action_space.seed(seed)
        return lambda obs: env.action_space.sample()
    if isinstance(env.action_space, gym.spaces.Discrete):
        action = 0 if name == "static" else DISCRETE_ACTIONS.index("turn_right")
        return lambda obs: action
    control = np.zeros(5, dtype=np.float32)
    if name == "orbit":
        control[2] = 0.5
    return lambda obs: control.copy()


def record_rollout(
    env_id: str, out: str | os.PathLike, steps: int = 300, policy: str = "random", seed: int = 0,
    render_size: int = 256, progress: bool = True, **env_kwargs: Any,
) -> Path:
    """Run ``policy`` for ``steps`` steps from ``reset(seed=seed)`` and write the rendered frames to ``out``.

    The video has ``steps + 1`` frames (the reset frame, then one per step) at the env's ``render_fps``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    env = gym.make(env_id, render_mode="rgb_array", render_size=render_size, **env_kwargs)
    try:
        act = make_policy(policy, env, seed)
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        for _ in tqdm(range(steps), desc=f"{env_id} ({policy})", unit="step", disable=not progress):
            obs, _, terminated, truncated, _ = env.step(act(obs))
            frames.append(env.render())
            if terminated or truncated:
                obs, _ = env.reset()
        fps = env.metadata.get("render_fps", 30)
    finally:
        env.close()
    return write_video(frames, out, fps=fps)
