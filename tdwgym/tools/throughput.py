"""Throughput benchmarks: figures and ratios against a floor measured in the same run.

    tdwgym bench                      # the command: tdwgym.commands.bench
    tdwgym bench --steps 2000 --out bench.json

Env figure: ``TDWRoom-Occlusion-v0`` at 64x64 RGB under seeded random actions. Floor: the backend's own substeps
plus a 64x64 RGB render of the same scene in a bare loop, with no env around it. Vectorized figure: a 2-process
``AsyncVectorEnv``, SB3's ``SubprocVecEnv`` and tdwgym's ``LockstepVecEnv`` (full and light ``info``) against one
env in the calling process. Each figure is the best of ``--repeats`` timed rounds,
the rounds of the compared loops interleaved so that machine noise hits both alike. Dataset figure: labeled
generation (every annotation, written to HDF5) against the env doing the same work, for 1 and 2 workers
(:func:`tdwgym.tools.dataset.benchmark`).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import tdwgym
from tdwgym.sim.backends import make_backend

ENV_ID = "TDWRoom-Occlusion-v0"
RESOLUTION = 64
SPIN = 0.002
"""Seconds each side of the polling ``LockstepVecEnv`` polls for the other's step before it blocks."""


def _rate(fn: Callable[[int], None], steps: int) -> float:
    start = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - start)


def env_vs_floor(steps: int, repeats: int, seed: int = 0) -> dict[str, float]:
    """Env steps/s against the bare backend loop (substeps + render) on the same scene."""
    env = gym.make(ENV_ID, resolution=RESOLUTION, max_episode_steps=10**9)
    env.reset(seed=seed)
    base = env.unwrapped
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    floor_backend = make_backend(base.backend_name)
    floor_backend.load(base.scene)
    substeps = base.substeps

    def run_env(n: int) -> None:
        env.reset(seed=seed)
        for a in actions[:n]:
            env.step(a)

    def run_floor(n: int) -> None:
        floor_backend.load(base.scene)
        for _ in range(n):
            floor_backend.step(substeps)
            floor_backend.render(RESOLUTION, RESOLUTION, ("rgb",))

    run_env(min(steps, 50))
    run_floor(min(steps, 50))
    env_rates, floor_rates = [], []
    for _ in range(repeats):
        env_rates.append(_rate(run_env, steps))
        floor_rates.append(_rate(run_floor, steps))
    env.close()
    floor_backend.close()
    env_best, floor_best = max(env_rates), max(floor_rates)
    return {"env_steps_per_s": env_best, "floor_steps_per_s": floor_best, "ratio": env_best / floor_best}


