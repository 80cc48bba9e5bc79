"""Building blocks the scenario generators share: rooms, lights, objects by shape name, distractors, clutter.

Everything here is pure: it builds :mod:`tdwgym.sim.scene` dataclasses from a passed ``np.random.Generator`` and the
curriculum level. What each level adds (see docs/scenarios.md):

* 0: bare room (fixed size and plain colours), cube and sphere, plain colours, default physics.
* 1: room size and colours vary; more shapes, colours, sizes and objects.
* 2: mass, friction and restitution vary; several simultaneous motions; patterned floor and walls; distractor
  objects at rest.
* 3: clutter (static boxes along the walls, compound objects at rest), varied lighting and camera height,
  compound (non-convex) shapes among the main objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tdwgym.envs.factors import PALETTE, FactorPlan
from tdwgym.envs.sampling import sample_until
from tdwgym.sim.scene import COMPOUND, Light, ObjectSpec, PartSpec, PropSpec, Room

ROUND_SHAPES = ("sphere", "cylinder", "capsule")
"""Shapes that roll when launched along the floor (cylinders and capsules lie down across their path)."""

SLIDING_FRICTION = 0.05
"""Friction of objects that slide (levels 0-1; level 2 scales it)."""
ROLLING_FRICTION = 0.4
"""Friction of objects that roll (levels 0-1; level 2 scales it)."""

COMPOUND_SHAPES = ("l_block", "dumbbell")
"""Shape names built as compound bodies."""

DROP = 0.002
"""Clearance in metres between a resting object and the floor at spawn."""


def room_for_level(rng: np.random.Generator, level: int) -> Room:
    """The room: bare at level 0, varied size and colours at 1, patterned floor and walls from 2."""
    if level == 0:
        return Room()
    width, length = float(rng.uniform(7.0, 10.0)), float(rng.uniform(7.0, 10.0))
    floor = tuple(float(v) for v in rng.uniform(0.35, 0.65, 3))
    wall = tuple(float(v) for v in rng.uniform(0.6, 0.9, 3))
    if level == 1:
        return Room(width=width, length=length, floor_color=floor, wall_color=wall)
    return Room(
        width=width,
        length=length,
        floor_color=floor,
        wall_color=wall,
        floor_pattern="checker",
        floor_color2=tuple(float(v) for v in np.clip(np.array(floor) - 0.25, 0, 1)),
        wall_pattern=("stripes", "checker")[int(rng.integers(2))],
        wall_color2=tuple(float(v) for v in rng.uniform(0.3, 0.9, 3)),
        tile_size=float(rng.uniform(0.4, 0.8)),
    )


def light_for_level(rng: np.random.Generator, level: int) -> Light:
    """Default light below level 3; varied direction, intensity and tint at level 3."""
    if level < 3:
        return Light()
    direction = (float(rng.uniform(-1, 1)), -float(rng.uniform(0.5, 1.5)), float(rng.uniform(-1, 1)))
    tint = tuple(float(v) for v in np.clip(1.0 - rng.uniform(0.0, 0.25, 3), 0, 1))
    return Light(
        direction=direction,
        color=tint,
        ambient=float(rng.uniform(0.3, 0.7)),
        diffuse=float(rng.uniform(0.25, 0.6)),
        specular=float(rng.uniform(0.0, 0.2)),
    )


def camera_height(rng: np.random.Generator, level: int, lo: float = 1.0, hi: float = 1.4) -> float:
    """Camera eye height: ``lo`` to ``hi`` metres, widened to 0.7 to 2.0 m at level 3."""
    if level >= 3:
        return float(rng.uniform(min(lo, 0.7), max(hi, 2.0)))
    return float(rng.uniform(lo, hi))


def color_rgb(name: str) -> tuple[float, float, float]:
    """RGB of a named palette colour."""
    return PALETTE[name]


def shape_size(shape: str, diameter: float, rng: np.random.Generator, level: int) -> tuple[float, float, float]:
    """Bounding-box extents of ``shape`` with footprint ``diameter`` (upright, before any rotation)."""
    d = diameter
    if shape == "sphere":
        return (d, d, d)
    if shape == "cube":
        return (d, d * float(rng.uniform(0.7, 1.3)) if level >= 1 else d, d)
    if shape == "l_block":
        return (d, d / 3, d)
    if shape == "dumbbell":
        return (d, 0.45 * d, 0.45 * d)
    return (d, d * float(rng.uniform(1.0, 1.8)), d)


def compound_parts(shape: str, size: Sequence[float]) -> tuple[PartSpec, ...]:
    """Parts of a compound shape, offset so that the object's position is their common centre of mass."""
    if shape == "l_block":
        d, t = size[0], size[1]
        parts = [((d, t, t), (0.0, 0.0, -(d - t) / 2)), ((t, t, d - t), ((d - t) / 2, 0.0, t / 2))]
        vols = [p[0][0] * p[0][1] * p[0][2] for p in parts]
        com = sum(np.array(p[1]) * v for p, v in zip(parts, vols, strict=True)) / sum(vols)
        return tuple(PartSpec("cube", s, tuple(float(x) for x in np.array(o) - com)) for s, o in parts)
    if shape == "dumbbell":
        d, s = size[0], size[1]
        return (
            PartSpec("sphere", (s, s, s), (-(d - s) / 2, 0.0, 0.0)),
            PartSpec("sphere", (s, s, s), ((d - s) / 2, 0.0, 0.0)),
            PartSpec("cube", (d - s, s / 3, s / 3), (0.0, 0.0, 0.0)),
        )
    raise ValueError(f"{shape!r} is not a compound shape; compound shapes are {list(COMPOUND_SHAPES)}")


