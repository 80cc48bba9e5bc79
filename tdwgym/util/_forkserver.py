"""Imported by a ``forkserver`` process at its start (as a preload module), never by anything else: it asks the
kernel to kill the fork server when the process that started it dies, even by kill -9. Worker processes forked from
the server call :func:`tdwgym.util.processes.die_with_parent` themselves, so nothing a killed parent started lives on
(and its ``resource_tracker`` sees every pipe close, and exits)."""

from __future__ import annotations

import os

from tdwgym.util.processes import FORKSERVER_PARENT_ENV, die_with_parent

if os.environ.get(FORKSERVER_PARENT_ENV) == str(os.getppid()):
    die_with_parent(os.getppid())
