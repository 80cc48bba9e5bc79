"""Benchmarks of the agents package: programs that print figures, not timed tests.

* :func:`bench_online_learner`: frames per second the online learner takes in with training on (one frame per
  ``observe`` call, as from a live camera). Target: >= 30 frames/s on 2 CPU cores.
* :func:`bench_curiosity_overhead`: wall time of PPO + curiosity against plain PPO for the same steps, measured in
  one run. Target: ratio <= 1.3 (issue 14: ``tdwgym train``'s steps/s within 1.15x of plain PPO's).

Run ``python -m tdwgym.agents.overhead`` (``--quick`` for a smoke run); ``tdwgym bench`` measures core only and
does not run these.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from typing import Any

import numpy as np
import torch

from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.models import Transitions, make_world_model, resize_frames
from tdwgym.agents.online import OnlineLearner
from tdwgym.agents.training import VEC_ENVS

__all__ = ["bench_curiosity_overhead", "bench_online_learner", "run_benchmarks"]


def bench_online_learner(
    variant: str = "pixel",
    frames: int = 600,
    resolution: int = 64,
    warmup: int = 100,
    device: str = "auto",
) -> dict[str, float]:
    """Stream ``frames`` synthetic moving-square frames one at a time through an :class:`OnlineLearner`.

    The learner uses :class:`~tdwgym.agents.training.TrainConfig`'s world-model defaults (width, warp, fovea, model
    resolution, background training, buffer, batch, updates per transition). Frames of ``resolution`` pixels are
    area-resized to the model's resolution inside the timed loop, as the curiosity wrapper does. With background
    training the figure is the sustained rate: the caller waits whenever the worker falls more than one hand-over
    behind, and the worker's queue is finished before the clock stops.

    Returns:
        ``frames_per_s``, ``updates_per_s`` and the settings.
    """
    from tdwgym.agents.curiosity import CuriosityConfig

    cfg = CuriosityConfig(curiosity=variant)
    size = cfg.wm_resolution or resolution
    model = make_world_model(variant, (3, size, size), 10, cfg.context_frames, device=device, **cfg.model_kwargs())
    learner = OnlineLearner(model, seed=0, **cfg.learner_kwargs())
    rng = np.random.default_rng(0)
    k = model.context_frames

    def frame(t: int) -> np.ndarray:
        img = np.full((3, resolution, resolution), 40, dtype=np.uint8)
        x = (3 * t) % (resolution - 8)
        img[:, 20:28, x : x + 8] = (200, 60, 30)[0]
        return resize_frames(torch.from_numpy(img), (size, size)).numpy()

    history = [frame(0)] * k
    actions = np.eye(10, dtype=np.float32)

    def step(t: int) -> None:
        nxt = frame(t)
        batch = Transitions(
            torch.from_numpy(np.stack(history)[None]),
            torch.from_numpy(actions[rng.integers(10)][None]),
            torch.from_numpy(nxt[None]),
        )
        learner.observe(batch)
        history.pop(0)
        history.append(nxt)

    for t in range(warmup):
        step(t)
    updates0 = learner.updates
    start = time.perf_counter()
    for t in range(warmup, warmup + frames):
        step(t)
    learner.flush()
    wall = time.perf_counter() - start
    learner.close()
    return {
        "variant": variant,
        "frames": frames,
        "resolution": resolution,
        "model_resolution": size,
        "background": cfg.wm_background,
        "wall_s": wall,
        "frames_per_s": frames / wall,
        "updates_per_s": (learner.updates - updates0) / wall,
        "batch_size": cfg.wm_batch_size,
        "updates_per_transition": cfg.wm_updates_per_transition,
        "device": str(model.device),
    }


def bench_curiosity_overhead(
    steps: int = 8192,
    variant: str = "pixel",
    n_envs: int = 4,
    overrides: dict[str, Any] | None = None,
    repeats: int = 3,
    curiosity_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wall time of plain PPO (the floor) and PPO + curiosity for the same steps and seed, in this process.

    ``overrides`` are :class:`~tdwgym.agents.training.TrainConfig` fields of both runs; ``curiosity_overrides``
    those of the curiosity run alone (its reward: ``{"curiosity": "objects", "world_model": "pretrained", ...}``).

    The two alternate ``repeats`` times (ppo, curiosity, ppo, curiosity, ...) so that a slow spell of the machine
    hits both; the ratio is of the medians.

    Returns:
        ``ppo_s``, ``curiosity_s`` (medians), every run's time, ``ratio`` (target <= 1.3), and the world model's
        training time (in the background thread, overlapping the rest).
    """
    from tdwgym.agents.training import TrainConfig, train

    extra = dict(curiosity_overrides or {})
    variant = extra.pop("curiosity", variant)
    out: dict[str, Any] = {"steps": steps, "n_envs": n_envs, "variant": variant, "repeats": repeats, "reward": extra}
    out["vec_env"] = (overrides or {}).get("vec_env", TrainConfig.vec_env)
    times: dict[str, list[float]] = {"ppo": [], "curiosity": []}
    wm_train: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, cur in (("ppo", "none"), ("curiosity", variant)):
                cfg = TrainConfig(
                    curiosity=cur,
                    total_steps=steps,
                    n_envs=n_envs,
                    run_dir=os.path.join(tmp, f"{name}{r}"),
                    video_steps=0,
                    progress_bar=False,
                    checkpoint_every=10**12,
                    **(overrides or {}),
                    **(extra if name == "curiosity" else {}),
                )
                res = train(cfg)
                times[name].append(res.wall_time_s)
                if res.curiosity is not None:
                    wm_train.append(res.curiosity.learner.train_time_s)
    for name, vals in times.items():
        out[f"{name}_s"] = float(np.median(vals))
        out[f"{name}_runs_s"] = [round(v, 2) for v in vals]
    out["world_model_train_s"] = float(np.median(wm_train))
    out["ratio"] = out["curiosity_s"] / out["ppo_s"]
    out["ppo_steps_per_s"] = steps / out["ppo_s"]
    out["curiosity_steps_per_s"] = steps / out["curiosity_s"]
    return out


