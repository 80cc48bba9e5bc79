"""Worker processes that do not outlive their parent (Linux), for every floor that starts them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["FORKSERVER_PARENT_ENV", "die_with_parent", "dies_with_parent", "forkserver_context", "init_worker"]

_PR_SET_PDEATHSIG = 1

FORKSERVER_PARENT_ENV = "TDWGYM_FORKSERVER_PARENT"
"""Pid of the process whose fork server must die with it (read by ``tdwgym.util._forkserver`` in the server)."""


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (even by kill -9).

    Call it first thing in a worker process. When ``parent`` (the pid that started the worker) is given and is
    already gone, the worker exits at once: the parent died before the request was made.

    Returns:
        Whether the request took effect (False on platforms without ``prctl``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    return True


def dies_with_parent(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` (a worker's constructor, e.g. an env factory run inside a ``SubprocVecEnv`` worker), made to call
    :func:`die_with_parent` first, with the pid of the process that wraps it as the parent."""
    parent = os.getpid()

    def run() -> Any:
        die_with_parent(parent)
        return fn()

    return run


def forkserver_context(preload: list[str] | None = None) -> Any:
    """A multiprocessing context whose processes all end with this one, even after a kill -9 of it: ``forkserver``
    (with ``preload`` imported once in the server, so workers start without importing them) where the platform has
    it, else ``spawn``. Pool workers must run :func:`init_worker` first (``initializer=init_worker``).

    The parent-death signal follows the thread that starts the fork server (the first worker): start pools from a
    thread that outlives them, such as the main thread."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    os.environ[FORKSERVER_PARENT_ENV] = str(os.getpid())
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tdwgym.util._forkserver", *(preload or [])])
    return ctx


def init_worker() -> None:
    """The first thing a pool worker from :func:`forkserver_context` runs: end with the process that started it (the
    fork server, itself ending with its parent; with ``spawn``, the parent itself)."""
    die_with_parent(os.getppid())
