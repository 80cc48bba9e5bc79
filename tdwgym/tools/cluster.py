"""Dataset generation spread over a Ray cluster (optional extra ``tdwgym[ray]``), and the Ray plumbing that
``tdwgym.agents.evaluation.on_ray`` uses to spread the evaluation.

tdwgym does not schedule work itself beyond one machine: it hands shards of episodes to `Ray
<https://docs.ray.io>`_ tasks. A shard is a range of episode indices; every episode's seeds are a function of the
base seed, the split and its index only (:func:`tdwgym.tools.dataset.episode_seeds`), so a shard gives the same files
on any node, in any order, on any attempt. Tasks write into one output directory that every node reaches at the
same path (a shared file system), through the local generator's own recording and atomic-write code, and skip
episodes whose file is already complete: a retried or resumed shard never writes an episode twice, and the
dataset equals the local generator's byte for byte.

Ray is imported inside the functions of this module only; importing :mod:`tdwgym` or :mod:`tdwgym.tools.dataset`, or
generating locally, never imports it. See ``docs/distributed.md``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.tools.dataset import writer as ds
from tdwgym.util.files import write_atomic
from tdwgym.util.progress_bar import progress_bar

INSTALL_HINT = "pip install 'tdwgym[ray]'"
"""The command that installs Ray for tdwgym."""

DEFAULT_MAX_RETRIES = 3
"""Attempts after the first that Ray gives a failed shard (an exception or a dead worker) before the run fails."""

MAX_SHARD_SIZE = 64
"""Largest automatic shard: enough work per task to hide Ray's per-task cost (milliseconds), small enough that a
retried shard redoes little and the progress bar moves."""


def import_ray() -> Any:
    """Import and return the ``ray`` module.

    Raises:
        ImportError: Ray is not installed; the message gives the pip command that installs it.
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"running on Ray needs the ray package: {INSTALL_HINT}") from exc
    return ray


# ---------------------------------------------------------------------------------------------------------------
# Connecting and sharding
# ---------------------------------------------------------------------------------------------------------------
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a TCP connection to a Ray address given as ``HOST:PORT`` or ``ray://HOST:PORT`` before
``ray.init`` is called (which would otherwise wait for minutes on an address that never answers)."""


class RayConnectionError(ConnectionError, ValueError):
    """Nothing answers at the Ray address given (a user error: the ``tdwgym`` command prints it on one line)."""


def check_ray_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, within ``timeout`` seconds, a ``HOST:PORT`` or ``ray://HOST:PORT`` address nothing answers at.

    Other addresses (None, ``"auto"``, ``"local"``) are left to ``ray.init``. None stands for ``$RAY_ADDRESS`` when
    it is set, which is checked the same way.

    Raises:
        RayConnectionError: The port is not a number, the host does not resolve, or no TCP connection was made in
            ``timeout`` seconds.
    """
    given = address if address is not None else os.environ.get("RAY_ADDRESS")
    if not given or given in ("auto", "local"):
        return
    target = given.removeprefix("ray://")
    host, sep, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        return
    where = f"Ray address {given!r}" + (" (from $RAY_ADDRESS)" if address is None else "")
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise RayConnectionError(f"{where}: the port must be a number in 1..65535, got {port_text!r}") from None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc) or type(exc).__name__)
        raise RayConnectionError(
            f"{where}: could not connect to {host}:{port} within {timeout:g} s ({reason}); start a cluster there "
            f"(`ray start --head --port {port}`), check the address and the firewall, or leave out --ray to run "
            "on this machine"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None = None, **init_kwargs: Any) -> Any:
    """Use the Ray instance this process is already connected to, or connect for the duration of the block.

    Args:
        address: Passed to ``ray.init``. None: ``$RAY_ADDRESS``, else the cluster ``ray start`` started on this
            machine, else a new local instance; ``"auto"``: an existing cluster only; ``"local"``: always a new
            local instance; ``"ray://HOST:10001"``: a remote cluster through Ray Client; ``"HOST:6379"``: a
            cluster's head node (this machine must be one of its nodes).
        **init_kwargs: More ``ray.init`` arguments (e.g. ``num_cpus`` for a local instance); ignored when this
            process is already connected.

    Yields:
        The ``ray`` module. A connection made here is shut down at the end of the block.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    check_ray_address(address)  # seconds, not the minutes ray.init waits for an address that never answers
    init_kwargs.setdefault("include_dashboard", False)
    init_kwargs.setdefault("log_to_driver", True)
    try:
        ray.init(address=address, **init_kwargs)
    except ConnectionError as exc:  # something answered at the address, but not a Ray cluster
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayConnectionError(
            f"Ray address {address or os.environ.get('RAY_ADDRESS')!r}: {first}; check that a Ray cluster of this "
            "Ray version runs there, or leave out --ray to run on this machine"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


class RayResourceError(ValueError):
    """The Ray cluster has no node with the resources one task asks for (a user error: the ``tdwgym`` command prints
    it on one line); such a task would wait for them for ever."""


def check_resources(ray: Any, num_cpus: float, num_gpus: float = 0.0, what: str = "task", count: int = 1) -> None:
    """Refuse, before anything is submitted, tasks that no node of the cluster can run: ``count`` tasks of
    ``num_cpus`` CPUs and ``num_gpus`` GPUs each must fit on the alive nodes at once (``count`` > 1: a group that
    runs together, as Ray Train's workers).

    Raises:
        RayResourceError: One line: what was asked for and what the nodes have.
    """
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]

    def fits(node: dict[str, float]) -> int:
        cpu, gpu = float(node.get("CPU", 0.0)), float(node.get("GPU", 0.0))
        by_cpu = math.floor(cpu / num_cpus + 1e-9) if num_cpus > 0 else count
        by_gpu = math.floor(gpu / num_gpus + 1e-9) if num_gpus > 0 else count
        return min(by_cpu, by_gpu)

    if sum(fits(n) for n in nodes) >= count:
        return
    have = ", ".join(f"{n.get('CPU', 0):g} CPU {n.get('GPU', 0):g} GPU" for n in nodes) or "no alive node"
    asked = f"{num_cpus:g} CPU" + (f" and {num_gpus:g} GPU" if num_gpus else "")
    group = f"{count} {what}s of {asked} each at once" if count > 1 else f"one {what} of {asked}"
    raise RayResourceError(f"the Ray cluster cannot run {group}: its nodes have {have}; ask for less or add nodes")


def shard_ranges(total: int, shard_size: int) -> list[tuple[int, int]]:
    """Split episode indices ``0 .. total - 1`` into consecutive ``(start, stop)`` ranges of ``shard_size``.

    Raises:
        ValueError: ``shard_size`` below 1 or ``total`` below 0.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be an int >= 1, got {shard_size!r}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total!r}")
    return [(start, min(start + shard_size, total)) for start in range(0, total, shard_size)]


