"""Section 4 of the evaluation, exploration: pushes that moved an object, objects seen and floor coverage of the
run's agent beside a random policy."""

from __future__ import annotations

import contextlib
from typing import Any

import gymnasium as gym

from tdwgym.agents import metrics as M
from tdwgym.agents.evaluation.plan import (
    EvalEpisode,
    EvalPlan,
    _env_kwargs,
    _mean,
    run_episode,
)


def run_section_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, float]:
    """One exploration episode of a policy: pushes, objects seen, floor coverage."""
    from tdwgym.tools.policies import load_policy

    loaded, s = plan.loaded, plan.settings
    (name,) = ep_.group
    # the agent acts at the resolution it was trained at (the world model plays no part in this section)
    kwargs = {**_env_kwargs(plan.env_kwargs), "obs_mode": "rgb_seg", "split": "test_id"}
    with contextlib.closing(gym.make(plan.env_id, **kwargs)) as env:
        if name == "agent":
            spec, frame_stack, device = str(loaded.agent_path), loaded.frame_stack, str(plan.device)
            pol = load_policy(spec, env, ep_.seed, frame_stack=frame_stack, device=device)
        else:
            pol = load_policy(name, env, ep_.seed)
        ep = run_episode(env, s.exploration_steps, ep_.seed, pol)
    row = M.exploration_counts(ep.infos[1:])
    row["objects_total"] = float(len(ep.infos[0].get("objects", {})))
    poses = [(i["camera"]["position"], i["camera"]["yaw"], i["camera"]["pitch"]) for i in ep.infos]
    row["floor_coverage"] = M.floor_coverage(poses, ep.room, ep.fov, aspect=ep.frames.shape[2] / ep.frames.shape[1])
    return row


def summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 4: pushes that moved an object, objects seen, floor coverage; the run's agent beside random."""
    s = plan.settings
    out: dict[str, Any] = {"episodes": s.exploration_episodes, "steps": s.exploration_steps, "policies": {}}
    for name in dict.fromkeys(ep.group[0] for ep, _ in done):
        rows = [r for ep, r in done if ep.group == (name,)]
        agg = {key: _mean([r[key] for r in rows]) for key in rows[0]}
        agg["pushes_moved_per_1k"] = 1000.0 * (agg["pushes_moved"] or 0.0) / max(agg["steps"] or 1.0, 1.0)
        out["policies"][name] = agg
    if plan.loaded.agent_path is None:
        out["note"] = "no agent in the run: the random policy only"
    return out
