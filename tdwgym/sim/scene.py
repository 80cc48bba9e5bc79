"""Backend-neutral scene description: pure data, no simulator imports.

Units and axes follow ThreeDWorld: metres, kilograms, seconds and degrees; +x right, +y up, +z forward. The room is
centred on the origin with its floor at ``y = 0``. An object's ``position`` is the centre of its bounding box and
its ``rotation`` is a Unity Euler triple in degrees (z, then x, then y). Colours are RGB floats in ``[0, 1]``, as
TDW's ``set_color`` takes them.

Every spec is a frozen dataclass that round-trips through JSON (:meth:`SceneSpec.to_json` and
:meth:`SceneSpec.from_json`), so a scene can be stored beside the data it produced and regenerated exactly.

It runs a little over 600 lines because every spec carries its own checks and the checks of a whole scene (the room's
bounds, bodies interpenetrating, counts) read several specs: every bound of a scene is defined once, here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, get_args, get_origin, get_type_hints

from tdwgym.sim.geometry import overlaps

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone", "capsule")
"""Primitive shapes every backend can build (TDW: ``models_flex.json`` / ``models_special.json`` primitives)."""

COMPOUND = "compound"
"""Shape of an object made of several rigid :class:`PartSpec` parts (a non-convex body such as an L or a dumbbell)."""

PART_SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")
"""Shapes a compound object's parts may take."""

PATTERNS: tuple[str, ...] = ("plain", "checker", "stripes")
"""Surface patterns of the floor and walls."""

EVENT_KINDS: tuple[str, ...] = ("remove", "add", "replace", "teleport", "recolor", "collision")
"""Scripted scene edits (see :class:`SceneEvent`)."""

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float]

DEFAULT_FOV = 54.43
"""ThreeDWorld's default vertical field of view in degrees."""

MAX_ROOM_SIZE = 1000.0
"""Largest room width, length or height in metres."""

MAX_MASS = 1e6
"""Largest object mass in kilograms."""

MAX_SPEED = 50.0
"""Fastest initial speed of an object in m/s (a thrown ball's; tdwgym's scenarios stay under 10)."""

MAX_ANGULAR_SPEED = 200.0
"""Fastest initial spin of an object in rad/s."""

MAX_GRAVITY = 100.0
"""Strongest gravity in m/s^2, about 10 g (either way: a negative value pulls up)."""

MAX_OBJECTS = 64
"""Most movable objects in a scene, those its events add included: each step's cost grows with their contacts (100
objects at one spot took seconds a step, 300 minutes), and no scenario comes near it."""

OVERLAP_TOLERANCE = 0.01
"""How deep, in metres, two bodies (objects, or an object and a prop) may interpenetrate in a scene's starting
state. Deeper is refused. Resting contact (a block on a block, an object on the floor) is 0 or a gap; the depth is
measured conservatively, on solids inside each shape (the shape itself for cubes, spheres and props, inscribed
boxes and spheres for cylinders, cones, capsules and compound parts), so a scene is only refused where the bodies
surely interpenetrate."""

MAX_PATTERN_TILES = 256
"""Most pattern tiles along one side of a patterned surface (a texture is 8 texels per tile: 2048 at most)."""


class SceneError(ValueError):
    """A scene description is invalid (bad size, colour, shape, duplicate id, ...)."""


def _vec(value: Any, name: str, n: int = 3) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except TypeError as exc:
        raise SceneError(f"{name} must be a sequence of {n} numbers, got {value!r}") from exc
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise SceneError(f"{name} must be {n} finite numbers, got {value!r}")
    return out


