"""Error types every floor may raise."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A user error on the command line: the ``tdwgym`` command prints its message as one line and exits with 2."""
