"""scripts/reward_split.py: a random policy's intrinsic reward, split by what happened in each step (tiny run)."""

from __future__ import annotations

from script_tools import load_script
from tiny_train import TINY_PPO


def test_reward_split_counts_every_step_of_the_second_half_once_and_only_gated_kinds_pay():
    module = load_script("reward_split")
    from tdwgym.agents.training import TrainConfig

    cfg = TrainConfig(**{**TINY_PPO, "wm_background": False, "reward_gate": "push", "device": "cpu"})
    table = module.reward_split(cfg, steps=24)
    assert sum(row["steps"] for row in table) == 12 * 2  # the second half of 24 vector steps of 2 envs
    by_kind = {row["kind"]: row for row in table}
    # the push gate pays nothing but pushes
    for kind in ("no-op, every object at rest", "no-op while something moves", "any other action"):
        assert by_kind[kind]["reward_sum"] == 0.0
    assert by_kind["any other action"]["steps"] > 0
