"""Frame by frame, what the ``objects`` world model expects of the probed object in one VoE quadruplet.

    python scripts/trace_objects.py --model pretrained --kind teleport --item 1 --level 1

Draws the item ``tdwgym eval`` draws for ``--kind`` and ``--item`` (Occlusion, still camera, ``--split`` scenes,
seed ``--seed + 50,000 + 1,000 * kind + item``, re-drawn by the evaluation's rule: :func:`draw_twins`), runs the model
along its four clips (``A``, ``B``, ``A|B``, ``B|A``) and prints, per clip, the headline (mean surprise from the
event frame on) and the pairwise verdicts, then per frame for the probed object's slot: whether it is seen (and
seen whole), its measured 3D ``x`` (centroid of its visible surface, metres, camera coordinates), the model's
predicted ``x`` and velocity along ``x`` (cm per frame) for that frame, the predicted probability of seeing it, and
the slot's surprise. ``--model-kwargs`` switches settings without weights (as ``tdwgym pretrain --model-kwargs``
names them). It reads no scorer's result to choose the item.
"""

from __future__ import annotations

import argparse
import json
import sys

import gymnasium as gym
import numpy as np
import torch

import tdwgym  # noqa: F401 - registers the envs
from tdwgym.agents import metrics as M
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.evaluation.plan import model_frames
from tdwgym.agents.evaluation.voe import VOE_HEADLINE, draw_twins, item_clips
from tdwgym.agents.models.registry import load_world_model
from tdwgym.agents.models.slots import CLIP_B, CLIP_L, VISIBLE, X

KINDS = ("vanish", "appear", "teleport", "shape_change", "color_change")
NAMES = ("A", "B", "A|B", "B|A")


def load(spec: str, settings: dict) -> torch.nn.Module:
    """The model ``spec`` (a shipped name or a file) with ``settings`` (without weights) switched."""
    try:
        return load_world_model(spec, device="cpu", settings=settings)
    except ValueError as exc:
        raise SystemExit(f"--model-kwargs {exc}") from None


@torch.no_grad()
def trace(model, x: torch.Tensor, actions: torch.Tensor, slot: int) -> tuple[np.ndarray, list[dict]]:
    """Per clip the summed surprise of every transition ``(N, T - 1)`` and, per frame, the slot's record."""
    n, t = x.shape[:2]
    state, out, rows = None, [], []
    for i in range(t - 1):
        prepared = model.prepare(x[:, i : i + 1], actions[:, i], state=state)
        parts = model.surprise_parts(prepared, x[:, i + 1])  # re-aims the prior first (ego correction)
        pred = model.predicted_objects(prepared)
        nxt = x[:, i + 1, slot]
        rows.append(
            {
                "seen": nxt[:, VISIBLE].numpy(),
                "whole": (nxt[:, VISIBLE] * (nxt[:, CLIP_L : CLIP_B + 1].max(-1).values <= 0)).numpy(),
                "x": nxt[:, X].numpy(),
                "pred_x": pred["position"][:, slot, 0].numpy(),
                "vx": pred["velocity"][:, slot, 0].numpy() * 100,
                "p_seen": pred["visible"][:, slot].numpy(),
                "surprise": parts["surprise"][:, slot].numpy(),
            }
        )
        out.append(parts["surprise"].sum(-1).numpy())
        state = model.next_state(prepared)
    return np.stack(out, 1), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pretrained", help="a shipped model's name or a world_model.pt")
    parser.add_argument("--model-kwargs", type=json.loads, default={}, help="settings without weights (JSON)")
    parser.add_argument("--kind", default="teleport", choices=KINDS)
    parser.add_argument("--item", type=int, default=0, help="the item's index among the kind's (default 0)")
    parser.add_argument("--level", type=int, default=1, choices=[0, 1, 2, 3])
    parser.add_argument("--split", default="test_id", choices=["test_id", "test_ood"])
    parser.add_argument("--seed", type=int, default=10_000, help="the evaluation's first seed (default 10,000)")
    parser.add_argument("--post-frames", type=int, default=30)
    parser.add_argument(
        "--from-frame", type=int, default=None, help="first frame printed (default: 12 before the event)"
    )
    args = parser.parse_args(argv)
    model = load(args.model, args.model_kwargs)
    seed = args.seed + 50_000 + 1000 * KINDS.index(args.kind) + args.item
    res = model.resolution
    item, redraw = draw_twins(
        "TDWRoom-Occlusion-v0",
        seed,
        args.kind,
        "quadruplet",
        res,
        args.post_frames,
        ("segmentation", "depth"),
        level=args.level,
        split=args.split,
    )
    if item is None:
        print(f"no item for seed {seed} (nor its re-draws)", file=sys.stderr)
        return 1
    clips, passes = item_clips(item)
    frames = np.stack(clips)
    x = model_frames(model, frames, {k: np.stack(v) for k, v in passes.items()})
    n, t = frames.shape[:2]
    env = gym.make("TDWRoom-Occlusion-v0", level=args.level, resolution=res[0])
    acts = actions_to_vectors(np.zeros(t - 1, dtype=np.int64), env.action_space)  # no-ops: a still camera
    env.close()
    acts = torch.from_numpy(np.stack([np.asarray(acts, np.float32)] * n))
    slot = int(item.labels.get("event_object", 1)) - 1
    total, rows = trace(model, x, acts, slot)
    event = item.event_frame
    agg = [M.aggregate_surprise(total[i, event - 1 :], VOE_HEADLINE) for i in range(n)]
    print(
        f"# {args.kind} item {args.item}: seed {item.seed} (re-drawn {redraw}), level {args.level}, event frame {event}"
    )
    heads = ", ".join(f"{k} {v:.2f}" for k, v in zip(NAMES, agg, strict=True))
    print(f"# headline (mean surprise from the event): {heads}")
    print(f"# pairwise: A < A|B {agg[0] < agg[2]}, B < B|A {agg[1] < agg[3]}; slot {slot} (object {slot + 1})")
    start = max(1, event - 12) if args.from_frame is None else args.from_frame
    for c, name in enumerate(NAMES):
        print(f"\n## {name}\nframe | seen | whole | x | predicted x | vx cm/frame | P(seen) | slot surprise")
        for i in range(start - 1, t - 1):
            r = {k: float(v[c]) for k, v in rows[i].items()}
            mark = " <- event" if i + 1 == event else ""
            print(
                f"{i + 1} | {r['seen']:.0f} | {r['whole']:.0f} | {r['x']:+.2f} | {r['pred_x']:+.2f} | {r['vx']:+.1f} | "
                f"{r['p_seen']:.2f} | {r['surprise']:.1f}{mark}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
