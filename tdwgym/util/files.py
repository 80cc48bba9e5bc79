"""Files: the one way tdwgym writes a file (:func:`atomic_path`, :func:`write_atomic`: whole or not at all), reading
the small JSON files it writes beside its outputs with errors that name the file, and the checks of an output folder
or file before anything is written there (:func:`link_leading_out`: no write follows a symbolic link out of it)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tdwgym.util.errors import UsageError

__all__ = [
    "DamagedFileError",
    "atomic_path",
    "check_output_file",
    "check_output_folder",
    "link_leading_out",
    "read_json",
    "temporary_name",
    "write_atomic",
]


def temporary_name(path: str | os.PathLike, keep_suffix: bool = False) -> Path:
    """The name :func:`atomic_path` writes ``path`` under first: ``.NAME.PID.tmp`` in the same folder (a dot file,
    with this process's id, so a cleaner can tell whose it is), ``.NAME.PID.tmp.SUFFIX`` with ``keep_suffix``."""
    path = Path(path)
    name = f".{path.name}.{os.getpid()}.tmp"
    return path.with_name(name + path.suffix if keep_suffix else name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; when the block ends without an error it is renamed onto
    ``path`` in one step, so ``path`` is never half-written (a kill at any moment leaves the old file or the new
    one). On an error the temporary file is removed and ``path`` is left as it was.

    The file gets the mode an ordinary ``open`` gives (``0o666`` less the umask), like every other output.

    Args:
        path: The file to write. Its folder is made if missing.
        durable: fsync the file and its folder, so the rename survives a power cut, not only a kill.
        keep_suffix: End the temporary name in ``path``'s suffix too, for writers that choose the format by it
            (``.mp4``, ``.gif``).

    Yields:
        The temporary path (:func:`temporary_name`), in ``path``'s folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, keep_suffix)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if durable:
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_atomic(path: str | os.PathLike, data: str | bytes, *, durable: bool = False) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path, durable=durable) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)


class DamagedFileError(ValueError):
    """A file tdwgym wrote does not read back (not JSON, or not the JSON object expected)."""


def read_json(path: str | os.PathLike, hint: str = "", *, object_only: bool = True) -> Any:
    """The JSON in ``path``.

    Args:
        path: The file.
        hint: What the user can do about a damaged file, appended to the message.
        object_only: Require a JSON object (a dict), as every tdwgym metadata file is.

    Raises:
        FileNotFoundError: No such file.
        DamagedFileError: One line naming the file and what is wrong with it (and ``hint``).
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise DamagedFileError(f"{path} is damaged: not text ({exc.reason} at byte {exc.start}){tail}") from None
    except IsADirectoryError:
        raise DamagedFileError(f"{path} is a folder, not a JSON file{tail}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "empty" if not text.strip() else f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise DamagedFileError(f"{path} is damaged: {what}{tail}") from None
    if object_only and not isinstance(value, dict):
        raise DamagedFileError(f"{path} is damaged: expected a JSON object, found {type(value).__name__}{tail}")
    return value


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be one (before anything is written): an existing file, a path under a
    file, or a folder this user cannot write in.

    Raises:
        UsageError: Naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {path} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output file that cannot be written (before anything is): an existing folder, or a parent that
    cannot be a folder or is not writable.

    Raises:
        UsageError: Naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {path} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")
    return path


def link_leading_out(root: str | os.PathLike, *entries: str | os.PathLike) -> tuple[Path, Path] | None:
    """The first symbolic link that leads outside ``root``, found at any level: on the way from ``root`` to each of
    ``entries`` (``RUN/videos`` when ``videos`` is a link) and anywhere below an entry that is a folder
    (``RUN/checkpoints/step_N``, ``RUN/eval/report.md``). Links that stay inside ``root`` are fine; links below a
    link are not followed.

    Returns:
        ``(link, where it leads)``, or None when every write into ``entries`` stays inside ``root``.
    """
    root = Path(root)
    inside = root.resolve()

    def leads_out(path: Path) -> bool:
        return path.is_symlink() and not path.resolve().is_relative_to(inside)

    for entry in map(Path, entries):
        path = root
        parts = entry.relative_to(root).parts if entry.is_relative_to(root) else (entry,)
        for part in parts:
            path = path / part
            if leads_out(path):
                return path, path.resolve()
            if path.is_symlink() or not path.exists():
                break
        else:
            if path.is_dir():
                for folder, dirs, files in os.walk(path):  # never descends into a linked folder
                    for name in sorted(dirs + files):
                        if leads_out(Path(folder) / name):
                            return Path(folder) / name, (Path(folder) / name).resolve()
    return None
