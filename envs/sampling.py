"""How scenes are drawn: an env's scene for a seed in its split and level (:func:`draw_scene`, behind
:meth:`tdwgym.envs.base.TDWRoomEnv.sample_scene`), the hash that puts every scene in one split (:func:`scene_key`,
:func:`split_bucket`, :data:`SPLIT_SALT`), and the bounded rejection sampling the scenario generators use
(:func:`sample_until`, :class:`SceneGenerationError`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from tdwgym.sim.scene import SceneSpec

__all__ = [
    "SPLIT_BUCKETS",
    "SPLIT_SALT",
    "SceneGenerationError",
    "draw_scene",
    "sample_until",
    "scene_key",
    "split_bucket",
]

SPLIT_BUCKETS = 4
"""Scenes hash into this many buckets; bucket 0 is test_id's, the others train's."""

SPLIT_SALT = {"train": 0x7261696E, "test_id": 0x69645F69, "test_ood": 0x6F6F645F}
"""Split -> the salt of its scenes' random stream (train and test_id streams never coincide)."""

T = TypeVar("T")


class SceneGenerationError(RuntimeError):
    """A scene generator ran out of attempts (objects could not be placed without overlap)."""


def sample_until(
    rng: np.random.Generator,
    draw: Callable[[np.random.Generator], T],
    accept: Callable[[T], bool],
    attempts: int = 200,
    what: str = "placement",
) -> T:
    """Bounded rejection sampling: ``draw`` until ``accept``, at most ``attempts`` times.

    Raises:
        SceneGenerationError: After the last failed attempt.
    """
    for _ in range(attempts):
        candidate = draw(rng)
        if accept(candidate):
            return candidate
    raise SceneGenerationError(
        f"could not find a valid {what} in {attempts} attempts; the room may be too small for the objects asked for"
    )


def scene_key(scene: SceneSpec) -> str:
    """A digest of a scene's content (room, objects, props, camera, light, gravity; not labels or events, nor
    whether the room has a ceiling: a seed draws the same scene, in the same split, with or without one)."""
    data = dataclasses.replace(scene, labels={}, events=()).to_dict()
    data["room"].pop("ceiling")
    data["room"].pop("ceiling_color")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def split_bucket(scene: SceneSpec) -> int:
    """The bucket (0 .. :data:`SPLIT_BUCKETS` - 1) a scene hashes to: 0 may only be test_id, the others train."""
    return int(scene_key(scene)[:8], 16) % SPLIT_BUCKETS


def draw_scene(env: Any, seed: int | None = None, rng: np.random.Generator | None = None) -> SceneSpec:
    """The scene ``env.reset(seed=seed)`` starts from, before any impossible event is added (no simulation); sets
    ``env.plan``. ``env`` is a :class:`~tdwgym.envs.base.TDWRoomEnv` (see its :meth:`sample_scene`).

    Raises:
        SceneGenerationError: When no scene of the env's split could be drawn in 100 attempts.
    """
    if (seed is None) == (rng is None):
        raise ValueError("pass exactly one of seed and rng")
    source = np.random.default_rng(seed) if rng is None else rng
    entropy = int(source.integers(0, 2**63))
    scene_rng = np.random.default_rng([entropy, SPLIT_SALT[env.split], env.level])
    for _ in range(100):
        env.plan = env.FACTORS.plan(scene_rng, env.split, env.level)
        scene = env._generate_scene(scene_rng)
        if env.split == "test_ood" or (split_bucket(scene) == 0) == (env.split == "test_id"):
            break
    else:
        raise SceneGenerationError(f"no {env.split} scene found in 100 attempts")
    if not env.ceiling:
        scene = dataclasses.replace(scene, room=dataclasses.replace(scene.room, ceiling=False))
    labels = {
        "scenario": env.SCENARIO,
        **scene.labels,
        **env.plan.labels(),
        "impossible": None,
        "event_frame": None,
    }
    return dataclasses.replace(scene, labels=labels)
