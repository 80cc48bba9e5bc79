"""Record an episode to video: plain, or beside a world model's prediction, error heatmap and surprise.

    python examples/record_rollout.py --policy orbit --steps 120
    python examples/record_rollout.py --run runs/curiosity --steps 300      # the run's agent and world model
    python examples/record_rollout.py --world-model runs/curiosity/checkpoints/step_0000020000/world_model.pt

Writes runs/videos/<env>-<policy>-seed<seed>.mp4 (or RUN/videos/... with --run) unless --out is given.
"""

from __future__ import annotations

import argparse

from tdwgym.agents.panels import record_episode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="TDWRoom-Occlusion-v0", help="Gymnasium id")
    p.add_argument("--policy", default="random", help="random, static, orbit, an SB3 .zip or a run folder")
    p.add_argument("--run", default=None, help="training run folder (agent, world model, env settings)")
    p.add_argument("--world-model", default=None, help="world_model.pt to show beside the observation")
    p.add_argument("--steps", type=int, default=120, help="env steps")
    p.add_argument("--seed", type=int, default=0, help="seed of scene and policy")
    p.add_argument("--size", type=int, default=128, help="panel size in pixels")
    p.add_argument("--resolution", type=int, default=None, help="observation size (plain recordings)")
    p.add_argument("--gif", action="store_true", help="write a GIF")
    p.add_argument("--out", default=None, help="output file")
    args = p.parse_args()
    env_kwargs = {"resolution": args.resolution} if args.resolution else None
    path = record_episode(
        args.env,
        out=args.out,
        policy=args.policy,
        world_model=args.world_model,
        run_dir=args.run,
        steps=args.steps,
        seed=args.seed,
        panel_size=args.size,
        gif=args.gif,
        env_kwargs=env_kwargs,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