def footprint(shape: str, size: Sequence[float]) -> float:
    """Radius in metres of the floor disc an object of ``shape`` covers (round shapes lie down to roll)."""
    if shape in ("cylinder", "capsule"):
        return 0.5 * math.hypot(size[0], size[1])
    return 0.5 * math.hypot(size[0], size[2])


def make_object(
    oid: int,
    shape: str,
    diameter: float,
    color: str,
    rng: np.random.Generator,
    level: int,
    *,
    position_xz: Sequence[float],
    velocity: Sequence[float] = (0.0, 0.0, 0.0),
    y: float | None = None,
    yaw: float | None = None,
    mass: float = 1.0,
    restitution: float | None = None,
    friction: float | None = None,
    roll: bool = True,
    size: Sequence[float] | None = None,
    name: str = "",
) -> ObjectSpec:
    """An object of a named shape (a primitive or a compound) resting on the floor or at height ``y``.

    A round shape launched horizontally on the floor rolls without slipping (cylinders and capsules lie across
    their path); other shapes slide on low friction. Friction and restitution default to fixed values below level 2
    and vary from level 2.

    Args:
        oid: Scene id.
        shape: A primitive of :data:`tdwgym.sim.scene.SHAPES` or one of :data:`COMPOUND_SHAPES`.
        diameter: Footprint size in metres.
        color: Palette colour name.
        rng: Randomness for the size and the physics defaults.
        level: Curriculum level.
        position_xz: Floor position (x, z) of the centre.
        velocity: Initial velocity (m/s).
        y: Centre height; default: resting on the floor.
        yaw: Heading in degrees of a sliding object; default: random.
        mass: Kilograms.
        restitution: Default: 0.3 below level 2, else drawn in [0.05, 0.8].
        friction: Default: 0.4 (rolling) or 0.05 (sliding) below level 2, else drawn around those.
        roll: Whether round shapes on the floor lie down and roll along their velocity.
        size: Explicit extents (overrides the size drawn from ``diameter``).
        name: Free-form label.
    """
    size = tuple(float(s) for s in size) if size is not None else shape_size(shape, diameter, rng, level)
    v = np.asarray(velocity, dtype=np.float64)
    speed_h = math.hypot(v[0], v[2])
    heading = math.degrees(math.atan2(v[0], v[2])) if speed_h > 1e-9 else float(rng.uniform(0.0, 360.0))
    rolls = roll and shape in ROUND_SHAPES
    spin = np.zeros(3)
    if shape == "sphere":
        rotation = (0.0, 0.0, 0.0)
        rest = size[0] / 2
    elif rolls:
        rotation = (90.0, heading + 90.0, 0.0)  # lie across the path
        rest = size[0] / 2
    else:
        rotation = (0.0, heading if yaw is None else float(yaw), 0.0)
        rest = size[1] / 2
    on_floor = y is None
    if rolls and on_floor and speed_h > 1e-9:
        # rolling without slipping: the contact point is at rest, v + w x (-r up) = 0, so w = up x v / r
        spin = np.cross([0.0, 1.0, 0.0], v * [1, 0, 1]) / (size[0] / 2)
    if friction is None:
        base = ROLLING_FRICTION if rolls else SLIDING_FRICTION
        friction = base if level < 2 else float(base * rng.uniform(0.5, 1.6))
    if restitution is None:
        restitution = 0.3 if level < 2 else float(rng.uniform(0.05, 0.8))
    parts: tuple[PartSpec, ...] = ()
    spec_shape = shape
    if shape in COMPOUND_SHAPES:
        parts, spec_shape = compound_parts(shape, size), COMPOUND
    centre_y = rest + DROP if on_floor else float(y)  # type: ignore[arg-type]
    return ObjectSpec(
        id=oid,
        shape=spec_shape,
        size=size,
        mass=float(mass),
        color=color_rgb(color),
        friction=float(friction),
        restitution=float(restitution),
        position=(float(position_xz[0]), centre_y, float(position_xz[1])),
        rotation=rotation,
        velocity=tuple(float(x) for x in v),
        angular_velocity=tuple(float(x) for x in spin),
        name=name or shape,
        parts=parts,
    )


