"""Worker processes that do not outlive their parent (Linux), for every floor that starts them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["die_with_parent", "dies_with_parent"]

_PR_SET_PDEATHSIG = 1


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