def auto_shard_size(total: int, cpus: float) -> int:
    """About four shards per CPU of the cluster (so that fast nodes take more of them), at most
    :data:`MAX_SHARD_SIZE` episodes each."""
    per = math.ceil(total / max(1.0, 4.0 * float(cpus))) if total else 1
    return max(1, min(MAX_SHARD_SIZE, per))


@dataclass
class ShardRun:
    """What :func:`map_shards` did."""

    results: list[Any] = field(default_factory=list)
    """Each shard's return value, in shard order (None for a shard that did not finish)."""
    seconds: float = 0.0
    """Wall-clock seconds from the first submission to the last completion."""
    cluster_cpus: float = 0.0
    """CPUs of the cluster when the shards were submitted."""
    nodes: int = 0
    """Alive nodes of the cluster when the shards were submitted."""


CANCEL_GRACE_S = 30.0
"""Seconds a failed :func:`map_shards` waits for the workers of its cancelled tasks to be gone."""


def map_shards(
    ray: Any,
    fn: Callable[..., Any],
    shards: Sequence[tuple[int, int]],
    args: Sequence[Any] = (),
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    on_done: Callable[[int, Any], None] | None = None,
) -> ShardRun:
    """Run ``fn(*args, start, stop)`` as one Ray task per shard and collect the results as they complete.

    A task that raises or whose worker dies is retried by Ray itself (``max_retries``, ``retry_exceptions``), so
    ``fn`` must be idempotent: tdwgym's shard functions skip the episodes a previous attempt finished. When a shard
    fails past its retries the remaining tasks are cancelled and the error is raised.

    Args:
        ray: The connected ``ray`` module (see :func:`ray_session`).
        fn: A module-level function (workers import it by name).
        shards: ``(start, stop)`` episode index ranges.
        args: Leading arguments of every call; put in Ray's object store once.
        max_retries: Retries per shard after its first attempt.
        num_cpus: CPUs reserved per task.
        num_gpus: GPUs reserved per task (a fraction shares one GPU between tasks).
        on_done: Called in this process as ``on_done(shard_number, result)`` at each completion (progress bars).

    Returns:
        The results in shard order, with timing and cluster size.
    """
    resources = ray.cluster_resources()
    run = ShardRun(
        results=[None] * len(shards),
        cluster_cpus=float(resources.get("CPU", 0.0)),
        nodes=sum(1 for n in ray.nodes() if n.get("Alive")),
    )
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, retry_exceptions=True)(fn)
    shared = [ray.put(a) for a in args]
    start = time.perf_counter()
    refs = {remote.remote(*shared, lo, hi): k for k, (lo, hi) in enumerate(shards)}
    pending = list(refs)
    try:
        while pending:
            # everything that completes within half a second: one wait per batch, not per task, keeps the driver's
            # cost linear in the number of shards
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
            for ref in ready:
                k = refs[ref]
                run.results[k] = ray.get(ref)
                if on_done is not None:
                    on_done(k, run.results[k])
    except BaseException:
        # the remaining tasks are killed with their workers, never interrupted: Ray's gentle cancel raises
        # KeyboardInterrupt wherever the task is, and one that lands inside an import (torch imports sympy lazily, on
        # the first optimiser) leaves that worker's modules half-initialised for every later task Ray gives it
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        # the killed tasks end before the error is raised: none goes on writing into the output folder after the
        # call (and its folder lock) is over
        with contextlib.suppress(Exception):
            ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)
        raise
    finally:
        run.seconds = time.perf_counter() - start
    return run