Disc = tuple[float, float, float]
"""A keep-out disc on the floor: (x, z, radius)."""


def place_discs(
    rng: np.random.Generator,
    room: Room,
    radii: Sequence[float],
    keep_out: Sequence[Disc],
    *,
    margin: float = 0.15,
    attempts: int = 300,
    what: str = "objects",
) -> list[tuple[float, float]]:
    """Floor positions for discs of ``radii`` inside ``room``, apart from each other and from ``keep_out``.

    Raises:
        SceneGenerationError: When some disc cannot be placed in ``attempts`` tries.
    """
    placed: list[Disc] = list(keep_out)
    out = []
    for r in radii:
        lim_x, lim_z = room.width / 2 - r - margin, room.length / 2 - r - margin

        def draw(g: np.random.Generator, lim_x: float = lim_x, lim_z: float = lim_z) -> tuple[float, float]:
            return float(g.uniform(-lim_x, lim_x)), float(g.uniform(-lim_z, lim_z))

        def fits(p: tuple[float, float], r: float = r) -> bool:
            return all(math.hypot(p[0] - x, p[1] - z) > r + rr + margin for x, z, rr in placed)

        pos = sample_until(rng, draw, fits, attempts=attempts, what=f"placement of {len(radii)} {what}")
        placed.append((pos[0], pos[1], r))
        out.append(pos)
    return out


def object_disc(obj: ObjectSpec) -> Disc:
    """The keep-out disc of an object: its floor position and the radius of its bounding sphere (which covers it
    upright or lying down)."""
    x, _, z = obj.position
    return (float(x), float(z), obj.radius)


def sight_line(camera: Sequence[float], target: Sequence[float], radius: float, step: float = 0.4) -> list[Disc]:
    """Keep-out discs along the floor projection of the line from ``camera`` to ``target``."""
    a, b = np.array([camera[0], camera[2]]), np.array([target[0], target[2]])
    n = max(2, int(np.linalg.norm(b - a) / step) + 1)
    return [(float(p[0]), float(p[1]), radius) for p in np.linspace(a, b, n)]


