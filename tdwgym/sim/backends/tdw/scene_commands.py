"""The TDW backend's translation of a scene into TDW commands: model records, the room and its
patterned quads, objects and their parts, velocities, the camera avatar and the image passes
(:class:`SceneCommands`, a part of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend`)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tdwgym.sim.backends.base import BackendError
from tdwgym.sim.geometry import euler_to_quat, rotate
from tdwgym.sim.patterns import pattern_image
from tdwgym.sim.scene import COMPOUND, Color, ObjectSpec, Room

AVATAR_ID = "a"


CAMERA_COLLIDER_ID = 2_000_000_000
"""TDW id of the hidden sphere that gives the camera its collider (scene ids must differ)."""


PART_ID_BASE = 1_000_000_000
"""TDW ids of the second and later parts of compound objects count up from here (scene ids must stay below)."""


QUAD_ID_BASE = 2_000_000_100
"""Ids of the textured quads that paint patterned floors and walls count up from here (non-physics object ids)."""


PATTERN_LIFT = 0.001
"""Metres between a pattern quad and the floor or wall it covers."""


PATTERN_TEXELS_PER_TILE = 32
"""Texels along a pattern tile's edge (Unity filters textures bilinearly: more texels, sharper tile edges)."""


PATTERN_MAX_TEXELS = 2048
"""Longest edge in texels of a pattern texture: finer patterns get fewer texels per tile, but at least one."""


SHAPE_MODELS: dict[str, tuple[str, str]] = {
    "cube": ("models_flex.json", "cube"),
    "sphere": ("models_flex.json", "sphere"),
    "cylinder": ("models_flex.json", "cylinder"),
    "cone": ("models_flex.json", "cone"),
    "capsule": ("models_special.json", "prim_capsule"),
}
"""Scene shape -> (model library, model name) of the TDW primitive that stands for it."""


PROP_MODEL: tuple[str, str] = ("models_flex.json", "cube")


_PASS_MASKS = {"rgb": "_img", "segmentation": "_id", "depth": "_depth"}


def _vec(v: Sequence[float]) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def _quat(q: Sequence[float]) -> dict[str, float]:
    return {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])}


def _rgba(c: Color) -> dict[str, float]:
    return {"r": float(c[0]), "g": float(c[1]), "b": float(c[2]), "a": 1.0}


def camera_rotation(yaw: float, pitch: float) -> tuple[float, float, float, float]:
    """Quaternion (x, y, z, w) of a TDW camera looking along ``yaw``/``pitch`` (positive pitch looks up).

    Unity's camera looks along its local +z and a positive rotation about x tips it down, hence ``-pitch``.
    """
    return euler_to_quat((-pitch, yaw, 0.0))


class _Model:
    """A TDW model record reduced to what placement needs: its URL and native bounds."""

    def __init__(self, library: str, record: Any) -> None:
        b = record.bounds
        self.library = library
        self.name = record.name
        self.url = record.get_url()
        self.size = np.array(
            [b["right"]["x"] - b["left"]["x"], b["top"]["y"] - b["bottom"]["y"], b["front"]["z"] - b["back"]["z"]],
            dtype=np.float64,
        )
        self.center = np.array([b["center"]["x"], b["center"]["y"], b["center"]["z"]], dtype=np.float64)


@dataclass
class _Part:
    """One TDW object of a movable scene object (a primitive is one part; a compound, one per :class:`PartSpec`).

    Attributes:
        tdw_id: The TDW object id (the scene id for the first part).
        model: The primitive it is.
        scale: Scale factor of the model.
        offset: Centre of the part relative to the object's centre, in the object's frame.
        mass: Kilograms.
    """

    tdw_id: int
    model: _Model
    scale: np.ndarray
    offset: np.ndarray
    mass: float

    @property
    def pivot_to_centre(self) -> np.ndarray:
        """Vector from the model's pivot to its bounding-box centre, in the part's (= object's) frame."""
        return self.model.center * self.scale


