"""Benchmark of ``compare --ray`` and ``pretrain --ray`` against the same work in one process (issue 34).

    nice -n 15 python scripts/bench_ray.py                      # both, with the settings below
    python scripts/bench_ray.py --rounds 2 --total-steps 2048   # more rounds, longer runs

Compare: 4 runs (2 agents x 2 seeds) sequentially in this process and as Ray tasks on a local Ray instance of
``--cpus`` CPUs, interleaved round by round (the machine may be shared: both are measured in the same sitting); it
prints each wall time, the ratio Ray / sequential, and whether the results are identical (wall times aside).
Pretrain: frames/s of one process against ``--workers 2`` Ray Train workers with the same global batch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tdwgym.agents.comparison import CompareConfig, compare
from tdwgym.agents.comparison_report import comparable
from tdwgym.agents.pretraining import PretrainConfig, pretrain


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of sequential and Ray compare")
    parser.add_argument("--total-steps", type=int, default=1024, help="training steps per compare run")
    parser.add_argument("--pretrain-steps", type=int, default=3072, help="frames of each pretraining run")
    parser.add_argument("--skip", choices=["compare", "pretrain"], default=None)
    args = parser.parse_args(argv)

    import ray

    from tdwgym.agents.comparison_ray import compare_on_ray
    from tdwgym.agents.pretraining_ray import pretrain_on_ray

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        if args.skip != "compare":
            overrides = {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2, "device": "cpu"}
            overrides["vec_env"] = "dummy"
            seq, par = [], []
            for r in range(args.rounds):
                common = {
                    "agents": ["ppo", "curiosity"],
                    "seeds": [0, 1],
                    "total_steps": args.total_steps,
                    "eval_episodes": 1,
                    "eval_steps": 200,
                    "train_overrides": overrides,
                    "progress_bar": False,
                }
                t0 = time.perf_counter()
                local = compare(CompareConfig(out=str(root / f"seq{r}"), **common), progress=lambda line: None)
                seq.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                remote = compare_on_ray(CompareConfig(out=str(root / f"ray{r}"), **common), log=lambda line: None)
                par.append(time.perf_counter() - t0)
                same = comparable(local) == comparable(remote)
                print(
                    f"compare round {r}: 4 runs of {args.total_steps} steps: sequential {seq[-1]:.1f} s, "
                    f"ray ({args.cpus} CPUs) {par[-1]:.1f} s, ratio {par[-1] / seq[-1]:.2f}; results identical: {same}",
                    flush=True,
                )
            print(f"compare: ratio ray / sequential over {args.rounds} round(s): {sum(par) / sum(seq):.2f}")
        if args.skip != "pretrain":
            tiny = {
                "envs": "occlusion",
                "level": "0",
                "resolution": 32,
                "clip_steps": 32,
                "tbptt": 16,
                "batch_size": 4,
                "total_steps": args.pretrain_steps,
                "val_every": args.pretrain_steps,
                "val_clips": 1,
                "device": "cpu",
            }
            one = pretrain(PretrainConfig(**tiny, workers=1, out=str(root / "pre1")), progress=False)
            two = pretrain_on_ray(PretrainConfig(**tiny, workers=2, out=str(root / "pre2")))
            print(
                f"pretrain recurrent 32 px, global batch 4, {args.pretrain_steps} frames: one process "
                f"{one['frames_per_s']:.0f} fr/s, ray --workers 2 {two['frames_per_s']:.0f} fr/s, "
                f"ratio {two['frames_per_s'] / one['frames_per_s']:.2f}"
            )
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
