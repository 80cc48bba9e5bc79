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
  predicted feature (image centre, box, log area, fill, colour, 3D position);
- on steps whose action moved the camera, by how many frames in a row the slot had been seen whole before (0: it
  came back into view, or was cut by the image edge or a nearer object): its mean surprise, the mean squared
  standardised error of its 3D x and image centre x (1 where the model's spread is right), and the speed the model
  gives it after the step (every object in Playroom stands still unless pushed).

``--model-kwargs JSON`` switches settings of the model that have no weights at load (``{"ego_tracked": true,
"reacquire": true}``), to measure what they change on the same weights.

It prints and writes the tables (``--doc``, default docs/results/DATE-reward-sources.md; ``''`` for none).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("centre x", "centre y", "width", "height", "log area", "fill", "red", "green", "blue", "x", "y", "depth")
"""The predicted features, in the order of :data:`tdwgym.agents.models.objects.PREDICTED`."""
AWAY_BINS = ((0, 1), (1, 5), (5, 30), (30, 10**9))
WHOLE_BINS = ("0", "1", "2", "3+")
"""Frames in a row a slot had been seen whole before a camera-moving step (the last bin: 3 or more)."""


def measure(
    world_model: str,
    policy: str,
    steps: int,
    seed: int,
    after: int,
    settings: dict | None = None,
    terms: str = "whole",
) -> dict:
    """Step ``policy`` for ``steps`` steps in Playroom level 1 (scene seeds ``seed``, ``seed + 1``, ...) and split
    the frozen model's reward (see the module docstring); ``settings``: model settings without weights, over the
    file's; ``terms``: what the reward counts (the curiosity's ``wm_surprise``).

    Raises:
        ValueError: ``settings`` that are not the model's, or that would change its weights.
    """
    import gymnasium as gym
    import torch

    import tdwgym  # noqa: F401 - registers the ids
    from tdwgym.agents.models import Stream, load_world_model
    from tdwgym.agents.models.slots import CLIP_B, CLIP_L, VISIBLE
    from tdwgym.envs.base import DISCRETE_ACTIONS

    try:
        model = load_world_model(world_model, device="cpu", settings=settings)
    except ValueError as exc:
        raise ValueError(f"--model-kwargs {exc}") from None
    model.surprise_terms = terms
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
    whole_run = np.zeros(model.slots)  # frames in a row each slot was seen whole
    tracked = np.zeros((len(WHOLE_BINS), 5))  # slot-frames, surprise, x error, centre x error, speed
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
            if info["camera_moved"]:
                speed = model.predicted_objects(prepared)["velocity"][0].norm(dim=-1).numpy() * 30  # m/s
                for k in np.flatnonzero(slot):
                    feat = parts["z2"][0, k].clamp(max=25.0).numpy()
                    b = min(int(whole_run[k]), len(WHOLE_BINS) - 1)
                    tracked[b] += (1, slot[k], feat[FEATURES.index("x")], feat[FEATURES.index("centre x")], speed[k])
            seen_whole = (nxt[0, :, VISIBLE] > 0) & (nxt[0, :, CLIP_L : CLIP_B + 1].max(-1).values <= 0)
            whole_run = np.where(seen_whole.numpy(), whole_run + 1, 0)
            for k in np.flatnonzero(slot):
                b = next(i for i, (lo, hi) in enumerate(AWAY_BINS) if lo <= away[k] < hi)
                by_away[b] += (max(float(slot[k]), 0.0), 1)
            z2 += (parts["z2"][0].clamp(max=25.0) * (torch.from_numpy(slot) != 0)[:, None]).sum(0).numpy()
            away = np.where(nxt[0, :, VISIBLE].numpy() > 0, 0, away + 1)
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
                stream = Stream(model, table(obs))
                away[:], whole_run[:], last_push = 0, 0, -(10**9)
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
        "tracked": [
            {
                "whole_before": name,
                "slot_frames": int(n),
                **{
                    key: float(v / max(n, 1))
                    for key, v in zip(("surprise", "z2_x", "z2_centre_x", "speed"), rest, strict=True)
                },
            }
            for name, (n, *rest) in zip(WHOLE_BINS, tracked, strict=True)
        ],
    }


def format_page(result: dict, command: str, world_model: str, policy: str, after: int, terms: str = "whole") -> str:
    """The markdown page of one measurement."""
    lines = [
        f"# Where the objects model's curiosity reward comes from: `{policy}` policy",
        "",
        f"Written by `{command}`: world model `{world_model}` (frozen, surprise terms `{terms}`), Playroom level 1, "
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
    lines += [
        "",
        "Camera-moving steps, by how many frames in a row the slot had been seen whole before (squared standardised "
        "errors: 1 where the spread is right; speed: the model's, after the step):",
        "",
        "| seen whole before (frames) | slot-frames | mean surprise | x error^2 | centre x error^2 | speed (m/s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['whole_before']} | {r['slot_frames']} | {r['surprise']:.2f} | {r['z2_x']:.2f} | {r['z2_centre_x']:.2f} "
        f"| {r['speed']:.2f} |"
        for r in result["tracked"]
    ]
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
        "--model-kwargs",
        type=json.loads,
        default={},
        help='model settings without weights, JSON: {"ego_tracked": true}',
    )
    p.add_argument(
        "--surprise-terms",
        choices=("whole", "motion"),
        default="whole",
        help="what the reward counts (tdwgym train --wm-surprise): looks and motion, or motion only",
    )
    p.add_argument(
        "--doc", default=None, help="markdown page ('' for none; default docs/results/DATE-reward-sources.md)"
    )
    args = p.parse_args(argv)
    if args.steps < 1 or args.after < 1:
        p.error(f"--steps and --after must be >= 1, got {args.steps} and {args.after}")
    try:
        result = measure(
            args.world_model, args.policy, args.steps, args.seed, args.after, args.model_kwargs, args.surprise_terms
        )
    except ValueError as exc:
        p.error(str(exc))
    command = shlex.join(["python", "scripts/reward_sources.py", *(argv if argv is not None else sys.argv[1:])])
    page = format_page(result, command, args.world_model, args.policy, args.after, args.surprise_terms)
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
