"""Process-tree helpers for the kill -9 tests (Linux /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: its children, theirs, ..."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def command(pid: int) -> str:
    """The command line of ``pid`` (for messages)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:100]
    except OSError:
        return "?"


def survivors_of_kill_9(
    cmd: Sequence[str], expected: int, cwd: str | os.PathLike | None = None, wait: float = 10.0
) -> tuple[list[int], list[str]]:
    """Start ``cmd``, wait until ``expected`` processes run below it, kill -9 the command alone (not its group),
    and return (every process seen below it, those still running ``wait`` seconds later, described)."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(descendants(proc.pid)) < expected and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # let the workers get past their start-up
        seen = descendants(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(running(p) for p in seen):
        time.sleep(0.1)
    left = [p for p in seen if running(p)]
    described = [f"{p}: {command(p)}" for p in left]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, signal.SIGKILL)
    return seen, described
