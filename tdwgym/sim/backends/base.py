"""The backend interface: what every simulator adapter provides, in ThreeDWorld's units and axes.

A backend loads a :class:`~tdwgym.sim.scene.SceneSpec`, steps physics, moves the camera, applies pushes, casts rays,
renders image passes and reports object states and contacts. It knows nothing of Gymnasium or torch. Simulator
types never cross this boundary: everything here is numpy arrays, floats and the dataclasses below.

:func:`make_backend` is the only place backend names are resolved, through :data:`BACKENDS`, a name -> class table
that each backend module fills with :func:`register_backend` when it is imported (``tdwgym.sim.backends`` imports them
all; this module never names a concrete backend).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdwgym.sim.scene import ObjectSpec, SceneSpec

BACKENDS: dict[str, type[Backend]] = {}
"""Backend name -> class, filled by :func:`register_backend` (the keys are the valid backend names)."""

PASSES: tuple[str, ...] = ("rgb", "depth", "segmentation")
"""Valid render passes: RGB uint8 (H, W, 3), depth in metres float32 (H, W), object ids int32 (H, W)."""

BACKEND_ENV_VAR = "TDWGYM_BACKEND"
"""Environment variable naming the default backend when none is passed."""


@dataclass(frozen=True)
class ObjectState:
    """Kinematic state of one movable object (TDW axes).

    Attributes:
        id: The object's scene id.
        position: Bounding-box centre in metres, shape (3,).
        rotation: Quaternion (x, y, z, w), shape (4,).
        velocity: Linear velocity in m/s, shape (3,).
        angular_velocity: Angular velocity in rad/s, shape (3,).
    """

    id: int
    position: np.ndarray
    rotation: np.ndarray
    velocity: np.ndarray
    angular_velocity: np.ndarray


@dataclass(frozen=True)
class Contact:
    """Contact between two bodies accumulated over one :meth:`Backend.step` call.

    Attributes:
        a: Scene id of the first body (0 means the room: floor or walls).
        b: Scene id of the second body; ``a < b`` unless ``a == 0``.
        impulse: Total normal impulse in N*s over the step.
        point: A contact point in metres, shape (3,).
        normal: Contact normal pointing from ``b`` to ``a``, shape (3,).
    """

    a: int
    b: int
    impulse: float
    point: np.ndarray
    normal: np.ndarray


@dataclass(frozen=True)
class RayHit:
    """The first body hit by a ray.

    Attributes:
        id: Scene id of the body hit (0 for the room).
        point: Hit point in metres.
        normal: Surface normal at the hit point.
        distance: Distance from the ray origin in metres.
    """

    id: int
    point: np.ndarray
    normal: np.ndarray
    distance: float


class BackendError(RuntimeError):
    """The simulator failed or was used out of order (e.g. stepped before a scene was loaded)."""


class Backend(ABC):
    """A physics simulator and renderer behind one scene at a time."""

    name: str = "base"

    @property
    @abstractmethod
    def timestep(self) -> float:
        """Seconds per physics substep."""

    @abstractmethod
    def load(self, scene: SceneSpec) -> None:
        """Replace whatever is loaded with ``scene`` (objects get their initial velocities)."""

    @abstractmethod
    def step(self, substeps: int) -> list[Contact]:
        """Advance physics by ``substeps`` substeps and return the contacts that occurred."""

    @abstractmethod
    def set_camera(self, position: Sequence[float], yaw: float, pitch: float) -> None:
        """Move the camera (and its collider) to ``position`` looking along ``yaw``/``pitch`` degrees."""

    @abstractmethod
    def push(self, object_id: int, point: Sequence[float], impulse: Sequence[float]) -> None:
        """Apply an impulse (N*s, world axes) at a world ``point`` of a movable object, effective on the next step."""

    @abstractmethod
    def ray_cast(self, origin: Sequence[float], direction: Sequence[float], max_distance: float) -> RayHit | None:
        """First body (object, prop or room; never the camera) hit by a ray, or None within ``max_distance``."""

    @abstractmethod
    def overlapping(self, center: Sequence[float], radius: float) -> list[int]:
        """Ids of bodies (room is 0) whose surface is within a sphere at ``center`` of ``radius``."""

    @abstractmethod
    def render(self, width: int, height: int, passes: Sequence[str] = ("rgb",)) -> dict[str, np.ndarray]:
        """Render the requested :data:`PASSES` from the camera at ``width`` x ``height`` pixels."""

    @abstractmethod
    def object_states(self) -> dict[int, ObjectState]:
        """Current state of every movable object, keyed by scene id."""

    @abstractmethod
    def set_object_state(
        self,
        object_id: int,
        position: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        velocity: Sequence[float] | None = None,
        angular_velocity: Sequence[float] | None = None,
    ) -> None:
        """Teleport a movable object and/or set its velocities (``rotation`` is a quaternion (x, y, z, w))."""

    # Scene edits mid-episode, used by scripted (e.g. impossible) events. Backends that cannot do one raise
    # NotImplementedError naming the backend.
    def remove_object(self, object_id: int) -> None:
        """Delete a movable object from the scene."""
        raise NotImplementedError(f"the {self.name} backend cannot remove objects")

    def add_object(self, spec: ObjectSpec) -> None:
        """Add a movable object mid-episode (its id must be new), with the spec's initial velocities."""
        raise NotImplementedError(f"the {self.name} backend cannot add objects")

    def set_object_color(self, object_id: int, color: Sequence[float]) -> None:
        """Recolour a movable object (RGB floats in [0, 1])."""
        raise NotImplementedError(f"the {self.name} backend cannot recolour objects")

    def set_collision_enabled(self, id_a: int, id_b: int, enabled: bool) -> None:
        """Enable or disable collisions between two bodies (scene ids; 0 is every room surface)."""
        raise NotImplementedError(f"the {self.name} backend cannot change collision pairs")

    @abstractmethod
    def close(self) -> None:
        """Free the simulator; safe to call twice."""

    def version(self) -> dict[str, Any]:
        """Versions and settings of the simulator, for metadata records."""
        return {"backend": self.name}

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: add a backend to :data:`BACKENDS` under its ``name``.

    Raises:
        ValueError: Another class already has that name.
    """
    if BACKENDS.get(cls.name, cls) is not cls:
        raise ValueError(f"backend name {cls.name!r} is taken by {BACKENDS[cls.name].__qualname__}")
    BACKENDS[cls.name] = cls
    return cls


def resolve_backend_name(name: str | None) -> str:
    """The backend name to use: ``name``, else ``$TDWGYM_BACKEND``, else ``"bullet"``; validated."""
    chosen = name if name is not None else os.environ.get(BACKEND_ENV_VAR) or "bullet"
    if chosen not in BACKENDS:
        source = f"${BACKEND_ENV_VAR}" if name is None else "backend"
        raise ValueError(f"unknown {source} {chosen!r}; valid backends are {list(BACKENDS)}")
    return chosen


def make_backend(name: str | None = None, **kwargs: Any) -> Backend:
    """Create a backend by name (see :func:`resolve_backend_name`); ``kwargs`` go to its constructor."""
    return BACKENDS[resolve_backend_name(name)](**kwargs)
