"""``tdwgym eval --ray``: the evaluation's episodes spread over Ray tasks, the partial reports merged into one.

The Ray plumbing (connecting, sharding, retries) is core's :mod:`tdwgym.tools.cluster`; see ``docs/distributed.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tdwgym.tools.cluster import DEFAULT_MAX_RETRIES, auto_shard_size, import_ray, map_shards, ray_session, shard_ranges
from tdwgym.util.progress_bar import progress_bar

__all__ = ["evaluate_on_ray", "evaluate_shard"]


def evaluate_shard(evaluate_episodes: Callable[..., Any], config: Any, start: int, stop: int) -> Any:
    """One Ray task of :func:`evaluate_on_ray`: ``evaluate_episodes(range(start, stop), config)``."""
    return evaluate_episodes(range(start, stop), config)


def evaluate_on_ray(
    config: Any = None,
    /,
    address: str | None = None,
    shard_size: int | None = None,
    progress: bool = True,
    max_retries: int = DEFAULT_MAX_RETRIES,
    num_cpus: float = 1.0,
    init_kwargs: dict[str, Any] | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """``tdwgym eval`` with its episodes spread over Ray tasks, the partial reports merged into one.

    The evaluation provides three seams in :mod:`tdwgym.agents.evaluate`, each taking the one
    :class:`~tdwgym.agents.evaluate.EvalConfig` (run or model path, env, settings, ...):

    - ``count_episodes(config) -> int``: how many episode indices the evaluation has (every section's held-out
      episodes, numbered ``0 .. n - 1``; an episode's seeds depend on its index only).
    - ``evaluate_episodes(indices, config) -> part``: the per-episode results (raw, mergeable: per-step errors,
      surprise scores, counts; not yet averaged) of those indices; picklable.
    - ``merge_reports(parts, config) -> report``: the report from all parts (in index order), equal to a local
      ``evaluate(config)``; writes ``report.json``, ``report.md`` and the plots like ``evaluate`` does.

    Counting and merging run in this process; the tasks get the config with its paths made absolute
    (:meth:`~tdwgym.agents.evaluate.EvalConfig.absolute`) and without progress lines (the bar reports them), so
    the report is the one ``evaluate(config)`` writes here.

    Args:
        config: What to evaluate (an ``EvalConfig``); or
        address: Ray address (see :func:`ray_session`).
        shard_size: Episodes per task; default :func:`auto_shard_size` of the cluster's CPUs.
        progress: Show progress on stderr (:func:`tdwgym.util.progress_bar.progress_bar`) and the merge's lines.
        max_retries: Retries of a failed shard.
        num_cpus: CPUs Ray reserves per task.
        init_kwargs: More ``ray.init`` arguments when this call connects.
        **arguments: ``EvalConfig.build``'s keyword arguments, instead of ``config``. The run folder or checkpoint
            must be reachable from every node at the same absolute path.

    Returns:
        The merged report.

    Raises:
        ImportError: Ray is not installed.
    """
    from dataclasses import replace

    import_ray()
    from tdwgym.agents import evaluate as evaluation

    if config is not None and arguments:
        raise TypeError(f"give an EvalConfig or keyword arguments, not both (got {sorted(arguments)} too)")
    config = replace(config if config is not None else evaluation.EvalConfig.build(**arguments), progress=progress)
    task_config = replace(config.absolute(), progress=False)
    total = int(evaluation.count_episodes(replace(config, progress=False)))
    bar = progress_bar(total=total, unit="episode", enabled=progress, desc="ray eval")
    try:
        with ray_session(address, **(init_kwargs or {})) as ray:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            shards = shard_ranges(total, shard_size if shard_size is not None else auto_shard_size(total, cpus))
            run = map_shards(
                ray,
                evaluate_shard,
                shards,
                (evaluation.evaluate_episodes, task_config),
                max_retries=max_retries,
                num_cpus=num_cpus,
                on_done=lambda k, _: bar.update(shards[k][1] - shards[k][0]),
            )
    finally:
        bar.close()
    return evaluation.merge_reports(run.results, config)
