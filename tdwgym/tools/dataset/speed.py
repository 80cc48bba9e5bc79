"""Dataset generation speed beside the plain env's, measured in the same run (``python -m tdwgym.tools.dataset bench``
and ``tdwgym bench``)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

from tdwgym.tools.dataset.config import MANIFEST_NAME, DatasetConfig, episode_seeds, scenarios
from tdwgym.tools.dataset.writer import _mp_context, _worker_init, generate


def _env_shard(scenario: str, indices: Sequence[int], frames: int, resolution: int, seed: int) -> tuple[int, float]:
    """The plain env on the generator's work for ``indices``: reset + (frames - 1) random steps each, rgb
    observations. Returns (frames, CPU seconds)."""
    import gymnasium as gym

    import tdwgym  # noqa: F401

    cpu = time.process_time()
    env = gym.make(scenarios()[scenario], resolution=resolution, max_episode_steps=max(1, frames - 1))
    try:
        for index in indices:
            env_seed, policy_seed = episode_seeds(seed, "train", index)
            env.reset(seed=env_seed)
            env.action_space.seed(policy_seed)
            for _ in range(frames - 1):
                env.step(env.action_space.sample())
    finally:
        env.close()
    return len(indices) * frames, time.process_time() - cpu


def _env_rate(scenario: str, episodes: int, frames: int, resolution: int, seed: int, processes: int) -> dict:
    """The plain env's frames/s on the generator's work in ``processes`` processes, started like its workers."""
    shards = [list(range(episodes))[k::processes] for k in range(processes)]
    wall = time.perf_counter()
    if processes == 1:
        results = [_env_shard(scenario, shards[0], frames, resolution, seed)]
    else:
        with ProcessPoolExecutor(max_workers=processes, mp_context=_mp_context(), initializer=_worker_init) as pool:
            futures = [pool.submit(_env_shard, scenario, shard, frames, resolution, seed) for shard in shards]
            results = [f.result() for f in futures]
    wall = time.perf_counter() - wall
    count, cpu = sum(r[0] for r in results), sum(r[1] for r in results)
    return {"frames_per_s": count / wall, "frames_per_cpu_s": count / cpu}


def _dataset_rate(config: DatasetConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tdwgym-bench-") as tmp:
        config = DatasetConfig(**{**{f.name: getattr(config, f.name) for f in fields(config)}, "out": Path(tmp)})
        wall, cpu = time.perf_counter(), time.process_time()
        generate(config, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        run = json.loads((Path(tmp) / MANIFEST_NAME).read_text())["last_run"]
        cpu += run["worker_cpu_seconds"]  # worker processes report their own CPU time
    frames = config.episodes * config.frames
    return {"frames_per_s": frames / wall, "frames_per_cpu_s": frames / cpu, "seconds": wall}


def benchmark(
    scenario: str = "occlusion",
    episodes: int = 12,
    frames: int = 150,
    resolution: int = 64,
    workers: Sequence[int] = (1, 2),
    rounds: int = 3,
    seed: int = 0,
    compression: str | None = "gzip",
) -> dict[str, Any]:
    """Dataset generation speed beside the env's own, measured in the same run.

    For each worker count k, each round runs the plain env on the generator's work (reset plus ``frames - 1``
    random steps per episode, rgb observations) in k processes, then generates the dataset (RGB, depth,
    segmentation, boxes, object states, camera, collisions and labels, written to HDF5) with k workers; each
    figure is the best of ``rounds``. ``compression`` is the RGB and segmentation filter (one of
    :data:`COMPRESSIONS`). Wall-clock figures include process start-up on both sides. CPU figures count
    the CPU seconds of the processes doing the work, so they hold up better when other programs load the machine.

    Returns:
        ``{"env": {k: {"frames_per_s", "frames_per_cpu_s"}}, "dataset": {k: {"frames_per_s", "frames_per_cpu_s",
        "seconds", "ratio", "ratio_cpu"}}, "settings": {...}}`` where ``ratio`` is the dataset's frames/s over the
        env's with the same number of processes and ``ratio_cpu`` the same per CPU second (target: >= 0.8, i.e.
        annotation costs at most 25%).
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    base = DatasetConfig(
        out=Path("."),
        scenario=scenario,
        episodes=episodes,
        frames=frames,
        resolution=resolution,
        seed=seed,
        compression=compression,
    )
    ks = [int(k) for k in workers]
    env_runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    for _ in range(rounds):
        for k in ks:
            env_runs[k].append(_env_rate(scenario, episodes, frames, resolution, seed, k))
            base.workers = k
            runs[k].append(_dataset_rate(base))

    def best(items: list[dict[str, float]]) -> dict[str, float]:
        return {key: (min if key == "seconds" else max)(r[key] for r in items) for key in items[0]}

    env = {k: best(items) for k, items in env_runs.items()}
    dataset = {}
    for k, items in runs.items():
        r = best(items)
        r["ratio"] = r["frames_per_s"] / env[k]["frames_per_s"]
        r["ratio_cpu"] = r["frames_per_cpu_s"] / env[k]["frames_per_cpu_s"]
        dataset[k] = r
    return {
        "env": env,
        "dataset": dataset,
        "settings": {
            "scenario": scenario,
            "episodes": episodes,
            "frames": frames,
            "resolution": resolution,
            "workers": ks,
            "rounds": rounds,
            "compression": compression,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }


def format_benchmark(result: dict[str, Any]) -> str:
    """Human-readable lines for :func:`benchmark`'s result."""
    s = result["settings"]
    lines = [
        f"dataset: {s['scenario']}, {s['episodes']} episodes x {s['frames']} frames at {s['resolution']}x"
        f"{s['resolution']}, every label ({s.get('compression', 'lzf') or 'no'} compression), best of {s['rounds']}; "
        f"{s['cpu_count']} CPUs, load average "
        f"{s['load_average'][0] if s['load_average'] else float('nan'):.1f}",
    ]
    for k, r in result["dataset"].items():
        env = result["env"][k]
        procs = f"{k} process{'es' if k > 1 else ''}"
        lines += [
            f"  env steps, {procs:<12} {env['frames_per_s']:8.1f} frames/s  "
            f"{env['frames_per_cpu_s']:8.1f} frames/CPU-s",
            f"  dataset, {procs:<14} {r['frames_per_s']:8.1f} frames/s  {r['frames_per_cpu_s']:8.1f} frames/CPU-s  "
            f"ratio {r['ratio']:.2f} wall, {r['ratio_cpu']:.2f} CPU (target >= 0.80)",
        ]
    return "\n".join(lines)


__all__ = ["benchmark", "format_benchmark"]
