"""``tdwgym pretrain --ray --workers N``: data-parallel pretraining with Ray Train (``TorchTrainer``, PyTorch
``DistributedDataParallel``: gloo on CPUs, NCCL on GPUs).

Each of the ``N`` workers runs :func:`tdwgym.agents.pretraining.pretrain`'s own loop on its part of every batch:
``batch_size / N`` clips, streamed by its own clip worker from the same mix and curriculum (worker ``r`` makes the
``r``-th part of each batch: disjoint seeds, and the parts together are the clips one process would train on), so the
global batch is ``batch_size`` whatever ``N`` is. The gradients are averaged over the workers before each optimiser
step, so ``N`` workers follow the one-process run's losses to floating-point rounding (for models whose loss is a
mean over the clips). Rank 0 validates, writes ``metrics.jsonl``, TensorBoard events, the checkpoints,
``world_model.pt`` and ``summary.json`` into the run folder as one process does; the run folder must be on a file
system every node reaches at the same path.

When a worker dies, Ray Train restarts the group (``max_failures`` times) and the workers carry on from the newest
checkpoint; after the driver is killed, ``tdwgym pretrain --resume --ray`` does the same (as does ``--resume``
without ``--ray``: a checkpoint is the same file either way).

The Ray plumbing (connecting, resource checks) is core's :mod:`tdwgym.tools.cluster`; see ``docs/distributed.md``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tdwgym.agents.pretraining import Parallel, PretrainConfig, _atomic_json, _latest, pretrain
from tdwgym.tools.cluster import check_resources, import_ray, ray_session

__all__ = ["DEFAULT_MAX_FAILURES", "pretrain_on_ray", "train_worker"]

DEFAULT_MAX_FAILURES = 3
"""Restarts of the worker group Ray Train makes after a worker dies, each from the newest checkpoint."""


def _mean_over_ranks(values: list[float]) -> list[float]:
    """The mean of each number over the ranks (one all-reduce)."""
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()


def train_worker(config: dict[str, Any]) -> None:
    """The loop of one Ray Train worker: :func:`pretrain` with this worker's :class:`Parallel` part."""
    import ray.train
    import ray.train.torch

    cfg = PretrainConfig(**config["cfg"])
    context = ray.train.get_context()
    rank, ranks = context.get_world_rank(), context.get_world_size()
    hook: Callable[[int], None] | None = config.get("before_start")
    if hook is not None:
        hook(rank)
    device = ray.train.torch.get_device() if cfg.device != "cpu" and torch.cuda.is_available() else None

    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        # some models leave parameters out of a step's graph (the objects model's heads of absent slots)
        return ray.train.torch.prepare_model(
            module,
            move_to_device=False,
            parallel_strategy="ddp",
            parallel_strategy_kwargs={"find_unused_parameters": True},
        )

    pretrain(
        cfg,
        progress=False,
        parallel=Parallel(rank=rank, ranks=ranks, wrap=wrap, mean=_mean_over_ranks, device=device),
    )


def pretrain_on_ray(
    cfg: PretrainConfig,
    address: str | None = None,
    resume: bool = False,
    max_failures: int = DEFAULT_MAX_FAILURES,
    init_kwargs: dict[str, Any] | None = None,
    before_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Pretrain ``cfg`` with ``cfg.workers`` Ray Train workers (one CPU each, and one GPU each when ``cfg.device``
    asks for CUDA or is ``auto`` on a cluster with GPUs).

    Args:
        cfg: The settings; ``workers`` counts the Ray Train workers, and ``batch_size`` (the global batch) must be a
            multiple of it.
        address: Ray address (see :func:`tdwgym.tools.cluster.ray_session`).
        resume: Continue the run in ``cfg.out`` from its newest checkpoint.
        max_failures: Restarts of the worker group after a worker dies.
        init_kwargs: More ``ray.init`` arguments when this call connects.
        before_start: Test seam called in every worker as ``before_start(rank)`` when the group starts (fault
            injection); must pickle.

    Returns:
        The summary rank 0 wrote (``summary.json``).

    Raises:
        ValueError: A bad setting, a folder holding another run (without ``resume``) or no checkpoint to resume;
            RayConnectionError / RayResourceError: the address does not answer, or the cluster has no room for the
            workers. Each is raised before anything is written.
    """
    cfg.validate()
    if cfg.workers < 1 or cfg.batch_size % cfg.workers:
        raise ValueError(
            f"--batch-size {cfg.batch_size} must be a multiple of --workers {cfg.workers} (with --ray, --workers "
            "counts the Ray Train workers, each training on batch-size / workers clips of every batch)"
        )
    cfg = dataclasses.replace(cfg, out=str(Path(cfg.out).absolute()))
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    if resume and (_latest(ckpt_dir) if ckpt_dir.is_dir() else None) is None:
        raise ValueError(f"--resume: {ckpt_dir} holds no complete checkpoint")
    if not resume and (out / "pretrain.json").exists():
        raise ValueError(f"{out} already holds a pretraining run; pass --resume to continue it, or another --out")
    import_ray()
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    with ray_session(address, **(init_kwargs or {})) as ray:  # nothing is written before this connects
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        use_gpu = cfg.device.startswith("cuda") or (cfg.device == "auto" and gpus > 0)
        check_resources(ray, 1.0, 1.0 if use_gpu else 0.0, what="Ray Train worker", count=cfg.workers)
        if not resume:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            _atomic_json(dataclasses.asdict(cfg), out / "pretrain.json")
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"cfg": dataclasses.asdict(cfg), "before_start": before_start},
            scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=use_gpu),
            run_config=RunConfig(
                name="ray_train",
                storage_path=str(out),
                failure_config=FailureConfig(max_failures=max_failures),
            ),
        )
        trainer.fit()
    return json.loads((out / "summary.json").read_text())