def run_benchmarks(
    quick: bool = False,
    steps: int | None = None,
    repeats: int | None = None,
    overhead_only: bool = False,
    vec_env: str | None = None,
    curiosity_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Both benchmarks; ``quick`` shrinks them to a smoke run; ``vec_env`` replaces ``TrainConfig``'s in the
    overhead runs; ``curiosity_overrides`` are the curiosity run's reward settings."""
    threads = configure_torch_threads()
    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": threads,
            "device": str(resolve_device("auto")),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "online_learner": []
        if overhead_only
        else [
            bench_online_learner(v, frames=60 if quick else 600, warmup=20 if quick else 100)
            for v in ("pixel", "latent", "recurrent", "jepa", "rnd", "icm", "progress")
        ],
    }
    overrides: dict[str, Any] = {"n_steps": 32, "batch_size": 64} if quick else {}
    if vec_env is not None:
        overrides["vec_env"] = vec_env
    results["curiosity_overhead"] = bench_curiosity_overhead(
        steps=steps or (256 if quick else 8192),
        overrides=overrides,
        repeats=repeats or (1 if quick else 3),
        curiosity_overrides=curiosity_overrides,
    )
    return results


def format_results(results: dict[str, Any]) -> str:
    """Human-readable lines."""
    lines = [f"machine: {json.dumps(results['machine'])}", "online learner (training on, one frame per observe):"]
    for r in results["online_learner"]:
        ok = "ok" if r["frames_per_s"] >= 30 else "BELOW 30"
        lines.append(
            f"  {r['variant']:9s} {r['frames_per_s']:7.1f} frames/s  ({r['updates_per_s']:.1f} updates/s, "
            f"{r['resolution']}px frames, model at {r['model_resolution']}px, background {r['background']}, "
            f"target >= 30: {ok})"
        )
    o = results["curiosity_overhead"]
    reward = " " + json.dumps(o["reward"]) if o.get("reward") else ""
    lines.append(
        f"PPO + {o['variant']} curiosity{reward} vs plain PPO, {o['steps']} steps, {o['n_envs']} envs "
        f"({o.get('vec_env', '?')}): "
        f"{o['curiosity_s']:.1f} s vs {o['ppo_s']:.1f} s = {o['ratio']:.2f}x (target <= 1.3x, issue 14: <= 1.15x; "
        f"{o['curiosity_steps_per_s']:.0f} vs {o['ppo_steps_per_s']:.0f} steps/s; medians of "
        f"{o['repeats']} alternating runs: curiosity {o['curiosity_runs_s']}, PPO {o['ppo_runs_s']}; world-model "
        f"training {o.get('world_model_train_s', 0):.1f} s in the background thread)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m tdwgym.agents.overhead [--quick] [--json PATH]``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--steps", type=int, default=None, help="steps of each overhead run (default 8192)")
    p.add_argument("--repeats", type=int, default=None, help="alternating overhead runs of each (default 3)")
    p.add_argument("--overhead-only", action="store_true", help="skip the online-learner benchmark")
    p.add_argument(
        "--vec-env", default=None, choices=VEC_ENVS, help="vector env of both overhead runs (default: TrainConfig's)"
    )
    p.add_argument(
        "--curiosity-overrides",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='TrainConfig fields of the curiosity run alone, e.g. \'{"curiosity": "objects", "world_model": '
        '"pretrained", "reward_gate": "none"}\'',
    )
    args = p.parse_args(argv)
    results = run_benchmarks(
        quick=args.quick,
        steps=args.steps,
        repeats=args.repeats,
        overhead_only=args.overhead_only,
        vec_env=args.vec_env,
        curiosity_overrides=args.curiosity_overrides,
    )
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
