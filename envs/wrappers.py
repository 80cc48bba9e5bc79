"""Gymnasium wrappers: observations fitted to other libraries' conventions, and a shorter first episode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["ChannelsFirst", "FirstEpisodeLimit"]


class ChannelsFirst(gym.ObservationWrapper):
    """Move the channel axis of some image keys of a Dict observation to the front: ``(H, W, C)`` -> ``(C, H, W)``.

    Stable-Baselines3 transposes only uint8 images itself; float depth (and int32 segmentation, whose ids pass 255)
    must arrive channels-first for its CNNs::

        env = ChannelsFirst(gym.make("TDWRoom-Occlusion-v0", obs_mode="rgbd"))
        PPO("MultiInputPolicy", env, policy_kwargs={"normalize_images": False})  # a NatureCNN per key

    Args:
        env: An env with a Dict observation space.
        keys: The keys to transpose (default: depth and segmentation, those present).
    """

    def __init__(self, env: gym.Env, keys: Sequence[str] = ("depth", "segmentation")) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise ValueError(f"ChannelsFirst needs a Dict observation space (obs_mode rgbd or rgb_seg), got {space}")
        self.keys = tuple(k for k in keys if k in space.spaces)
        bad = [k for k in self.keys if len(space[k].shape) != 3]
        if bad:
            raise ValueError(f"ChannelsFirst needs (H, W, C) spaces; {bad} are not")
        self.observation_space = spaces.Dict(
            {
                k: spaces.Box(np.moveaxis(s.low, -1, 0), np.moveaxis(s.high, -1, 0), dtype=s.dtype)
                if k in self.keys
                else s
                for k, s in space.spaces.items()
            }
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """The observation with :attr:`keys` channels-first."""
        return {k: np.ascontiguousarray(np.moveaxis(v, -1, 0)) if k in self.keys else v for k, v in observation.items()}


class FirstEpisodeLimit(gym.Wrapper):
    """Truncate the env's first episode after ``steps`` steps; every later episode keeps the env's own limit.

    Vectorized envs that reset together and share one time limit stay in the same phase of their episodes for
    ever, so each PPO rollout sees one phase only (in Playroom, the start where objects are in front of the camera,
    or the rest where they are not). Giving env ``i`` of ``n`` a first episode of ``limit * (n - i) / n`` steps
    spreads the phases over the rollout (:func:`staggered_limits`). Episodes after the first are the env's own.

    Args:
        env: The env (its own time limit is left as it is).
        steps: Steps of the first episode, at least 1.
    """

    def __init__(self, env: gym.Env, steps: int) -> None:
        super().__init__(env)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"FirstEpisodeLimit needs steps >= 1 (an int), got {steps!r}")
        self.steps = int(steps)
        self._resets = 0
        self._elapsed = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env; the episodes after the first run to the env's own limit."""
        obs, info = self.env.reset(**kwargs)
        self._resets += 1
        self._elapsed = 0
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the env, truncating the first episode at :attr:`steps`."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._resets == 1:  # later episodes pass through untouched
            self._elapsed += 1
            truncated = truncated or self._elapsed >= self.steps
        return obs, reward, terminated, truncated, info


def staggered_limits(limit: int, n: int) -> list[int]:
    """First-episode lengths that spread ``n`` envs with episodes of ``limit`` steps evenly over an episode:
    ``limit * (n - i) / n`` for env ``i`` (env 0 runs a whole first episode).

    >>> staggered_limits(500, 4)
    [500, 375, 250, 125]
    """
    if limit < 1 or n < 1:
        raise ValueError(f"staggered_limits needs limit >= 1 and n >= 1, got limit={limit!r}, n={n!r}")
    return [max(1, round(limit * (n - i) / n)) for i in range(n)]
