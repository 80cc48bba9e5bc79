"""Every Gymnasium registration of tdwgym, in one place."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS: dict[str, str] = {
    "TDWRoom-Occlusion-v0": "tdwgym.envs.occlusion:OcclusionEnv",
    "TDWRoom-Collision-v0": "tdwgym.envs.collision:CollisionEnv",
    "TDWRoom-Gravity-v0": "tdwgym.envs.gravity:GravityEnv",
    "TDWRoom-Stability-v0": "tdwgym.envs.stability:StabilityEnv",
    "TDWRoom-Playroom-v0": "tdwgym.envs.playroom:PlayroomEnv",
}
"""Registered id -> entry point."""

EPISODE_STEPS: dict[str, int] = {
    "TDWRoom-Occlusion-v0": 300,
    "TDWRoom-Collision-v0": 150,
    "TDWRoom-Gravity-v0": 150,
    "TDWRoom-Stability-v0": 180,
    "TDWRoom-Playroom-v0": 500,
}
"""Registered id -> ``max_episode_steps`` (30 steps per simulated second at the default frame skip)."""


def short_names() -> dict[str, str]:
    """Short name -> id of every tdwgym env: ``"occlusion"`` for ``TDWRoom-Occlusion-v0``."""
    return {env_id.split("-")[1].lower(): env_id for env_id in ENV_IDS}


def resolve_env_id(name: str) -> str:
    """The Gymnasium id of an env named by its id or its short name (any case): ``"occlusion"``,
    ``"Occlusion"`` and ``"TDWRoom-Occlusion-v0"`` give ``"TDWRoom-Occlusion-v0"``. Ids that other packages
    registered with Gymnasium pass through.

    Raises:
        ValueError: No such env; the message lists the valid names.
    """
    if name in ENV_IDS or name in gym.registry:
        return name
    short = short_names()
    by_lower = {**short, **{v.lower(): v for v in ENV_IDS}}
    if str(name).lower() in by_lower:
        return by_lower[str(name).lower()]
    raise ValueError(
        f"unknown env {name!r}; valid envs are {', '.join(short)} (or their ids, e.g. {next(iter(ENV_IDS))})"
    )


def register_envs() -> None:
    """Register every tdwgym id (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            # Gymnasium's passive checker breaks an env whose first reset failed (e.g. seed=-1): it marks the reset
            # as checked, keeps no data, and every later step raises TypeError. The envs pass Gymnasium's and
            # SB3's full check_env in the test suite instead.
            gym.register(
                id=env_id,
                entry_point=entry_point,
                max_episode_steps=EPISODE_STEPS[env_id],
                disable_env_checker=True,
            )