def _volume(shape: str, size: Sequence[float]) -> float:
    """Volume in m^3 of a part of ``shape`` with bounding box ``size`` (cylinders stand along y)."""
    if shape == "sphere":
        return math.pi / 6.0 * size[0] ** 3
    if shape == "cylinder":
        return math.pi / 4.0 * size[0] * size[2] * size[1]
    return float(size[0] * size[1] * size[2])


def _png_base64(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class SceneCommands:
    """The scene-to-commands half of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend` (its methods use
    the backend's attributes, set in its ``__init__``)."""

    def _model(self, library: str, name: str) -> _Model:
        key = (library, name)
        if key not in self._models:
            librarians = self._tdw["Controller"].MODEL_LIBRARIANS
            if library not in librarians:
                librarians[library] = self._tdw["ModelLibrarian"](library)
            self._models[key] = _Model(library, librarians[library].get_record(name))
        return self._models[key]

    def _check_new_id(self, obj: ObjectSpec, in_use: Sequence[int]) -> None:
        """Raise unless ``obj`` can be built with a TDW id of its own."""
        unsupported = {obj.shape} - set(SHAPE_MODELS) - {COMPOUND} | {p.shape for p in obj.parts} - set(SHAPE_MODELS)
        if unsupported:
            raise BackendError(
                f"the TDW backend cannot build shapes {sorted(unsupported)}; it builds "
                f"{list(SHAPE_MODELS)} and compounds of them"
            )
        if obj.id >= PART_ID_BASE:
            raise BackendError(
                f"scene id {obj.id} is too large: the TDW backend reserves ids from {PART_ID_BASE} "
                "for compound parts, pattern quads and the camera collider"
            )
        if obj.id in in_use:
            raise ValueError(f"id {obj.id} is already in the scene; ids in use are {sorted(set(in_use))}")

    def _output_requests(self, new_ids: list[int]) -> list[dict[str, Any]]:
        """Collision subscription (once per scene) and the segmentation colours of newly added TDW objects."""
        commands: list[dict[str, Any]] = []
        if new_ids and not self._collisions_on:
            commands.append(
                {
                    "$type": "send_collisions",
                    "enter": True,
                    "stay": True,
                    "exit": False,
                    "collision_types": ["obj", "env"],
                }
            )
            self._collisions_on = True
        if new_ids:
            commands.append({"$type": "send_segmentation_colors", "ids": new_ids, "frequency": "once"})
        return commands

    def _room_commands(self, room: Room, room_key: tuple[int, int]) -> list[dict[str, Any]]:
        commands = [
            {"$type": "set_floor_color", "color": _rgba(room.floor_color)},
            {"$type": "set_proc_gen_walls_color", "color": _rgba(room.wall_color)},
        ]
        if room.ceiling != self._ceiling:
            commands.append({"$type": "create_proc_gen_ceiling" if room.ceiling else "destroy_proc_gen_ceiling"})
            self._ceiling = room.ceiling
        if room.ceiling:
            commands.append({"$type": "set_proc_gen_ceiling_height", "height": room.height})
            commands.append({"$type": "set_proc_gen_ceiling_color", "color": _rgba(room.ceiling_color)})
        return commands + self._pattern_commands(room, room_key)

    def _pattern_commands(self, room: Room, room_key: tuple[int, int]) -> list[dict[str, Any]]:
        """Textured quads painting the floor and wall patterns (kept while the room's look does not change)."""
        floor = room.floor_pattern if self.patterns else "plain"
        wall = room.wall_pattern if self.patterns else "plain"
        key = (
            room_key,
            room.height,
            room.tile_size,
            floor,
            room.floor_color,
            room.floor_color2,
            wall,
            room.wall_color,
            room.wall_color2,
        )
        if key == self._pattern_key:
            return []
        commands: list[dict[str, Any]] = [{"$type": "destroy_textured_quad", "id": i} for i in self._quad_ids]
        self._quad_ids = []
        self._pattern_key = key
        w, length, h, lift = float(room_key[0]), float(room_key[1]), room.height, PATTERN_LIFT
        # (extent (u, v), bottom-centre anchor, Euler angles): a quad shows its local -z side, so each one is turned
        # to face into the room; the floor's is tipped flat (local +y along +z), face up.
        surfaces: list[tuple[str, tuple[Color, Color], tuple[float, float], tuple[float, ...], tuple[float, ...]]] = []
        if floor != "plain":
            surfaces.append(
                (floor, (room.floor_color, room.floor_color2), (w, length), (0.0, lift, -length / 2), (90.0, 0.0, 0.0))
            )
        if wall != "plain":
            colors = (room.wall_color, room.wall_color2)
            surfaces += [
                (wall, colors, (w, h), (0.0, 0.0, length / 2 - lift), (0.0, 0.0, 0.0)),
                (wall, colors, (w, h), (0.0, 0.0, -length / 2 + lift), (0.0, 180.0, 0.0)),
                (wall, colors, (length, h), (w / 2 - lift, 0.0, 0.0), (0.0, 90.0, 0.0)),
                (wall, colors, (length, h), (-w / 2 + lift, 0.0, 0.0), (0.0, 270.0, 0.0)),
            ]
        for pattern, colors, extent, anchor, euler in surfaces:
            quad = self._next_quad_id  # never reused: a destroyed quad's id may linger until the frame ends
            self._next_quad_id += 1
            texture = pattern_image(
                pattern,
                colors,
                extent,
                room.tile_size,
                texels_per_tile=PATTERN_TEXELS_PER_TILE,
                max_texels=PATTERN_MAX_TEXELS,
            )
            commands += [
                {
                    "$type": "create_textured_quad",
                    "id": quad,
                    "position": _vec(anchor),
                    "size": {"x": extent[0], "y": extent[1]},
                    "euler_angles": _vec(euler),
                },
                {
                    "$type": "set_textured_quad",
                    "id": quad,
                    "image": _png_base64(texture),
                    "dimensions": {"x": int(texture.shape[1]), "y": int(texture.shape[0])},
                },
            ]
            self._quad_ids.append(quad)
        return commands

    def _add_object(self, obj: ObjectSpec) -> list[dict[str, Any]]:
        """Commands that add a movable object (one TDW primitive per part), registering its parts."""
        q = euler_to_quat(obj.rotation)
        centre = np.asarray(obj.position, dtype=np.float64)
        if obj.shape == COMPOUND:
            shapes = [(p.shape, p.size, p.offset) for p in obj.parts]
            volumes = [_volume(p.shape, p.size) for p in obj.parts]
            masses = [obj.mass * v / sum(volumes) for v in volumes]
        else:
            shapes, masses = [(obj.shape, obj.size, (0.0, 0.0, 0.0))], [obj.mass]
        parts: list[_Part] = []
        commands: list[dict[str, Any]] = []
        for k, ((shape, size, offset), mass) in enumerate(zip(shapes, masses, strict=True)):
            tdw_id = obj.id if k == 0 else self._new_part_id()
            model = self._model(*SHAPE_MODELS[shape])
            part = _Part(
                tdw_id,
                model,
                np.asarray(size, dtype=np.float64) / model.size,
                np.asarray(offset, dtype=np.float64),
                float(mass),
            )
            commands.extend(
                self._add_body(
                    tdw_id,
                    model,
                    size,
                    centre + rotate(q, part.offset),
                    q,
                    obj.color,
                    mass=mass,
                    friction=obj.friction,
                    restitution=obj.restitution,
                    kinematic=False,
                )
            )
            self._owner[tdw_id] = obj.id
            parts.append(part)
        root = parts[0]
        for part in parts[1:]:
            commands.append({"$type": "add_fixed_joint", "id": part.tdw_id, "parent_id": root.tdw_id})
        for i, a in enumerate(parts):
            for b in parts[i + 1 :]:
                commands.append({"$type": "ignore_collisions", "id": a.tdw_id, "other_id": b.tdw_id, "ignore": True})
        self._parts[obj.id] = parts
        self._pivot_offset[obj.id] = root.pivot_to_centre - root.offset
        if any(obj.velocity) or any(obj.angular_velocity):
            commands.extend(
                self._velocity_commands(
                    obj.id,
                    q,
                    obj.velocity if any(obj.velocity) else None,
                    obj.angular_velocity if any(obj.angular_velocity) else None,
                    np.zeros(3),
                    np.zeros(3),
                )
            )
        return commands

    def _velocity_commands(
        self,
        object_id: int,
        q: Sequence[float],
        velocity: Sequence[float] | None,
        angular_velocity: Sequence[float] | None,
        current_v: np.ndarray,
        current_w: np.ndarray,
    ) -> list[dict[str, Any]]:
        """``set_velocity``/``set_angular_velocity`` of every part: a rigid motion about the object's centre."""
        v = np.asarray(velocity if velocity is not None else current_v, dtype=np.float64)
        w = np.asarray(angular_velocity if angular_velocity is not None else current_w, dtype=np.float64)
        commands: list[dict[str, Any]] = []
        for part in self._parts[object_id]:
            lever = not np.array_equal(part.offset, np.zeros(3))
            if velocity is not None or (angular_velocity is not None and lever):
                vp = v + np.cross(w, rotate(q, part.offset)) if lever else v
                commands.append({"$type": "set_velocity", "id": part.tdw_id, "velocity": _vec(vp)})
            if angular_velocity is not None:
                commands.append({"$type": "set_angular_velocity", "id": part.tdw_id, "velocity": _vec(w)})
        return commands

    def _new_part_id(self) -> int:
        tdw_id = self._next_part_id
        self._next_part_id += 1
        if self._next_part_id >= CAMERA_COLLIDER_ID:  # pragma: no cover - a billion parts
            self._next_part_id = PART_ID_BASE
        return tdw_id

    def _add_body(
        self,
        tdw_id: int,
        model: _Model,
        size: Sequence[float],
        position: Sequence[float],
        q: Sequence[float],
        color: Color,
        mass: float,
        friction: float,
        restitution: float,
        kinematic: bool,
    ) -> list[dict[str, Any]]:
        """Commands that add one scaled primitive whose bounding-box centre is ``position``, rotated by ``q``."""
        scale = np.asarray(size, dtype=np.float64) / model.size
        pivot = np.asarray(position, dtype=np.float64) - rotate(q, model.center * scale)
        friction = min(max(float(friction), 0.0), 1.0)  # PhysX materials take [0, 1]
        commands = self._tdw["Controller"].get_add_physics_object(
            model_name=model.name,
            object_id=tdw_id,
            position=_vec(pivot),
            rotation=_quat(q),
            library=model.library,
            scale_factor=_vec(scale),
            kinematic=kinematic,
            gravity=not kinematic,
            default_physics_values=False,
            mass=float(mass),
            dynamic_friction=friction,
            static_friction=friction,
            bounciness=float(restitution),
            scale_mass=False,
        )
        commands.append({"$type": "set_color", "id": tdw_id, "color": _rgba(color)})
        self._tdw_ids.append(tdw_id)
        return commands

    def _camera_commands(self) -> list[dict[str, Any]]:
        pos, yaw, pitch = self._camera_pose
        commands = [
            {"$type": "teleport_avatar_to", "position": _vec(pos), "avatar_id": AVATAR_ID},
            {
                "$type": "rotate_sensor_container_to",
                "rotation": _quat(camera_rotation(yaw, pitch)),
                "avatar_id": AVATAR_ID,
            },
        ]
        if self._camera_radius > 0:
            commands.append(
                {
                    "$type": "teleport_object",
                    "id": CAMERA_COLLIDER_ID,
                    "position": _vec(pos - np.array([0.0, self._camera_radius, 0.0])),
                }
            )
        return commands

    # -- rendering ------------------------------------------------------------------------------------------
    def _image_commands(self, width: int, height: int, passes: tuple[str, ...]) -> list[dict[str, Any]]:
        commands: list[dict[str, Any]] = []
        if self._screen != (width, height):
            commands.append({"$type": "set_screen_size", "width": int(width), "height": int(height)})
            self._screen = (width, height)
        masks = tuple(_PASS_MASKS[p] for p in passes)
        if self._masks != masks:
            commands.append({"$type": "set_pass_masks", "pass_masks": list(masks), "avatar_id": AVATAR_ID})
            self._masks = masks
        commands.append({"$type": "send_images", "ids": [AVATAR_ID], "frequency": "once"})
        return commands
