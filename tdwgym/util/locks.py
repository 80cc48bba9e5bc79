"""One writer per output folder: :func:`run_lock` holds ``FOLDER/.tdwgym.lock`` for the length of a run.

The lock is an ``flock`` on the file, so it ends with its process however that ends (``kill -9`` too); the file names
the holder's PID and command. A second writer is refused with one line naming that PID (:class:`FolderInUseError`,
a :class:`~tdwgym.util.errors.UsageError`: exit status 2 at the command line). A lock file left by a process that is
gone is taken over with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from tdwgym.util.errors import UsageError

__all__ = ["LOCK_NAME", "FolderInUseError", "file_lock", "run_lock"]

LOCK_NAME = ".tdwgym.lock"
"""The lock file in every output folder a command writes."""


class FolderInUseError(UsageError):
    """Another live process holds the folder's lock."""


def _holder(path: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text() or "{}")
        if isinstance(data, dict):
            return data
    return {}


@contextlib.contextmanager
def run_lock(
    folder: str | os.PathLike,
    command: str | None = None,
    option: str = "--out",
    name: str = LOCK_NAME,
    shown: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (the folder is made if missing, and removed again if the block left it
    empty).

    Args:
        folder: The output folder.
        command: What holds it (default: this process's command line), written into the lock file.
        option: The option that named the folder, for the message.
        name: The lock file's name (:func:`file_lock` locks one file of a folder).
        shown: What the message names as in use (default: the folder).

    Raises:
        FolderInUseError: Another running process holds it (one line naming its PID).
        UsageError: The lock file is a symbolic link (tdwgym never writes through one).
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    shown = folder if shown is None else shown
    for _ in range(50):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if path.is_symlink():
                raise UsageError(f"{option} {folder}: {path} is a symbolic link; remove it") from None
            raise exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = {}
            for _ in range(20):  # the holder writes its PID right after it takes the lock
                holder = _holder(path)
                if holder.get("pid"):
                    break
                time.sleep(0.05)
            pid = holder.get("pid", "unknown")
            what = f" ({holder['command']})" if holder.get("command") else ""
            raise FolderInUseError(
                f"{option} {shown} is in use by another tdwgym process, PID {pid}{what}; wait for it to end, or "
                f"give another {option}"
            ) from None
        if os.path.exists(path) and os.fstat(fd).st_ino == os.stat(path).st_ino:
            break  # locked the file that is there (not one its last holder removed meanwhile)
        os.close(fd)
    else:  # pragma: no cover - fifty lost races
        raise FolderInUseError(f"{option} {folder}: could not take its lock {path}")
    stale = _holder(path)
    if stale.get("pid") and stale.get("pid") != os.getpid():
        warnings.warn(f"{path}: taking over the lock of PID {stale['pid']}, which is no longer running", stacklevel=3)
    info = {"pid": os.getpid(), "command": command or " ".join(["tdwgym", *sys.argv[1:]])[:200], "time": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        if created:  # a run refused or failed before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def file_lock(path: str | os.PathLike, option: str = "--out") -> contextlib.AbstractContextManager[Path]:
    """:func:`run_lock` for one output file: ``.NAME.tdwgym.lock`` beside it, so that writers of other files in the
    same folder do not wait for each other."""
    path = Path(path)
    return run_lock(path.parent, option=option, name=f".{path.name}{LOCK_NAME}", shown=path)