# ---------------------------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------------------------
def generate_shard(
    config: ds.DatasetConfig,
    fingerprint: str,
    cwd: str,
    before_episode: Callable[[int], None] | None,
    start: int,
    stop: int,
) -> dict[str, Any]:
    """Write episodes ``start .. stop - 1`` of ``config`` (one Ray task), skipping those already complete.

    Each episode goes through the local generator's own recording and atomic write, so a task killed at any
    point leaves only complete files under final names, and a retry redoes only the episodes missing.

    Args:
        config: The dataset (``config.out`` must be reachable at the same path from every node).
        fingerprint: ``config.fingerprint()`` as computed by the driver.
        cwd: The driver's working directory: a relative policy path is read from there (when this node has it).
        before_episode: Test seam: called with the index before each episode that is written (fault injection).
        start: First episode index.
        stop: One past the last.

    Returns:
        ``{"written": [...], "skipped": [...], "frames": int, "cpu_seconds": float, "host": str, "pid": int}``.

    Raises:
        FileNotFoundError: ``config.out`` does not exist on this node (it is not on a shared file system).
    """
    if not config.out.is_dir():
        raise FileNotFoundError(
            f"the output directory {config.out} does not exist on node {socket.gethostname()}: every Ray node must "
            "reach it at the same path (a shared file system such as NFS); see docs/distributed.md"
        )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    written, skipped, frames, cpu = [], [], 0, 0.0
    with working_directory(cwd):
        for index in range(start, stop):
            if ds.episode_is_valid(ds.episode_path(config.out, index), fingerprint, config.frames):
                skipped.append(index)
                continue
            if before_episode is not None:
                before_episode(index)
            _, count, seconds = ds._run_episode(config, index, fingerprint)
            written.append(index)
            frames += count
            cpu += seconds
    return {
        "written": written,
        "skipped": skipped,
        "frames": frames,
        "cpu_seconds": cpu,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


@contextlib.contextmanager
def working_directory(path: str) -> Any:
    """Run the block in ``path`` when this node has it (Ray workers start elsewhere), else where we are: relative
    paths of the driver's command line then mean the same files in a task."""
    before = os.getcwd()
    if not Path(path).is_dir():
        yield
        return
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _remove_orphan_tmp(out: Path) -> list[Path]:
    """Delete every temporary episode file in ``out``: called once no task of this run is alive, so any left
    belongs to an attempt that died (its pid may be on another node, where this process cannot check it)."""
    removed = []
    for path in out.iterdir():
        if ds._TMP_RE.match(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def generate_on_ray(
    config: ds.DatasetConfig,
    address: str | None = None,
    shard_size: int | None = None,
    progress: bool = True,
    max_retries: int = DEFAULT_MAX_RETRIES,
    num_cpus: float = 1.0,
    init_kwargs: dict[str, Any] | None = None,
    before_episode: Callable[[int], None] | None = None,
) -> list[Path]:
    """Generate (or resume) the dataset of ``config`` with Ray tasks; the files equal
    :func:`tdwgym.tools.dataset.generate`'s.

    This process checks the directory and the config like the local generator (a directory holding another
    dataset is refused), writes the manifest, submits one task per shard of episode indices, updates a progress
    bar as tasks complete, and writes the final manifest (``dataset.json``, with the Ray run's figures under
    ``last_run``). ``config.workers`` is not used: Ray runs as many tasks at once as the cluster has CPUs.

    Args:
        config: What to generate and where; ``config.out`` must be the same path on every node.
        address: Ray address (see :func:`ray_session`); ignored when this process is already connected to Ray.
        shard_size: Episodes per task; default :func:`auto_shard_size` of the cluster's CPUs.
        progress: Show progress on stderr (:func:`tdwgym.util.progress_bar.progress_bar`).
        max_retries: Retries of a failed shard (an exception, or its worker or node died) before the run fails.
        num_cpus: CPUs Ray reserves per task.
        init_kwargs: More ``ray.init`` arguments when this call connects (e.g. ``{"num_cpus": 8}``).
        before_episode: Test seam for fault injection, called in the task before each episode it writes; must
            pickle (a nested function or a ``functools.partial`` of an importable one).

    Returns:
        Paths of all ``config.episodes`` episode files, in episode order.

    Raises:
        ImportError: Ray is not installed.
        ValueError: ``config.out`` holds a dataset of different settings.
        ray.exceptions.RayTaskError: A shard failed on every attempt (the manifest lists the episodes finished).
    """
    ray_module = import_ray()
    config = copy.copy(config)
    config.out = config.out.absolute()  # tasks start in another directory; ``out`` is not in the fingerprint
    out = config.out
    if not config.overwrite:
        ds._check_manifest(config)  # refuse another dataset's directory before connecting
    fingerprint = config.fingerprint()
    ds._check_episodes(config, fingerprint)
    env, _ = ds._make_env(config)  # validates the env kwargs here, before any task starts
    backend_version = env.unwrapped.backend.version()
    env.close()

    done: list[int] = []
    written = frames = 0
    worker_cpu = 0.0
    hosts: set[str] = set()
    run: ShardRun | None = None
    shards: list[tuple[int, int]] = []
    start, main_cpu = time.perf_counter(), time.process_time()
    with ray_session(address, **(init_kwargs or {})) as ray:  # a failed connection leaves the directory untouched
        out.mkdir(parents=True, exist_ok=True)
        ds._remove_stale_tmp(out)
        manifest = ds._manifest(config, backend_version, [])
        write_atomic(out / ds.MANIFEST_NAME, json.dumps(manifest, indent=2), durable=True)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        size = shard_size if shard_size is not None else auto_shard_size(config.episodes, cpus)
        shards = shard_ranges(config.episodes, size)
        bar = progress_bar(
            total=config.episodes,
            unit="episode",
            enabled=progress,
            desc=f"ray {config.scenario}/{config.split}/level{config.level}",
        )
        submitted = time.perf_counter()

        def finished(_: int, result: dict[str, Any]) -> None:
            nonlocal written, frames, worker_cpu
            done.extend(result["written"] + result["skipped"])
            written += len(result["written"])
            frames += result["frames"]
            worker_cpu += result["cpu_seconds"]
            hosts.add(result["host"])
            bar.update(len(result["written"]) + len(result["skipped"]))
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - submitted, 1e-9):.0f}")

        try:
            run = map_shards(
                ray,
                generate_shard,
                shards,
                (config, fingerprint, os.getcwd(), before_episode),
                max_retries=max_retries,
                num_cpus=num_cpus,
                on_done=finished,
            )
            _remove_orphan_tmp(out)  # every task has ended: what is left belongs to attempts that died
        finally:
            bar.close()
            last_run = {
                "workers": "ray",
                "episodes_written": written,
                "frames_written": frames,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - main_cpu + worker_cpu,
                "worker_cpu_seconds": worker_cpu,
                "ray": {
                    "version": getattr(ray_module, "__version__", None),
                    "address": address,
                    "shard_size": size,
                    "shards": len(shards),
                    "cluster_cpus": run.cluster_cpus if run else cpus,
                    "nodes": run.nodes if run else None,
                    "hosts": sorted(hosts),
                },
            }
            manifest = ds._manifest(config, backend_version, sorted(set(done)), last_run)
            write_atomic(out / ds.MANIFEST_NAME, json.dumps(manifest, indent=2), durable=True)
    return [ds.episode_path(out, i) for i in range(config.episodes)]


__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "INSTALL_HINT",
    "MAX_SHARD_SIZE",
    "RayConnectionError",
    "RayResourceError",
    "ShardRun",
    "auto_shard_size",
    "check_ray_address",
    "check_resources",
    "generate_on_ray",
    "generate_shard",
    "import_ray",
    "map_shards",
    "ray_session",
    "shard_ranges",
    "working_directory",
]
