"""Where the `objects` model's curiosity reward comes from: per step of a scripted policy in Playroom, which steps,
slots and features carry the surprise (issue 31).

    python scripts/reward_sources.py --world-model pretrained --policy random --steps 1000
    python scripts/reward_sources.py --world-model runs/ft/world_model.pt --policy spin --doc ''

The reward audit (``tdwgym audit``) says *how much* a policy earns; this says *what for*. The world model (frozen,
its surprise terms ``whole``: the curiosity reward's) is stepped along one env with a random policy or a spinning
one (``turn_left`` on 80 % of the steps, random actions on the others), and each step's reward (the surprise summed
over slots, floored at 0 as the curiosity wrapper floors it) is split three ways:

- by the step: camera still or moved, and whether an object was set moving by a push in the last ``--after`` steps;
- by the slot: how many frames it had been out of view before (0: tracked through; more: found again);
- by the feature: the share of the squared standardised errors (capped at 5 std, as the reward caps them) of each
  predicted feature (image centre, box, log area, fill, colour, 3D position).

It prints and writes the tables (``--doc``, default docs/results/DATE-reward-sources.md; ``''`` for none).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("centre x", "centre y", "width", "height", "log area", "fill", "red", "green", "blue", "x", "y", "depth")
"""The predicted features, in the order of :data:`tdwgym.agents.models.objects.PREDICTED`."""
AWAY_BINS = ((0, 1), (1, 5), (5, 30), (30, 10**9))


def measure(world_model: str, policy: str, steps: int, seed: int, after: int) -> dict:
    """Step ``policy`` for ``steps`` steps in Playroom level 1 (scene seeds ``seed``, ``seed + 1``, ...) and split
    the frozen model's reward (see the module docstring)."""
    import gymnasium as gym
    import torch

    import tdwgym  # noqa: F401 - registers the ids
    from tdwgym.agents.models import Stream, load_world_model
    from tdwgym.agents.models.slots import VISIBLE
    from tdwgym.envs.base import DISCRETE_ACTIONS

    model = load_world_model(world_model, device="cpu").eval()
    model.surprise_terms = "whole"
    res = model.resolution[0]
    env = gym.make("TDWRoom-Playroom-v0", level=1, push_cone=20.0, resolution=res, obs_mode="rgbd_seg")
    rng = np.random.default_rng(seed)
    turn = DISCRETE_ACTIONS.index("turn_left")

    def table(obs: dict) -> torch.Tensor:
        return model.frames_from(obs["rgb"][None], obs["segmentation"][None, ..., 0], obs["depth"][None, ..., 0])

    episode = 0
    obs, _ = env.reset(seed=seed)
    stream = Stream(model, table(obs))
    away = np.zeros(model.slots)
    last_push = -(10**9)
    kinds: dict[str, list[float]] = {"still": [], "moved": [], "after a moving push": []}
    by_away = np.zeros((len(AWAY_BINS), 2))  # positive surprise, slot-frames
    z2 = np.zeros(len(FEATURES))
    try:
        for t in range(steps):
            action = turn if policy == "spin" and rng.random() < 0.8 else int(rng.integers(len(DISCRETE_ACTIONS)))
            obs, _, terminated, truncated, info = env.step(action)
            vec = torch.zeros(1, len(DISCRETE_ACTIONS))
            vec[0, action] = 1.0
            nxt = table(obs)
            prepared = stream.prepare(vec)
            parts = model.surprise_parts(prepared, nxt)
            stream.advance(prepared, vec, nxt)
            slot = parts["surprise"][0].numpy()
            if (info.get("push") or {}).get("moved"):
                last_push = t
            kind = "after a moving push" if t - last_push < after else "moved" if info["camera_moved"] else "still"
            kinds[kind].append(max(float(slot.sum()), 0.0))
            for k in np.flatnonzero(slot):
                b = next(i for i, (lo, hi) in enumerate(AWAY_BINS) if lo <= away[k] < hi)
                by_away[b] += (max(float(slot[k]), 0.0), 1)
            z2 += (parts["z2"][0].clamp(max=25.0) * (torch.from_numpy(slot) != 0)[:, None]).sum(0).numpy()
            away = np.where(nxt[0, :, VISIBLE].numpy() > 0, 0, away + 1)
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
                stream = Stream(model, table(obs))
                away[:], last_push = 0, -(10**9)
    finally:
        env.close()
    total = sum(sum(v) for v in kinds.values())
    return {
        "steps": steps,
        "reward_per_step": total / steps,
        "kinds": {
            k: {
                "steps": len(v),
                "reward_per_step": float(np.mean(v)) if v else 0.0,
                "share": sum(v) / max(total, 1e-12),
            }
            for k, v in kinds.items()
        },
        "away": [
            {
                "frames": f"{lo}" if hi == lo + 1 else f"{lo}+" if hi > 10**8 else f"{lo}-{hi - 1}",
                "slot_frames": int(n),
                "share": float(s / max(by_away[:, 0].sum(), 1e-12)),
            }
            for (lo, hi), (s, n) in zip(AWAY_BINS, by_away, strict=True)
        ],
        "features": {f: float(v / max(z2.sum(), 1e-12)) for f, v in zip(FEATURES, z2, strict=True)},
    }


def format_page(result: dict, command: str, world_model: str, policy: str, after: int) -> str:
    """The markdown page of one measurement."""
    lines = [
        f"# Where the objects model's curiosity reward comes from: `{policy}` policy",
        "",
        f"Written by `{command}`: world model `{world_model}` (frozen, surprise terms `whole`), Playroom level 1, "
        f"{result['steps']} steps; reward per step = the surprise summed over slots, floored at 0 "
        f"({result['reward_per_step']:.2f} on average).",
        "",
        "| steps | count | reward / step | share of the reward |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "still": "camera still",
        "moved": "camera moved",
        "after a moving push": f"the {after} after a moving push",
    }
    for kind, row in result["kinds"].items():
        lines.append(f"| {names[kind]} | {row['steps']} | {row['reward_per_step']:.2f} | {row['share']:.3f} |")
    lines += [
        "",
        "| slot out of view before (frames) | slot-frames | share of the positive surprise |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['frames']} | {r['slot_frames']} | {r['share']:.3f} |" for r in result["away"]]
    lines += ["", "| feature | share of the squared standardised errors |", "|---|---:|"]
    ranked = sorted(result["features"].items(), key=lambda kv: -kv[1])
    lines += [f"| {name} | {share:.3f} |" for name, share in ranked]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the measurement, print the page and write it to ``--doc``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world-model", default="pretrained", help="a shipped model's name or a world_model.pt")
    p.add_argument("--policy", choices=("random", "spin"), default="random")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1, help="first scene seed and the actions' seed")
    p.add_argument("--after", type=int, default=8, help="steps after a moving push that count as its aftermath")
    p.add_argument(
        "--doc", default=None, help="markdown page ('' for none; default docs/results/DATE-reward-sources.md)"
    )
    args = p.parse_args(argv)
    if args.steps < 1 or args.after < 1:
        p.error(f"--steps and --after must be >= 1, got {args.steps} and {args.after}")
    result = measure(args.world_model, args.policy, args.steps, args.seed, args.after)
    command = shlex.join(["python", "scripts/reward_sources.py", *(argv if argv is not None else sys.argv[1:])])
    page = format_page(result, command, args.world_model, args.policy, args.after)
    print(page)
    doc = args.doc
    if doc is None:
        doc = f"docs/results/{datetime.now(timezone.utc).date().isoformat()}-reward-sources.md"
    if doc:
        path = Path(doc) if Path(doc).is_absolute() else ROOT / doc
        path.write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