def vectorized(steps: int, repeats: int, num_envs: int = 2, seed: int = 0) -> dict[str, float]:
    """Total steps/s of an ``num_envs``-process AsyncVectorEnv against one in-process env; with stable-baselines3
    installed (extra ``tdwgym[agents]``), also of SB3's ``SubprocVecEnv`` (forked workers; infos are passed as a
    list instead of merged into arrays) and of tdwgym's ``LockstepVecEnv`` that ``tdwgym train`` steps (one env in
    this process, the other in a worker, observations in shared memory)."""

    single = _make()
    single.reset(seed=seed)
    single.action_space.seed(seed)
    vec = gym.vector.AsyncVectorEnv([_make] * num_envs, context="spawn")
    vec.reset(seed=seed)
    vec.action_space.seed(seed)
    sb3 = _sb3_subproc(_make, num_envs, seed)
    # the same vector envs stepping envs made with info_level="light" (no object states, camera, contacts in info)
    vec_light = gym.vector.AsyncVectorEnv([_make_light] * num_envs, context="spawn")
    vec_light.reset(seed=seed)
    sb3_light = _sb3_subproc(_make_light, num_envs, seed)
    # tdwgym's LockstepVecEnv: a share of the envs in this process, the rest in workers, observations in shared memory
    lockstep = _lockstep(_make, num_envs, seed)
    lockstep_light = _lockstep(_make_light, num_envs, seed)
    # the same, each side polling for up to SPIN seconds before it blocks (LockstepVecEnv(spin=...))
    lockstep_spin = _lockstep(_make, num_envs, seed, spin=SPIN)

    def run_single(n: int) -> None:
        for _ in range(n):
            _, _, term, trunc, _ = single.step(single.action_space.sample())
            if term or trunc:
                single.reset()

    def run_vec(n: int) -> None:
        for _ in range(n // num_envs):
            vec.step(vec.action_space.sample())

    def run_sb3(n: int, venv: Any = sb3) -> None:
        for _ in range(n // num_envs):  # an array of actions, as SB3's PPO passes them
            venv.step(np.array([single.action_space.sample() for _ in range(num_envs)]))

    def run_vec_light(n: int) -> None:
        for _ in range(n // num_envs):
            vec_light.step(vec.action_space.sample())

    single_rates, vec_rates, sb3_rates, light_rates, sb3_light_rates = [], [], [], [], []
    lockstep_rates, lockstep_light_rates, lockstep_spin_rates = [], [], []
    try:
        run_single(50)
        run_vec(50)
        run_vec_light(50)
        if sb3 is not None:
            run_sb3(50)
            run_sb3(50, sb3_light)
            run_sb3(50, lockstep)
            run_sb3(50, lockstep_light)
            run_sb3(50, lockstep_spin)
        for _ in range(repeats):
            single_rates.append(_rate(run_single, steps))
            vec_rates.append(_rate(run_vec, steps))
            light_rates.append(_rate(run_vec_light, steps))
            if sb3 is not None:
                sb3_rates.append(_rate(run_sb3, steps))
                sb3_light_rates.append(_rate(lambda n: run_sb3(n, sb3_light), steps))
                lockstep_rates.append(_rate(lambda n: run_sb3(n, lockstep), steps))
                lockstep_light_rates.append(_rate(lambda n: run_sb3(n, lockstep_light), steps))
                lockstep_spin_rates.append(_rate(lambda n: run_sb3(n, lockstep_spin), steps))
    finally:  # worker processes never outlive the benchmark, even when a round fails
        single.close()
        for v in (vec, vec_light, sb3, sb3_light, lockstep, lockstep_light, lockstep_spin):
            if v is not None:
                v.close()
    one, many = max(single_rates), max(vec_rates)
    out = {"processes": num_envs, "single_steps_per_s": one, "vector_steps_per_s": many, "speedup": many / one}
    out["vector_light_steps_per_s"] = max(light_rates)
    out["vector_light_speedup"] = max(light_rates) / one
    if sb3 is not None:
        out["sb3_subproc_steps_per_s"] = max(sb3_rates)
        out["sb3_subproc_speedup"] = max(sb3_rates) / one
        out["sb3_subproc_light_steps_per_s"] = max(sb3_light_rates)
        out["sb3_subproc_light_speedup"] = max(sb3_light_rates) / one
        out["lockstep_steps_per_s"] = max(lockstep_rates)
        out["lockstep_speedup"] = max(lockstep_rates) / one
        out["lockstep_light_steps_per_s"] = max(lockstep_light_rates)
        out["lockstep_light_speedup"] = max(lockstep_light_rates) / one
        out["lockstep_spin_steps_per_s"] = max(lockstep_spin_rates)
        out["lockstep_spin_speedup"] = max(lockstep_spin_rates) / one
        out["lockstep_spin_s"] = SPIN
    return out


def _make() -> gym.Env:
    import tdwgym  # noqa: F401 - registers the ids in the worker

    return gym.make(ENV_ID, resolution=RESOLUTION)


def _make_light() -> gym.Env:
    import tdwgym  # noqa: F401 - registers the ids in the worker

    return gym.make(ENV_ID, resolution=RESOLUTION, info_level="light")


def _sb3_subproc(make: Callable[[], gym.Env], num_envs: int, seed: int) -> Any:
    """A started, reset stable-baselines3 ``SubprocVecEnv`` as ``tdwgym train --vec-env subproc`` builds it, or None
    without SB3."""
    try:
        from stable_baselines3.common.vec_env import SubprocVecEnv
    except ImportError:
        return None
    venv = SubprocVecEnv([make] * num_envs, start_method="fork")
    venv.seed(seed)
    venv.reset()
    return venv


def _lockstep(make: Callable[[], gym.Env], num_envs: int, seed: int, spin: float = 0.0) -> Any:
    """A started, reset :class:`tdwgym.tools.vector.LockstepVecEnv` with its default split (on 2 cores and 2 envs: one
    env in this process, one in a forked worker) and ``spin``, or None without SB3."""
    try:
        from tdwgym.tools.vector import LockstepVecEnv
    except ImportError:
        return None
    venv = LockstepVecEnv([make] * num_envs, start_method="fork", spin=spin)
    venv.seed(seed)
    venv.reset()
    return venv


def _independent_worker(args: tuple[int, int, Any]) -> float:
    steps, seed, barrier = args
    import tdwgym  # noqa: F401 - registers the ids in the worker

    env = gym.make(ENV_ID, resolution=RESOLUTION)
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def run(n: int) -> None:  # the workload of the other loops: seeded random actions, episodes that end and reset
        for _ in range(n):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()

    run(50)
    barrier.wait()  # both processes time the same stretch of wall-clock time
    start = time.perf_counter()
    run(steps)
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def independent(steps: int, num_procs: int = 2) -> dict[str, float]:
    """Total steps/s of ``num_procs`` processes each stepping its own env at once, with no lockstep: what the
    simulation itself scales to, beside :func:`vectorized`."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(num_procs)
        with ctx.Pool(num_procs) as pool:
            rates = pool.map(_independent_worker, [(steps, 0, barrier)] * num_procs)  # the single-env scene
    return {"processes": num_procs, "total_steps_per_s": float(sum(rates)), "per_process": [float(r) for r in rates]}


def run(
    steps: int = 1000,
    repeats: int = 3,
    include_vector: bool = True,
    include_dataset: bool = True,
    dataset_episodes: int = 12,
) -> dict[str, Any]:
    """Run every benchmark and return the figures."""
    results: dict[str, Any] = {
        "env_id": ENV_ID,
        "resolution": RESOLUTION,
        "steps": steps,
        "repeats": repeats,
        "tdwgym": tdwgym.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    results["env_vs_floor"] = env_vs_floor(steps, repeats)
    if include_vector:
        results["vectorized"] = vectorized(steps, repeats)
        results["independent"] = independent(steps)
        results["independent"]["speedup"] = (
            results["independent"]["total_steps_per_s"] / results["vectorized"]["single_steps_per_s"]
        )
    if include_dataset:
        from tdwgym.tools.dataset import benchmark as dataset_benchmark

        results["dataset"] = dataset_benchmark(
            episodes=dataset_episodes, frames=150, resolution=RESOLUTION, workers=(1, 2), rounds=repeats
        )
    return results


def format_results(results: dict[str, Any]) -> str:
    """Human-readable lines with targets."""
    lines = [
        f"tdwgym {results['tdwgym']} bench: {results['env_id']} {results['resolution']}x{results['resolution']} "
        f"RGB, {results['steps']} steps x best of {results['repeats']}, {results['cpus']} CPUs"
    ]
    ef = results["env_vs_floor"]
    lines.append(f"  env        {ef['env_steps_per_s']:8.1f} steps/s")
    lines.append(f"  floor      {ef['floor_steps_per_s']:8.1f} steps/s  (backend substeps + render, no env)")
    lines.append(f"  env/floor  {ef['ratio']:8.3f}        (target >= 0.9)")
    if "vectorized" in results:
        v = results["vectorized"]
        lines.append(f"  1 process  {v['single_steps_per_s']:8.1f} steps/s")
        lines.append(f"  {v['processes']} processes{v['vector_steps_per_s']:8.1f} steps/s")
        lines.append(f"  speedup    {v['speedup']:8.3f}        (target >= 1.8 on 2 cores)")
        if "sb3_subproc_steps_per_s" in v:
            lines.append(
                f"  {v['processes']} processes, SB3 SubprocVecEnv (`tdwgym train --vec-env subproc`): "
                f"{v['sb3_subproc_steps_per_s']:.1f} steps/s ({v['sb3_subproc_speedup']:.3f}x one process)"
            )
        if "vector_light_steps_per_s" in v:
            lines.append(
                f"  {v['processes']} processes, AsyncVectorEnv, info_level=light: "
                f"{v['vector_light_steps_per_s']:.1f} steps/s ({v['vector_light_speedup']:.3f}x one process)"
            )
        if "sb3_subproc_light_steps_per_s" in v:
            lines.append(
                f"  {v['processes']} processes, SB3 SubprocVecEnv, info_level=light: "
                f"{v['sb3_subproc_light_steps_per_s']:.1f} steps/s ({v['sb3_subproc_light_speedup']:.3f}x one process)"
            )
        if "lockstep_steps_per_s" in v:
            lines.append(
                f"  {v['processes']} envs, tdwgym LockstepVecEnv (what `tdwgym train` steps): "
                f"{v['lockstep_steps_per_s']:.1f} steps/s ({v['lockstep_speedup']:.3f}x one process; target >= 1.6)"
            )
            lines.append(
                f"  {v['processes']} envs, tdwgym LockstepVecEnv, info_level=light: "
                f"{v['lockstep_light_steps_per_s']:.1f} steps/s ({v['lockstep_light_speedup']:.3f}x one process)"
            )
            lines.append(
                f"  {v['processes']} envs, tdwgym LockstepVecEnv, spin={v['lockstep_spin_s'] * 1e3:g} ms: "
                f"{v['lockstep_spin_steps_per_s']:.1f} steps/s ({v['lockstep_spin_speedup']:.3f}x one process)"
            )
        ind = results["independent"]
        lines.append(
            f"  {ind['processes']} independent processes, no lockstep: {ind['total_steps_per_s']:.1f} steps/s "
            f"({ind['speedup']:.3f}x one process)"
        )
    if "dataset" in results:
        from tdwgym.tools.dataset import format_benchmark

        lines.append("dataset generation with every label (RGB, depth, segmentation, boxes, states, camera, ...):")
        lines.extend("  " + line for line in format_benchmark(results["dataset"]).splitlines())
    return "\n".join(lines)