def distractors(
    rng: np.random.Generator,
    room: Room,
    level: int,
    first_id: int,
    keep_out: Sequence[Disc],
    count: int,
    plan: FactorPlan,
) -> list[ObjectSpec]:
    """``count`` objects at rest away from ``keep_out``, drawn from the training distribution of ``plan``'s
    factors (shape, colour, size where the scenario declares them), so held-out values and combinations never
    appear in training scenes through a distractor. Distractor values are not recorded as factors."""
    names = plan.space.names()
    shapes = ("cube", "sphere", "cylinder", "cone", "capsule") + (COMPOUND_SHAPES if level >= 3 else ())
    colors = tuple(PALETTE)[:8]
    specs = []
    chosen = []
    for _ in range(count):
        if "shape" in names and "color" in names:
            shape, color = plan.training_pair("shape", "color", rng)
        else:
            shape = shapes[int(rng.integers(len(shapes)))]
            color = plan.training_value("color", rng) if "color" in names else colors[int(rng.integers(len(colors)))]
        diameter = float(plan.training_value("size", rng)) if "size" in names else float(rng.uniform(0.15, 0.35))
        chosen.append((shape, color, diameter))
    sizes = [shape_size(s, d, rng, level) for s, _, d in chosen]
    spots = place_discs(
        rng, room, [0.5 * math.hypot(sz[0], sz[2]) for sz in sizes], keep_out, what="distractor objects"
    )
    for i, ((shape, color, d), sz, xz) in enumerate(zip(chosen, sizes, spots, strict=True)):
        specs.append(
            make_object(
                first_id + i,
                shape,
                d,
                color,
                rng,
                level,
                position_xz=xz,
                mass=float(rng.uniform(0.3, 2.0)),
                roll=False,
                size=sz,
                name=f"distractor_{shape}",
            )
        )
    return specs


def clutter_props(
    rng: np.random.Generator,
    room: Room,
    first_id: int,
    keep_out: Sequence[Disc],
    count: int,
    avoid: Sequence[ObjectSpec] = (),
) -> list[PropSpec]:
    """``count`` static boxes (furniture-like clutter) near the walls, away from ``keep_out`` and from the objects
    of ``avoid`` (the scene's objects: a box must never be built around one)."""
    keep_out = [*keep_out, *(object_disc(o) for o in avoid)]
    props = []
    for i in range(count):
        size = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.15, 0.9)), float(rng.uniform(0.2, 0.8)))
        r = 0.5 * math.hypot(size[0], size[2])

        def draw(g: np.random.Generator, r: float = r) -> tuple[float, float]:
            wall = int(g.integers(4))
            along = float(g.uniform(-0.5, 0.5))
            inset = r + 0.05
            if wall < 2:
                return ((room.width / 2 - inset) * (1 if wall else -1), along * (room.length - 2 * inset))
            return (along * (room.width - 2 * inset), (room.length / 2 - inset) * (1 if wall == 3 else -1))

        def fits(p: tuple[float, float], r: float = r, taken: Sequence[Disc] = keep_out) -> bool:
            return all(math.hypot(p[0] - x, p[1] - z) > r + rr + 0.1 for x, z, rr in taken)

        x, z = sample_until(rng, draw, fits, attempts=300, what="placement of clutter")
        keep_out = [*keep_out, (x, z, r)]
        props.append(
            PropSpec(
                id=first_id + i,
                size=size,
                position=(x, size[1] / 2, z),
                rotation=(0.0, float(rng.uniform(0, 90)), 0.0),
                color=tuple(float(v) for v in rng.uniform(0.15, 0.85, 3)),
                name="clutter",
            )
        )
    return props


def aim(eye: Sequence[float], target: Sequence[float]) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a camera at ``eye`` looking at ``target``."""
    d = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    yaw = math.degrees(math.atan2(d[0], d[2]))
    pitch = math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))
    return yaw % 360.0, pitch


def camera_facing(
    rng: np.random.Generator,
    room: Room,
    target: Sequence[float],
    dist: tuple[float, float],
    height: float,
    *,
    margin: float = 0.5,
    attempts: int = 300,
) -> tuple[np.ndarray, float, float]:
    """A camera eye at ``height``, ``dist`` metres (range) from ``target`` horizontally, inside ``room``, aimed at it.

    Returns:
        (eye, yaw, pitch).
    """

    def draw(g: np.random.Generator) -> np.ndarray:
        yaw, d = float(g.uniform(0.0, 360.0)), float(g.uniform(*dist))
        return np.array(
            [target[0] - math.sin(math.radians(yaw)) * d, height, target[2] - math.cos(math.radians(yaw)) * d]
        )

    eye = sample_until(
        rng, draw, lambda e: room.contains(e[0], e[2], margin=margin), attempts=attempts, what="camera position"
    )
    yaw, pitch = aim(eye, target)
    return eye, yaw, pitch
