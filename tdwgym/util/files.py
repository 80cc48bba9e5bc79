"""Reading the small JSON files tdwgym writes beside its outputs, with errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["DamagedFileError", "read_json"]


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
