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


@pytest.fixture(autouse=True)
def _one_eval_worker_unless_asked(monkeypatch):
    """``evaluate()`` without ``workers`` runs one pool process per idle core, a number that depends on the load of
    the machine the suite runs on: the suite pins it to 1 so that no test starts a pool it did not ask for (the
    pool and the default are tested on their own in tests/agents/test_evaluate.py)."""
    import tdwgym.agents.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "default_workers", lambda device="cpu": 1)
