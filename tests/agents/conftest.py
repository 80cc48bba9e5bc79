"""Fixtures for the agents tests: a tiny image environment with known dynamics."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

torch.set_num_threads(1)


class SquareEnv(gym.Env):
    """A bright square moved by the actions on a dark ``size`` x ``size`` image.

    Actions (Discrete(5)): stay, up, down, left, right; or a Box(2) velocity when ``continuous``. The episode
    terminates after ``max_steps``; the terminal frame has a white top-left pixel block so tests can tell it apart.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, size: int = 36, max_steps: int = 7, continuous: bool = False) -> None:
        self.size, self.max_steps, self.continuous = size, max_steps, continuous
        self.observation_space = spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32) if continuous else spaces.Discrete(5)
        self.pos = np.zeros(2, dtype=np.int64)
        self.t = 0

    def _obs(self, terminal: bool = False) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        y, x = self.pos
        img[y : y + 6, x : x + 6] = (255, 128, 0)
        if terminal:
            img[:3, :3] = 255
        return img

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.integers(0, self.size - 6, size=2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if self.continuous:
            move = np.round(np.asarray(action, dtype=np.float64) * 3).astype(np.int64)
        else:
            move = np.array([[0, 0], [-3, 0], [3, 0], [0, -3], [0, 3]])[int(action)]
        self.pos = np.clip(self.pos + move, 0, self.size - 6)
        self.t += 1
        done = self.t >= self.max_steps
        return self._obs(terminal=done), 0.0, done, False, {"objects_in_view": 1, "push": {"moved": False}}

    def render(self):
        return self._obs()


@pytest.fixture
def square_env_fn() -> Callable[..., Callable[[], gym.Env]]:
    """Factory of SquareEnv constructors for DummyVecEnv."""

    def factory(**kwargs) -> Callable[[], gym.Env]:
        return lambda: SquareEnv(**kwargs)

    return factory


def make_batch(b: int = 8, k: int = 2, c: int = 3, hw: int = 16, action_dim: int = 5, seed: int = 0):
    """A random batch of uint8 transitions with one-hot actions."""
    from tdwgym.agents.models import Transitions

    g = torch.Generator().manual_seed(seed)
    ctx = torch.randint(0, 256, (b, k, c, hw, hw), generator=g, dtype=torch.uint8)
    nxt = torch.randint(0, 256, (b, c, hw, hw), generator=g, dtype=torch.uint8)
    act = torch.nn.functional.one_hot(torch.randint(0, action_dim, (b,), generator=g), action_dim).float()
    return Transitions(ctx, act, nxt)
