"""Simulator adapters behind one interface; :func:`make_backend` resolves names through :data:`BACKENDS`.

Importing this package imports every backend module, and each adds its class to :data:`BACKENDS`. The modules import
their simulators lazily (ThreeDWorld when a ``tdw`` backend is made), so this is cheap.
"""

from tdwgym.sim.backends import bullet as _bullet  # noqa: F401 - registers "bullet"
from tdwgym.sim.backends import tdw as _tdw  # noqa: F401 - registers "tdw"
from tdwgym.sim.backends.base import (
    BACKENDS,
    PASSES,
    Backend,
    BackendError,
    Contact,
    ObjectState,
    RayHit,
    make_backend,
    register_backend,
    resolve_backend_name,
)

__all__ = [
    "BACKENDS",
    "PASSES",
    "Backend",
    "BackendError",
    "Contact",
    "ObjectState",
    "RayHit",
    "make_backend",
    "register_backend",
    "resolve_backend_name",
]
