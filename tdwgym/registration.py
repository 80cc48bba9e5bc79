"""Every Gymnasium registration of tdwgym, in one place."""

from __future__ import annotations

import gymnasium as gym

MAX_EPISODE_STEPS = 300

ENV_IDS: dict[str, str] = {
    "TDWRoom-Occlusion-v0": "tdwgym.envs.occlusion:OcclusionEnv",
}
"""Registered id -> entry point."""


def register_envs() -> None:
    """Register every tdwgym id (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=MAX_EPISODE_STEPS)
