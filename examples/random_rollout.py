"""Roll out a policy in a tdwgym environment and save the episode as an mp4.

    python examples/random_rollout.py --env TDWRoom-Occlusion-v0 --steps 300 --out runs/demo/rollout.mp4
"""

from __future__ import annotations

import argparse
import sys

from tdwgym.rollout import POLICIES, record_rollout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="TDWRoom-Occlusion-v0", help="Gymnasium id")
    parser.add_argument("--policy", default="random", choices=POLICIES, help="who acts")
    parser.add_argument("--steps", type=int, default=300, help="env steps to record")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene and the policy")
    parser.add_argument("--size", type=int, default=256, help="video frame size in pixels")
    parser.add_argument("--out", default="runs/demo/rollout.mp4", help="output .mp4 or .gif")
    args = parser.parse_args(argv)
    path = record_rollout(args.env, args.out, steps=args.steps, policy=args.policy, seed=args.seed,
                          render_size=args.size)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
