"""``tdwgym eval --ray``: the evaluation's episodes spread over Ray tasks, the partial reports merged into one.

The Ray plumbing (connecting, sharding, retries) is core's :mod:`tdwgym.distributed`; see ``docs/distributed.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tdwgym.distributed import DEFAULT_MAX_RETRIES, auto_shard_size, import_ray, map_shards, ray_session, shard_ranges

__all__ = ["EVAL_PATH_KWARGS", "evaluate_on_ray", "evaluate_shard"]

EVAL_PATH_KWARGS = ("run_dir", "model_path", "out")
"""Arguments of the evaluation that are paths: made absolute for the tasks, which start in another directory."""


def evaluate_shard(evaluate_episodes: Callable[..., Any], kwargs: dict[str, Any], start: int, stop: int) -> Any:
    """One Ray task of :func:`evaluate_on_ray`: ``evaluate_episodes(range(start, stop), **kwargs)``."""
    return evaluate_episodes(range(start, stop), **kwargs)


def evaluate_on_ray(
    address: str | None = None,
    shard_size: int | None = None,
    progress: bool = True,
    max_retries: int = DEFAULT_MAX_RETRIES,
    num_cpus: float = 1.0,
    init_kwargs: dict[str, Any] | None = None,
    **evaluate_kwargs: Any,
) -> dict[str, Any]:
    """``tdwgym eval`` with its episodes spread over Ray tasks, the partial reports merged into one.

    The evaluation provides three functions in :mod:`tdwgym.agents.evaluate`, each taking the keyword arguments of
    its ``evaluate`` (run or model path, env id, settings, ...):

    - ``count_episodes(**kw) -> int``: how many episode indices the evaluation has (every section's held-out
      episodes, numbered ``0 .. n - 1``; an episode's seeds depend on its index only).
    - ``evaluate_episodes(indices, **kw) -> part``: the per-episode results (raw, mergeable: per-step errors,
      surprise scores, counts; not yet averaged) of those indices; picklable.
    - ``merge_reports(parts, **kw) -> report``: the report from all parts (in index order), equal to a local
      ``evaluate(**kw)``; writes ``report.json``, ``report.md`` and the plots like ``evaluate`` does.

    Counting and merging run in this process with ``evaluate_kwargs`` as given (plus ``progress``); the tasks get
    them with ``progress=False`` (the progress bar reports them) and the paths (:data:`EVAL_PATH_KWARGS`) made
    absolute, so the report is the one ``evaluate(**evaluate_kwargs)`` writes here.

    Args:
        address: Ray address (see :func:`ray_session`).
        shard_size: Episodes per task; default :func:`auto_shard_size` of the cluster's CPUs.
        progress: Show a tqdm progress bar on stderr.
        max_retries: Retries of a failed shard.
        num_cpus: CPUs Ray reserves per task.
        init_kwargs: More ``ray.init`` arguments when this call connects.
        **evaluate_kwargs: The evaluation's own arguments (``progress`` excepted: this function's own);
            the run folder or checkpoint must be reachable from every node at the same absolute path.

    Returns:
        The merged report.

    Raises:
        ImportError: Ray is not installed.
    """
    from tqdm.auto import tqdm

    import_ray()
    from tdwgym.agents.evaluate import count_episodes, evaluate_episodes, merge_reports

    task_kwargs = {**evaluate_kwargs, "progress": False}
    for key in EVAL_PATH_KWARGS:
        if task_kwargs.get(key) is not None:
            task_kwargs[key] = os.path.abspath(task_kwargs[key])
    total = int(count_episodes(**{**evaluate_kwargs, "progress": False}))
    bar = tqdm(total=total, unit="episode", disable=not progress, desc="ray eval", dynamic_ncols=True)
    try:
        with ray_session(address, **(init_kwargs or {})) as ray:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            shards = shard_ranges(total, shard_size if shard_size is not None else auto_shard_size(total, cpus))
            run = map_shards(
                ray,
                evaluate_shard,
                shards,
                (evaluate_episodes, task_kwargs),
                max_retries=max_retries,
                num_cpus=num_cpus,
                on_done=lambda k, _: bar.update(shards[k][1] - shards[k][0]),
            )
    finally:
        bar.close()
    return merge_reports(run.results, **{**evaluate_kwargs, "progress": progress})
