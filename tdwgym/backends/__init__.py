"""Simulator adapters behind one interface; :func:`make_backend` resolves names."""

from tdwgym.backends.base import (
    BACKENDS,
    PASSES,
    Backend,
    BackendError,
    Contact,
    ObjectState,
    RayHit,
    make_backend,
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
    "resolve_backend_name",
]
