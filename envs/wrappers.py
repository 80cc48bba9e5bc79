"""Gymnasium wrappers: observations fitted to other libraries' conventions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["ChannelsFirst"]


class ChannelsFirst(gym.ObservationWrapper):
    """Move the channel axis of some image keys of a Dict observation to the front: ``(H, W, C)`` -> ``(C, H, W)``.

    Stable-Baselines3 transposes only uint8 images itself; float depth and int32 segmentation stay ``(H, W, 1)``.
    For SB3's policies use :func:`tdwgym.agents.multi_input_policy_kwargs` instead (it reads either layout and
    scales each key: RGB to [0, 1], depth to [0, 1], segmentation ids embedded). SB3's own ``normalize_images=False``
    is wrong for these observations: it leaves RGB at 0..255 and feeds ids to the network as magnitudes. This wrapper
    is for one's own networks that want channels first::

        env = ChannelsFirst(gym.make("TDWRoom-Occlusion-v0", obs_mode="rgbd"))  # depth (1, H, W)

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
