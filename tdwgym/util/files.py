"""Reading the small JSON files tdwgym writes beside its outputs, with errors that name the file, and the checks of
an output folder or file before anything is written there."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tdwgym.util.errors import UsageError

__all__ = ["DamagedFileError", "check_output_file", "check_output_folder", "read_json"]


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