def _number(value: Any, name: str, low: float, high: float, *, low_open: bool = False, unit: str = "") -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` when ``low_open``), or a SceneError naming
    ``name`` and the range."""
    left = "(" if low_open else "["
    valid = f"{left}{low:g}, {high:g}]{unit}"
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise SceneError(f"{name} must be a number in {valid}, got {value!r}") from exc
    if not (math.isfinite(x) and (x > low if low_open else x >= low) and x <= high):
        raise SceneError(f"{name} must be a finite number in {valid}, got {value!r}")
    return x


def _color(value: Any, name: str) -> tuple[float, ...]:
    out = _vec(value, name)
    if not all(0.0 <= c <= 1.0 for c in out):
        raise SceneError(f"{name} must be RGB floats in [0, 1], got {value!r}")
    return out


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Room:
    """An empty rectangular room (TDW: ``TDWUtils.create_empty_room(width, length)``).

    Attributes:
        width: Extent along x in metres.
        length: Extent along z in metres.
        height: Wall height in metres.
        floor_color: RGB of the floor.
        wall_color: RGB of the four walls.
        floor_pattern: One of :data:`PATTERNS`; ``"checker"`` and ``"stripes"`` alternate ``floor_color`` and
            ``floor_color2`` in tiles of ``tile_size`` metres.
        floor_color2: Second floor colour of a pattern.
        wall_pattern: One of :data:`PATTERNS`, for the walls.
        wall_color2: Second wall colour of a pattern.
        tile_size: Edge of a pattern tile in metres.
        ceiling: Whether the room has a ceiling at ``height`` (without one, the view above the walls is empty).
        ceiling_color: RGB of the ceiling.
    """

    width: float = 8.0
    length: float = 8.0
    height: float = 3.0
    floor_color: Color = (0.55, 0.55, 0.52)
    wall_color: Color = (0.80, 0.78, 0.72)
    floor_pattern: str = "plain"
    floor_color2: Color = (0.35, 0.35, 0.33)
    wall_pattern: str = "plain"
    wall_color2: Color = (0.65, 0.63, 0.58)
    tile_size: float = 0.5
    ceiling: bool = True
    ceiling_color: Color = (0.90, 0.89, 0.86)

    def __post_init__(self) -> None:
        for name in ("width", "length", "height"):
            _set(self, name, _number(getattr(self, name), f"Room.{name}", 0.0, MAX_ROOM_SIZE, low_open=True, unit=" m"))
        _set(self, "floor_color", _color(self.floor_color, "Room.floor_color"))
        _set(self, "wall_color", _color(self.wall_color, "Room.wall_color"))
        _set(self, "floor_color2", _color(self.floor_color2, "Room.floor_color2"))
        _set(self, "wall_color2", _color(self.wall_color2, "Room.wall_color2"))
        _set(self, "ceiling_color", _color(self.ceiling_color, "Room.ceiling_color"))
        if not isinstance(self.ceiling, bool):
            raise SceneError(f"Room.ceiling must be True or False, got {self.ceiling!r}")
        _set(self, "ceiling", bool(self.ceiling))
        for name in ("floor_pattern", "wall_pattern"):
            if getattr(self, name) not in PATTERNS:
                raise SceneError(f"Room.{name} must be one of {list(PATTERNS)}, got {getattr(self, name)!r}")
        _set(self, "tile_size", _number(self.tile_size, "Room.tile_size", 0.0, math.inf, low_open=True, unit=" m"))
        if (self.floor_pattern, self.wall_pattern) != ("plain", "plain"):
            smallest = max(self.width, self.length, self.height) / MAX_PATTERN_TILES
            if self.tile_size < smallest:
                raise SceneError(
                    f"Room.tile_size must be >= {smallest:.4g} m for a patterned {self.width:g} x {self.length:g} x "
                    f"{self.height:g} m room (at most {MAX_PATTERN_TILES} tiles along a side), got {self.tile_size!r}"
                )

    def contains(self, x: float, z: float, margin: float = 0.0) -> bool:
        """Whether the floor point ``(x, z)`` lies inside the walls by at least ``margin`` metres."""
        return abs(x) <= self.width / 2 - margin and abs(z) <= self.length / 2 - margin

    def bounds(self, margin: float = 0.0) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """The ranges of x, y and z (metres) of the points inside the walls, above the floor and below the ceiling
        (no upper bound without one) by at least ``margin``: the one definition of "inside the room"."""
        top = self.height - margin if self.ceiling else math.inf
        half_w, half_l = self.width / 2 - margin, self.length / 2 - margin
        return (-half_w, half_w), (margin, top), (-half_l, half_l)

    def check_inside(self, position: Sequence[float], name: str, margin: float = 0.0, why: str = "") -> None:
        """Refuse a point outside :meth:`bounds` in one line naming ``name`` and the valid ranges.

        Args:
            position: (x, y, z) in metres.
            name: What the point is, e.g. ``"Camera.position"``.
            margin: How far inside the walls, floor and ceiling the point must be (metres).
            why: Said after the ranges, e.g. ``" (its centre)"``.

        Raises:
            SceneError: The point lies outside.
        """
        ranges = self.bounds(margin)
        if all(lo <= float(v) <= hi for v, (lo, hi) in zip(position, ranges, strict=True)):
            return
        shown = ", ".join(
            f"{axis} in [{lo:.4g}, {hi:.4g}]" if hi < math.inf else f"{axis} >= {lo:.4g}"
            for axis, (lo, hi) in zip("xyz", ranges, strict=True)
        )
        ceiling = f" x {self.height:g}" if self.ceiling else " (no ceiling)"
        raise SceneError(
            f"{name} is {tuple(float(v) for v in position)!r}, outside the {self.width:g} x {self.length:g}{ceiling} m "
            f"room: {shown}{why}"
        )


@dataclass(frozen=True)
class PartSpec:
    """One rigid part of a compound object, placed relative to the object's ``position`` (before rotation).

    Attributes:
        shape: One of :data:`PART_SHAPES` (cylinders stand along y).
        size: Bounding-box extents (x, y, z) in metres, with the same rules as :attr:`ObjectSpec.size`.
        offset: Centre of the part relative to the object's centre, in metres.
    """

    shape: str = "cube"
    size: Vec3 = (0.1, 0.1, 0.1)
    offset: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.shape not in PART_SHAPES:
            raise SceneError(f"PartSpec.shape must be one of {list(PART_SHAPES)}, got {self.shape!r}")
        size = _vec(self.size, "PartSpec.size")
        if min(size) <= 0:
            raise SceneError(f"PartSpec.size must be positive, got {self.size!r}")
        if self.shape == "sphere" and not (math.isclose(size[0], size[1]) and math.isclose(size[0], size[2])):
            raise SceneError(f"a sphere part needs equal extents, got size {self.size!r}")
        if self.shape == "cylinder" and not math.isclose(size[0], size[2]):
            raise SceneError(f"a cylinder part needs size[0] == size[2], got {self.size!r}")
        _set(self, "size", size)
        _set(self, "offset", _vec(self.offset, "PartSpec.offset"))


@dataclass(frozen=True)
class ObjectSpec:
    """A movable rigid body.

    Attributes:
        id: Unique positive id; it is the object's value in segmentation masks.
        shape: One of :data:`SHAPES`, or :data:`COMPOUND` for a body made of ``parts``.
        size: Bounding-box extents (x, y, z) in metres (of a compound, the box around its parts). Spheres need
            equal extents; cylinders, cones and capsules stand along y with diameter ``size[0] == size[2]``; a
            capsule's height includes its caps.
        mass: Kilograms.
        color: RGB in [0, 1].
        friction: Coulomb friction coefficient.
        restitution: Bounciness in [0, 1].
        position: Centre of the bounding box in metres.
        rotation: Unity Euler angles in degrees.
        velocity: Initial linear velocity in m/s.
        angular_velocity: Initial angular velocity in rad/s (TDW axes).
        name: Free-form label.
        parts: The parts of a :data:`COMPOUND` object (empty for primitives). The centre of mass is the object's
            ``position``.
    """

    id: int
    shape: str = "cube"
    size: Vec3 = (0.3, 0.3, 0.3)
    mass: float = 1.0
    color: Color = (0.8, 0.1, 0.1)
    friction: float = 0.4
    restitution: float = 0.3
    position: Vec3 = (0.0, 0.15, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    velocity: Vec3 = (0.0, 0.0, 0.0)
    angular_velocity: Vec3 = (0.0, 0.0, 0.0)
    name: str = ""
    parts: tuple[PartSpec, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise SceneError(f"ObjectSpec.id must be an int >= 1, got {self.id!r}")
        if self.shape not in (*SHAPES, COMPOUND):
            raise SceneError(f"ObjectSpec.shape must be one of {[*SHAPES, COMPOUND]}, got {self.shape!r}")
        _set(self, "parts", tuple(self.parts))
        if (self.shape == COMPOUND) != bool(self.parts):
            raise SceneError(
                f"a {COMPOUND!r} object needs parts and only a compound may have them "
                f"(shape {self.shape!r}, {len(self.parts)} parts)"
            )
        size = _vec(self.size, "ObjectSpec.size")
        if min(size) <= 0:
            raise SceneError(f"ObjectSpec.size must be positive, got {self.size!r}")
        if self.shape == "sphere" and not (math.isclose(size[0], size[1]) and math.isclose(size[0], size[2])):
            raise SceneError(f"a sphere needs equal extents, got size {self.size!r}")
        if self.shape in ("cylinder", "cone", "capsule") and not math.isclose(size[0], size[2]):
            raise SceneError(f"a {self.shape} needs size[0] == size[2] (its diameter), got {self.size!r}")
        if self.shape == "capsule" and size[1] < size[0]:
            raise SceneError(f"a capsule's height size[1] must be >= its diameter size[0], got {self.size!r}")
        _set(self, "size", size)
        _set(self, "mass", _number(self.mass, "ObjectSpec.mass", 0.0, MAX_MASS, low_open=True, unit=" kg"))
        _set(self, "friction", _number(self.friction, "ObjectSpec.friction", 0.0, math.inf))
        _set(self, "restitution", _number(self.restitution, "ObjectSpec.restitution", 0.0, 1.0))
        _set(self, "color", _color(self.color, "ObjectSpec.color"))
        for name in ("position", "rotation", "velocity", "angular_velocity"):
            _set(self, name, _vec(getattr(self, name), f"ObjectSpec.{name}"))
        for name, most, unit in (("velocity", MAX_SPEED, "m/s"), ("angular_velocity", MAX_ANGULAR_SPEED, "rad/s")):
            speed = math.sqrt(sum(v * v for v in getattr(self, name)))
            if speed > most:
                raise SceneError(
                    f"ObjectSpec.{name} of object {self.id} is {speed:.4g} {unit}, above the {most:g} {unit} a scene "
                    f"may start with, got {getattr(self, name)!r}"
                )

    @property
    def radius(self) -> float:
        """Radius of the bounding sphere in metres."""
        return 0.5 * math.sqrt(sum(s * s for s in self.size))


@dataclass(frozen=True)
class PropSpec:
    """A static box: an occluder panel, a ramp, a barrier. It never moves and is not pushable.

    Attributes:
        id: Unique positive id (its value in segmentation masks).
        size: Box extents (x, y, z) in metres before rotation.
        position: Box centre in metres.
        rotation: Unity Euler angles in degrees.
        color: RGB in [0, 1].
        friction: Coulomb friction coefficient.
        restitution: Bounciness in [0, 1].
        name: Free-form label, e.g. ``"occluder"``.
    """

    id: int
    size: Vec3 = (1.5, 1.0, 0.05)
    position: Vec3 = (0.0, 0.5, 0.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    color: Color = (0.2, 0.35, 0.8)
    friction: float = 0.5
    restitution: float = 0.2
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise SceneError(f"PropSpec.id must be an int >= 1, got {self.id!r}")
        size = _vec(self.size, "PropSpec.size")
        if min(size) <= 0:
            raise SceneError(f"PropSpec.size must be positive, got {self.size!r}")
        _set(self, "size", size)
        _set(self, "position", _vec(self.position, "PropSpec.position"))
        _set(self, "rotation", _vec(self.rotation, "PropSpec.rotation"))
        _set(self, "color", _color(self.color, "PropSpec.color"))
        _set(self, "friction", _number(self.friction, "PropSpec.friction", 0.0, math.inf))
        _set(self, "restitution", _number(self.restitution, "PropSpec.restitution", 0.0, 1.0))


@dataclass(frozen=True)
class Camera:
    """The observer camera (TDW: a kinematic avatar).

    Attributes:
        position: Eye position in metres.
        yaw: Degrees about +y; 0 looks along +z, 90 along +x.
        pitch: Degrees; positive looks up.
        fov: Vertical field of view in degrees.
        near: Near clipping plane in metres.
        far: Far clipping plane in metres.
        radius: Radius of the camera's collider in metres: it cannot enter objects and objects bounce off it.
    """

    position: Vec3 = (0.0, 1.2, -3.0)
    yaw: float = 0.0
    pitch: float = 0.0
    fov: float = DEFAULT_FOV
    near: float = 0.1
    far: float = 100.0
    radius: float = 0.2

    def __post_init__(self) -> None:
        _set(self, "position", _vec(self.position, "Camera.position"))
        for name in ("yaw", "pitch"):
            if not math.isfinite(float(getattr(self, name))):
                raise SceneError(f"Camera.{name} must be finite degrees, got {getattr(self, name)!r}")
        if not 0.0 < float(self.fov) < 180.0:
            raise SceneError(f"Camera.fov must be in (0, 180) degrees, got {self.fov!r}")
        if not (0.0 < float(self.near) < float(self.far) and math.isfinite(float(self.far))):
            raise SceneError(f"Camera needs 0 < near < far < inf (metres), got near={self.near!r} far={self.far!r}")
        _number(self.radius, "Camera.radius", 0.0, math.inf, unit=" m")
        for name in ("yaw", "pitch", "fov", "near", "far", "radius"):
            _set(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class Light:
    """A directional light with ambient, diffuse and specular terms.

    Attributes:
        direction: Direction the light travels (TDW axes), e.g. ``(0.3, -1, 0.4)`` shines down and forward.
        color: RGB in [0, 1].
        ambient: Ambient coefficient.
        diffuse: Diffuse coefficient.
        specular: Specular coefficient.
        shadows: Whether objects cast shadows.
    """

    direction: Vec3 = (0.35, -1.0, 0.5)
    color: Color = (1.0, 1.0, 1.0)
    ambient: float = 0.55
    diffuse: float = 0.45
    specular: float = 0.05
    shadows: bool = False

    def __post_init__(self) -> None:
        d = _vec(self.direction, "Light.direction")
        if not any(d):
            raise SceneError("Light.direction must be non-zero")
        _set(self, "direction", d)
        _set(self, "color", _color(self.color, "Light.color"))
        for name in ("ambient", "diffuse", "specular"):
            _set(self, name, _number(getattr(self, name), f"Light.{name}", 0.0, math.inf))
        _set(self, "shadows", bool(self.shadows))


@dataclass(frozen=True)
class SceneEvent:
    """A scripted edit of the scene at a given env step, applied by the environment through the backend.

    The event is applied just before the physics of the step that produces observation ``frame`` (so observations
    ``0 .. frame - 1`` are unaffected). Kinds and their ``params``:

    * ``"remove"``: delete object ``object_id``.
    * ``"add"``: add ``params["object"]`` (an :class:`ObjectSpec` as a dict, with its position and velocities).
    * ``"replace"``: swap object ``object_id`` for ``params["object"]`` (same id), keeping its current position
      and linear velocity; shape, size, colour, mass and rotation come from the new spec.
    * ``"teleport"``: move object ``object_id`` by ``params["offset"]`` metres, keeping its velocity.
    * ``"recolor"``: set object ``object_id``'s colour to ``params["color"]``.
    * ``"collision"``: enable or disable (``params["enabled"]``) contacts between ``object_id`` and
      ``params["other"]`` (0 is the room).

    Attributes:
        frame: Observation index (>= 1) the event first affects.
        kind: One of :data:`EVENT_KINDS`.
        object_id: The object edited (for ``"add"``, the new object's id).
        params: JSON-serialisable parameters of the kind.
    """

    frame: int
    kind: str
    object_id: int
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 1:
            raise SceneError(f"SceneEvent.frame must be an int >= 1, got {self.frame!r}")
        if self.kind not in EVENT_KINDS:
            raise SceneError(f"SceneEvent.kind must be one of {list(EVENT_KINDS)}, got {self.kind!r}")
        if isinstance(self.object_id, bool) or not isinstance(self.object_id, int):
            raise SceneError(f"SceneEvent.object_id must be an int, got {self.object_id!r}")
        _set(self, "params", _json_form(self.params, "SceneEvent.params"))
        self._check_params()

    def _check_params(self) -> None:
        """The parameters the kind reads, checked now: a bad one would otherwise fail (or turn NaN) mid-episode."""
        params, kind = self.params, self.kind
        needed = {
            "add": ("object",),
            "replace": ("object",),
            "teleport": ("offset",),
            "recolor": ("color",),
            "collision": ("other", "enabled"),
        }.get(kind, ())
        missing = [k for k in needed if k not in params]
        if missing:
            raise SceneError(f"a {kind!r} SceneEvent needs params {list(needed)}, missing {missing}")
        if kind == "teleport":
            _vec(params["offset"], "SceneEvent.params['offset'] (metres)")
        elif kind == "recolor":
            _color(params["color"], "SceneEvent.params['color']")
        elif kind in ("add", "replace"):
            new = object_from_dict(params["object"])
            if kind == "add" and new.id != self.object_id:
                raise SceneError(f"an 'add' SceneEvent adds object_id {self.object_id}, but its object has id {new.id}")
        elif kind == "collision":
            other = params["other"]
            if isinstance(other, bool) or not isinstance(other, int) or other < 0:
                raise SceneError(f"SceneEvent.params['other'] must be an object id >= 0 (0: the room), got {other!r}")
            if not isinstance(params["enabled"], bool):
                raise SceneError(f"SceneEvent.params['enabled'] must be True or False, got {params['enabled']!r}")


def object_from_dict(data: dict[str, Any]) -> ObjectSpec:
    """An :class:`ObjectSpec` from its :func:`dataclasses.asdict` form (as stored in ``"add"`` events)."""
    return _from_dict(ObjectSpec, data)


@dataclass(frozen=True)
class SceneSpec:
    """Everything a backend needs to build and simulate one episode's scene.

    Attributes:
        room: The room.
        objects: Movable bodies.
        props: Static boxes (occluders, ramps).
        camera: The observer camera's starting pose.
        light: Lighting.
        gravity: Gravitational acceleration in m/s^2, pointing down (-y).
        labels: Free-form JSON-serialisable labels (scenario, factors, ...).
        events: Scripted edits applied during the episode (see :class:`SceneEvent`), in frame order.
    """

    room: Room = field(default_factory=Room)
    objects: tuple[ObjectSpec, ...] = ()
    props: tuple[PropSpec, ...] = ()
    camera: Camera = field(default_factory=Camera)
    light: Light = field(default_factory=Light)
    gravity: float = 9.81
    labels: dict[str, Any] = field(default_factory=dict)
    events: tuple[SceneEvent, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "objects", tuple(self.objects))
        _set(self, "props", tuple(self.props))
        _set(self, "events", tuple(sorted(self.events, key=lambda e: e.frame)))
        ids = [o.id for o in self.objects] + [p.id for p in self.props]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise SceneError(f"object and prop ids must be unique, duplicated: {dupes}")
        _set(self, "gravity", _number(self.gravity, "SceneSpec.gravity", -MAX_GRAVITY, MAX_GRAVITY, unit=" m/s^2"))
        added = sum(1 for e in self.events if e.kind == "add")
        if len(self.objects) + added > MAX_OBJECTS:
            raise SceneError(
                f"SceneSpec.objects: {len(self.objects)} objects{f' and {added} added by events' if added else ''}, "
                f"more than the {MAX_OBJECTS} a scene may hold"
            )
        _set(self, "labels", _json_form(self.labels, "SceneSpec.labels"))
        if self.room.ceiling:
            height = self.room.height
            above = [o.id for o in (*self.objects, *self.props) if o.position[1] + o.size[1] / 2 > height + 1e-9]
            if above or self.camera.position[1] > height:
                what = f"objects/props {above}" if above else f"the camera (y={self.camera.position[1]})"
                raise SceneError(
                    f"{what} reach above the ceiling at Room.height={height} m; lower them, raise Room.height, or "
                    "build the room without a ceiling (Room(ceiling=False))"
                )
        room = self.room
        for obj in self.objects:
            room.check_inside(obj.position, f"ObjectSpec.position of object {obj.id}", why=" (its centre)")
        for prop in self.props:
            room.check_inside(prop.position, f"PropSpec.position of prop {prop.id}", why=" (its centre)")
        room.check_inside(self.camera.position, "Camera.position")
        for event in self.events:
            if event.kind == "teleport":
                _check_offset(room, event)
        _check_overlaps(self.objects, self.props)

    def object(self, object_id: int) -> ObjectSpec:
        """The movable object with ``object_id``."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(f"no object with id {object_id}; ids are {[o.id for o in self.objects]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict."""
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        """Serialise to a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneSpec:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`SceneError`."""
        return _from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> SceneSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def _check_offset(room: Room, event: SceneEvent) -> None:
    """A teleport's offset can land inside ``room`` only if it is no longer than the room along each axis."""
    limits = (room.width, room.height, room.length)
    offset = event.params["offset"]
    if any(abs(float(v)) > limit for v, limit in zip(offset, limits, strict=True)):
        raise SceneError(
            f"SceneEvent.params['offset'] of the teleport of object {event.object_id} at frame {event.frame} is "
            f"{offset!r}, which moves it out of the {room.width:g} x {room.length:g} x {room.height:g} m room from "
            f"anywhere in it: x must be in [{-room.width:g}, {room.width:g}], y in [{-room.height:g}, "
            f"{room.height:g}], z in [{-room.length:g}, {room.length:g}] m"
        )


def _check_overlaps(objects: Sequence[ObjectSpec], props: Sequence[PropSpec]) -> None:
    """Refuse objects that interpenetrate each other or a prop deeper than :data:`OVERLAP_TOLERANCE` (props may
    touch props: they never move), measured by :func:`~tdwgym.sim.geometry.overlaps`."""
    found = overlaps(objects, props, OVERLAP_TOLERANCE)
    if found:
        depth, a, b = found[0]
        other = f"prop {b.id} ({b.name or 'box'})"
        if isinstance(b, ObjectSpec):
            other = f"object {b.id} ({b.name or b.shape})"
        more = f" ({len(found)} pairs in all)" if len(found) > 1 else ""
        raise SceneError(
            f"SceneSpec.objects: object {a.id} ({a.name or a.shape}) and {other} overlap by "
            f"{depth:.3g} m at reset{more}, more than the {OVERLAP_TOLERANCE:g} m a scene may start with "
            "(OVERLAP_TOLERANCE); move them apart"
        )


def _json_form(value: dict[str, Any], name: str) -> dict[str, Any]:
    """``value`` as JSON gives it back (tuples become lists), so a scene equals its JSON round-trip."""
    try:
        return json.loads(json.dumps(value, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise SceneError(f"{name} must be JSON-serialisable: {exc}") from exc


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays in labels become plain numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _coerce(hint: Any, value: Any) -> Any:
    if is_dataclass(hint):
        return _from_dict(hint, value)
    if get_origin(hint) is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(value)
    return value


def _from_dict(cls: Any, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise SceneError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SceneError(f"unknown {cls.__name__} keys {unknown}; valid keys are {sorted(names)}")
    hints = get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v) for k, v in data.items()})
