"""Levels, splits and factors: every level and split reachable, train and test scenes disjoint, bad input."""

import gymnasium as gym
import numpy as np
import pytest

import tdwgym
from tdwgym.envs import IMPOSSIBLE_KINDS, LEVELS, SPLITS, scene_key, split_bucket
from tdwgym.envs.factors import Factor, check_in_band, shape_color_combinations

ENV_IDS = sorted(tdwgym.ENV_IDS)
LABEL_KEYS = {"scenario", "level", "split", "factors", "ood_factors", "impossible", "event_frame"}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("split", SPLITS)
def test_every_level_and_split_is_reachable_and_labelled(env_id, level, split):
    env = gym.make(env_id, level=level, split=split, resolution=8)
    try:
        _, info = env.reset(seed=level * 10 + SPLITS.index(split))
        labels = info["labels"]
        assert LABEL_KEYS <= set(labels)
        assert labels["level"] == level and labels["split"] == split and labels["impossible"] is None
        assert labels["event_frame"] is None and labels == env.unwrapped.scene.labels
        assert (len(labels["ood_factors"]) >= 1) == (split == "test_ood")
        assert check_in_band(env.unwrapped.FACTORS, labels) == []
    finally:
        env.close()


def _scenes(env_id: str, split: str, seeds: range, level: int):
    env = gym.make(env_id, split=split, level=level, resolution=8)
    try:
        return [env.unwrapped.sample_scene(s) for s in seeds]
    finally:
        env.close()


def _banned(labels) -> set:
    pairs = {(c.a_value, c.b_value) for c in shape_color_combinations()}
    f = labels["factors"]
    return {p for p in zip(f.get("shape", []), f.get("color", []), strict=False) if p in pairs}


@pytest.mark.parametrize(
    "env_id, level, n",
    [
        ("TDWRoom-Gravity-v0", 0, 2000),
        ("TDWRoom-Occlusion-v0", 1, 400),
        ("TDWRoom-Collision-v0", 2, 300),
        ("TDWRoom-Stability-v0", 1, 300),
        ("TDWRoom-Playroom-v0", 0, 300),
    ],
)
def test_train_and_test_scenes_never_coincide(env_id, level, n):
    train = _scenes(env_id, "train", range(n), level)
    test_id = _scenes(env_id, "test_id", range(n // 2), level)
    test_ood = _scenes(env_id, "test_ood", range(n // 2), level)
    keys = {
        name: {scene_key(s) for s in scenes}
        for name, scenes in (("train", train), ("test_id", test_id), ("test_ood", test_ood))
    }
    assert len(keys["train"]) == n  # different seeds, different scenes
    assert not keys["train"] & keys["test_id"] and not keys["train"] & keys["test_ood"]
    assert not keys["test_id"] & keys["test_ood"]
    factors = type(gym.make(env_id, resolution=8).unwrapped).FACTORS
    for s in train:
        assert split_bucket(s) != 0 and s.labels["ood_factors"] == [] and not _banned(s.labels)
        assert check_in_band(factors, s.labels) == []
    for s in test_id:
        assert split_bucket(s) == 0 and s.labels["ood_factors"] == [] and not _banned(s.labels)
        assert check_in_band(factors, s.labels) == []
    bands = set()
    for s in test_ood:
        assert s.labels["ood_factors"], s.labels
        assert check_in_band(factors, s.labels) == []
        bands |= {(k, v) for k, v in s.labels["factor_bands"].items() if v != "train"}
    assert {b for _, b in bands} >= {"low", "high"}  # several held-out bands are used


def test_same_seed_same_scene_and_reset_matches_sample_scene(env_id):
    env = gym.make(env_id, resolution=8, level=1)
    try:
        env.reset(seed=5)
        assert env.unwrapped.scene == env.unwrapped.sample_scene(5)
    finally:
        env.close()


def test_factor_bands_sample_where_declared():
    f = Factor("speed", "m/s", train=(1.0, 4.0), gap=(2.0, 2.5), low=(0.0, 0.8), high=(4.5, 6.0))
    rng = np.random.default_rng(0)
    for band in ("train", "low", "high", "gap"):
        values = [f.sample(rng, band, 0) for _ in range(500)]
        assert all(f.band_of(v, 0) == band for v in values)
    ints = Factor("blocks", train=(2, 4), high=(5, 6), integer=True)
    assert {ints.sample(rng, "train", 0) for _ in range(200)} == {2, 3, 4}
    with pytest.raises(ValueError, match="overlaps"):
        Factor("x", train=(1.0, 2.0), low=(0.5, 1.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"level": 4}, r"level 4.*\[0, 1, 2, 3\]"),
        ({"level": True}, "level"),
        ({"split": "val"}, r"\['train', 'test_id', 'test_ood'\]"),
        ({"impossible": "explode"}, r"'explode'.*valid values are \[None, 'vanish'"),
    ],
)
def test_bad_variant_kwargs_raise_listing_valid_values(env_id, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kwargs)


def test_unsupported_impossible_kind_lists_the_scenarios_kinds():
    with pytest.raises(ValueError, match=r"gravity.*\[None, 'vanish'"):
        gym.make("TDWRoom-Gravity-v0", impossible="pass_through")
    assert set(IMPOSSIBLE_KINDS) == set(gym.make("TDWRoom-Collision-v0", resolution=8).unwrapped.SUPPORTED_IMPOSSIBLE)


def test_unknown_scenario_is_an_error_listing_ids():
    with pytest.raises(gym.error.Error, match="TDWRoom-Foo"):
        gym.make("TDWRoom-Foo-v0")
