"""Shared fixtures: every registered id, parametrised."""

from __future__ import annotations

import gymnasium as gym
import pytest

import tdwgym

ENV_IDS = sorted(tdwgym.ENV_IDS)


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_env():
    """Factory that closes every env it made at teardown."""
    made: list[gym.Env] = []

    def _make(env_id: str = "TDWRoom-Occlusion-v0", **kwargs) -> gym.Env:
        env = gym.make(env_id, **kwargs)
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()
