"""Where the curiosity reward goes: a random policy's steps, split by what happened in them.

    python scripts/reward_split.py --steps 5000                        # tdwgym train's defaults
    python scripts/reward_split.py --train-overrides '{"reward_gate": "still", "action_baseline": "zscore"}'

Runs ``tdwgym train``'s environment stack (Playroom level 1 by default, ``CuriosityVecEnv`` with the given settings,
the world model learning online) under uniformly random actions for ``--steps`` vector steps, and sums the
normalised intrinsic reward of the second half of them over five kinds of step: a no-op with every object at rest,
a no-op while something moves, a push that moved an object, and a push that did not (at rest, or while something
moves). A reward that pays watching as much as pushing teaches a policy to watch (docs/agents.md).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from tdwgym.agents.training import TrainConfig, make_vec_env
from tdwgym.envs.base import DISCRETE_ACTIONS

MOVING_SPEED = 0.05
"""An object faster than this (m/s) counts as moving."""

NOOP, PUSH = DISCRETE_ACTIONS.index("noop"), DISCRETE_ACTIONS.index("push")


def reward_split(cfg: TrainConfig, steps: int, seed: int = 0) -> list[dict[str, float]]:
    """Rows of (kind, steps, reward sum, mean, share of steps paid) over the second half of ``steps``."""
    venv, _ = make_vec_env(cfg)
    try:
        venv.reset()
        rng = np.random.default_rng(seed)
        rows = []
        for t in range(steps):
            actions = rng.integers(0, len(DISCRETE_ACTIONS), size=cfg.n_envs)
            _, _, _, infos = venv.step(actions)
            if t < steps // 2:
                continue
            for action, info in zip(actions, infos, strict=True):
                speeds = [np.linalg.norm(o["velocity"]) for o in info["objects"].values()]
                moving = max(speeds, default=0.0) >= MOVING_SPEED
                rows.append((int(action), moving, bool(info["push"]["moved"]), info["curiosity"]["r_int"]))
    finally:
        venv.close()
    kinds = {
        "no-op, every object at rest": lambda a, m, p: a == NOOP and not m,
        "no-op while something moves": lambda a, m, p: a == NOOP and m,
        "push that moved an object": lambda a, m, p: a == PUSH and p,
        "push that moved nothing, all at rest": lambda a, m, p: a == PUSH and not p and not m,
        "push that moved nothing, something moving": lambda a, m, p: a == PUSH and not p and m,
        "any other action": lambda a, m, p: a not in (NOOP, PUSH),
    }
    table = []
    for kind, test in kinds.items():
        r = np.array([row[3] for row in rows if test(*row[:3])], dtype=float)
        table.append(
            {
                "kind": kind,
                "steps": int(r.size),
                "reward_sum": float(r.sum()),
                "mean": float(r.mean()) if r.size else 0.0,
                "paid_share": float((r > 0).mean()) if r.size else 0.0,
            }
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="vector steps (x n_envs transitions)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--train-overrides", type=json.loads, default={}, help="TrainConfig fields (JSON), e.g. the reward's"
    )
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        **{"seed": args.seed, "vec_env": "dummy", "wm_background": False, "progress_bar": False, **args.train_overrides}
    )
    print(f"reward_gate {cfg.reward_gate}, action_baseline {cfg.action_baseline}, gamma {cfg.gamma}")
    print("| step kind | steps | reward sum | mean | share paid |\n|---|---:|---:|---:|---:|")
    for row in reward_split(cfg, args.steps, args.seed):
        print(
            f"| {row['kind']} | {row['steps']} | {row['reward_sum']:.2f} | {row['mean']:.3f} | "
            f"{row['paid_share']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
