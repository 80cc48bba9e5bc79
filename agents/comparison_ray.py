"""``tdwgym compare --ray``: every (agent, seed) run of a comparison is one Ray task; the results are gathered into
the same ``results.json``, ``results.md`` and plots as a local run.

A run (:func:`tdwgym.agents.comparison.run_agent`) trains one agent on one seed and measures it on the seed's
held-out episodes, writing its world model, its held-out episodes and, last, its record into its run folder under
the comparison's output folder, which every node reaches at the same path (a shared file system). Its result is a
function of the settings and the seed alone, so the task gives the same numbers on any node of the same kind, on
any attempt, as the local comparison. A task that raises, or whose worker or node dies, is retried by Ray and redoes
its own run only; running the command again skips the runs whose record is there with the same settings. When
every run has finished, this process pools each seed's held-out episodes and writes the results
(:func:`~tdwgym.agents.comparison.gather_results`), as the local comparison does.

The Ray plumbing (connecting, resource checks, retries) is core's :mod:`tdwgym.tools.cluster`; see
``docs/distributed.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tdwgym.agents.comparison import CompareConfig, check_compare_out, finished_run, gather_results, run_agent
from tdwgym.agents.training import check_policy_input
from tdwgym.tools.cluster import DEFAULT_MAX_RETRIES, check_resources, map_shards, ray_session, working_directory
from tdwgym.util.progress_bar import progress_bar

__all__ = ["compare_on_ray", "run_on_ray", "run_task"]


def run_task(
    configs: list[CompareConfig],
    runs: list[tuple[int, str, int]],
    cwd: str,
    before_run: Callable[[str, int], None] | None,
    start: int,
    stop: int,
) -> list[dict[str, Any]]:
    """One Ray task: the runs ``runs[start:stop]`` (``(config number, agent, seed)``), each skipped when its record
    is already there (an earlier attempt finished it before the worker died).

    Returns:
        Per run: ``{"config", "agent", "seed", "row", "host", "pid", "seconds"}``.
    """
    done = []
    with working_directory(cwd):
        for number, agent, seed in runs[start:stop]:
            cfg = configs[number]
            t0 = time.perf_counter()
            record = finished_run(cfg, agent, seed)
            if record is None:
                if before_run is not None:
                    before_run(agent, seed)
                record = run_agent(cfg, agent, seed)
            done.append(
                {
                    "config": number,
                    "agent": agent,
                    "seed": seed,
                    "row": record["row"],
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "seconds": time.perf_counter() - t0,
                }
            )
    return done


def run_on_ray(
    configs: Sequence[CompareConfig],
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    init_kwargs: dict[str, Any] | None = None,
    before_run: Callable[[str, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished (agent, seed) run of ``configs`` as one Ray task each (all comparisons in one pool).

    Args:
        configs: The comparisons (their ``out`` must be reachable at the same absolute path from every node).
        address: Ray address (see :func:`tdwgym.tools.cluster.ray_session`).
        cpus_per_run: CPUs Ray reserves per run (a fraction packs several runs on one CPU).
        gpus_per_run: GPUs Ray reserves per run (a fraction shares one GPU; 0: none, the runs train on CPUs).
        progress: Show progress on stderr (:func:`tdwgym.util.progress_bar.progress_bar`) counting finished runs.
        log: Receives one line per finished run (default: written above the bar, or printed without it).
        max_retries: Retries of a run whose task raised or whose worker died.
        init_kwargs: More ``ray.init`` arguments when this call connects.
        before_run: Test seam called in the task before each run it trains (fault injection); must pickle.

    Returns:
        What each task reported of the runs it did, in submission order (runs finished before are left out).

    Raises:
        RayConnectionError: Nothing answers at ``address`` (nothing is written).
        RayResourceError: No node has ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (nothing is written).
        ray.exceptions.RayTaskError: A run failed on every attempt (the finished ones keep their records).
    """
    for name, value in (("cpus_per_run", cpus_per_run), ("gpus_per_run", gpus_per_run)):
        if not value >= 0 or (name == "cpus_per_run" and value == 0 and gpus_per_run == 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number of CPUs, got {value!r}")
    configs = [dataclasses.replace(c, out=str(Path(c.out).absolute()), progress_bar=False) for c in configs]
    for cfg in configs:
        check_compare_out(cfg)
        if any(agent != "random" for agent in cfg.agents):
            check_policy_input(cfg.env_kwargs)
    every = [(k, agent, seed) for k, cfg in enumerate(configs) for seed in cfg.seeds for agent in cfg.agents]
    todo = [(k, agent, seed) for k, agent, seed in every if finished_run(configs[k], agent, seed) is None]
    bar = progress_bar(
        total=len(every), initial=len(every) - len(todo), unit="run", desc="ray compare", enabled=progress
    )
    say = log or bar.write
    results: list[dict[str, Any]] = []
    try:
        with ray_session(address, **(init_kwargs or {})) as ray:  # nothing is written before this connects
            check_resources(ray, cpus_per_run, gpus_per_run, what="run")
            if not todo:
                return results
            for cfg in configs:
                Path(cfg.out).mkdir(parents=True, exist_ok=True)

            def finished(k: int, part: list[dict[str, Any]]) -> None:
                for run in part:
                    row = {key: round(v, 4) for key, v in run["row"].items()}
                    say(f"[compare] {configs[run['config']].out}: seed {run['seed']} {run['agent']}: {json.dumps(row)}")
                bar.update(len(part))

            shards = [(i, i + 1) for i in range(len(todo))]
            run = map_shards(
                ray,
                run_task,
                shards,
                (configs, todo, os.getcwd(), before_run),
                max_retries=max_retries,
                num_cpus=cpus_per_run,
                num_gpus=gpus_per_run,
                on_done=finished,
            )
            results = [item for part in run.results for item in part]
    finally:
        bar.close()
    return results


def compare_on_ray(
    cfg: CompareConfig,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`tdwgym.agents.comparison.compare` with each (agent, seed) run a Ray task (:func:`run_on_ray`); the
    results equal the local comparison's and are written to ``cfg.out`` the same way.

    Args:
        cfg: The comparison; ``cfg.progress_bar`` shows a bar of finished runs.
        address: Ray address.
        cpus_per_run: CPUs per run.
        gpus_per_run: GPUs per run.
        **kwargs: More :func:`run_on_ray` arguments.

    Returns:
        The results (also in ``results.json``).
    """
    kwargs.setdefault("progress", cfg.progress_bar)
    run_on_ray([cfg], address, cpus_per_run, gpus_per_run, **kwargs)
    return gather_results(cfg)
