"""The embedded default backend: PyBullet in DIRECT mode with its CPU (TinyRenderer) renderer.

Axes are converted at this boundary only. ThreeDWorld is left-handed with +y up; Bullet is right-handed with +z up.
Swapping y and z maps one onto the other: a point ``(x, y, z)`` becomes ``(x, z, y)``; because the swap is a
reflection, the axis of a rotation (a pseudo-vector) flips sign, so a quaternion ``(x, y, z, w)`` becomes
``(-x, -z, -y, w)`` and an angular velocity ``(x, y, z)`` becomes ``(-x, -z, -y)``. Both maps are their own
inverse.

Each instance owns one PyBullet client and passes its id on every call, so several backends live side by side in
one process. Physics runs at a fixed 240 Hz with settings chosen for determinism: the same scene and the same calls
give bit-identical states and frames.

Bullet combines two bodies' friction and restitution by multiplying them. Room surfaces have friction 1 and
restitution 1, so an object's contact with the floor or a wall uses the object's own coefficients.

Longer than 600 lines: one adapter class implementing the whole backend interface on one PyBullet client, whose state
every method shares.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import struct
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from tdwgym.sim.backends.base import PASSES, Backend, BackendError, Contact, ObjectState, RayHit, register_backend
from tdwgym.sim.geometry import camera_forward, euler_to_quat
from tdwgym.sim.patterns import pattern_image
from tdwgym.sim.scene import COMPOUND, Color, ObjectSpec, PartSpec, PropSpec, Room, SceneSpec


def _import_pybullet() -> Any:
    """Import pybullet without the build-time banner it prints on stderr (tdwgym's output stays its own)."""

    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: import as it is
        import pybullet

        return pybullet
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import pybullet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return pybullet


class _Pybullet:
    """Stands for the pybullet module until its first use: registering the backend does not import it."""

    def __getattr__(self, name: str) -> Any:
        global pb
        pb = _import_pybullet()
        return getattr(pb, name)


pb: Any = _Pybullet()

T = TypeVar("T")

PHYSICS_HZ = 240
_WALL = 0.1  # wall and floor thickness in metres
_CONE_SEGMENTS = 24
_CAMERA_GROUP = 4  # collision group of the camera collider: collides with movable objects only
_RAY_MASK = 1 | 2  # rays see dynamic (1) and static (2) bodies, never the camera collider
_TEXELS_PER_TILE = 8
MAX_TEXTURES = 32
"""Pattern textures one client holds before :meth:`BulletBackend.load` replaces it with a fresh one (PyBullet has no
call that frees a texture; a few MB at most)."""


def to_bullet(v: Sequence[float]) -> list[float]:
    """TDW point or vector to Bullet axes."""
    return [float(v[0]), float(v[2]), float(v[1])]


def from_bullet(v: Sequence[float]) -> np.ndarray:
    """Bullet point or vector to TDW axes."""
    return np.array([v[0], v[2], v[1]], dtype=np.float64)


def quat_to_bullet(q: Sequence[float]) -> list[float]:
    """TDW quaternion (x, y, z, w) to Bullet axes."""
    return [-float(q[0]), -float(q[2]), -float(q[1]), float(q[3])]


def quat_from_bullet(q: Sequence[float]) -> np.ndarray:
    """Bullet quaternion (x, y, z, w) to TDW axes."""
    return np.array([-q[0], -q[2], -q[1], q[3]], dtype=np.float64)


def spin_to_bullet(w: Sequence[float]) -> list[float]:
    """TDW angular velocity to Bullet axes (a pseudo-vector: the reflection flips it)."""
    return [-float(w[0]), -float(w[2]), -float(w[1])]


def spin_from_bullet(w: Sequence[float]) -> np.ndarray:
    """Bullet angular velocity to TDW axes."""
    return np.array([-w[0], -w[2], -w[1]], dtype=np.float64)


def _rgba(color: Color) -> list[float]:
    return [color[0], color[1], color[2], 1.0]


@register_backend
class BulletBackend(Backend):
    """PyBullet simulator and renderer for one scene at a time.

    Args:
        solver_iterations: Constraint solver iterations per substep.
    """

    name = "bullet"

    def __init__(self, solver_iterations: int = 50) -> None:
        self._solver_iterations = int(solver_iterations)
        self._client: int | None = pb.connect(pb.DIRECT)
        self._scene: SceneSpec | None = None
        self._body_of: dict[int, int] = {}  # scene id -> bullet body (props and objects)
        self._movable: dict[int, int] = {}  # movable scene id -> bullet body
        self._live: dict[int, int] = {}  # bullet body -> scene id, every body but the camera (room bodies: 0)
        self._id_lut = np.zeros(1, dtype=np.int32)  # bullet body + 1 -> scene id (0: room/background)
        self._camera_body = -1
        self._camera_shape = -1
        self._camera_pose: tuple[np.ndarray, float, float] = (np.zeros(3), 0.0, 0.0)
        self._shape_cache: dict[tuple[str, float], int] = {}
        # PyBullet never frees what loadTexture allocates (resetSimulation keeps it, though the ids stop working);
        # only a new client starts empty: load() swaps one in once MAX_TEXTURES have been loaded. Textures are
        # shared within one scene only (an id from before resetSimulation renders flat grey).
        self._textures: dict[bytes, int] = {}  # digest of the image -> texture id, in the current scene
        self._textures_loaded = 0  # by the current client

    # -- bookkeeping -----------------------------------------------------------------------------------------
    @property
    def client(self) -> int:
        """The PyBullet client id (raises if closed)."""
        if self._client is None:
            raise BackendError("the bullet backend is closed")
        return self._client

    @property
    def timestep(self) -> float:
        return 1.0 / PHYSICS_HZ

    @property
    def scene(self) -> SceneSpec:
        if self._scene is None:
            raise BackendError("no scene loaded: call load(scene) first")
        return self._scene

    def version(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "pybullet_api": pb.getAPIVersion(physicsClientId=self.client),
            "physics_hz": PHYSICS_HZ,
            "solver_iterations": self._solver_iterations,
        }

    # -- scene construction ------------------------------------------------------------------------------------
    def load(self, scene: SceneSpec) -> None:
        if self._textures_loaded >= MAX_TEXTURES:  # free every texture: the only way PyBullet has
            self._reconnect()
        c = self.client
        pb.resetSimulation(physicsClientId=c)
        self._textures = {}
        pb.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            numSubSteps=0,
            numSolverIterations=self._solver_iterations,
            deterministicOverlappingPairs=1,
            physicsClientId=c,
        )
        pb.setGravity(0.0, 0.0, -scene.gravity, physicsClientId=c)
        self._scene = scene
        self._shape_cache = {}  # resetSimulation freed the cached shapes
        self._body_of = {}
        self._movable = {}
        self._live = scene_id_of_body = {}

        room = scene.room
        w, length, h = room.width, room.length, room.height
        room_boxes = [  # (centre TDW, size TDW, colour, surface: which pattern it takes)
            ((0.0, -_WALL / 2, 0.0), (w + 2 * _WALL, _WALL, length + 2 * _WALL), room.floor_color, "floor"),
            ((-(w + _WALL) / 2, h / 2, 0.0), (_WALL, h, length), room.wall_color, "wall"),
            (((w + _WALL) / 2, h / 2, 0.0), (_WALL, h, length), room.wall_color, "wall"),
            ((0.0, h / 2, -(length + _WALL) / 2), (w + 2 * _WALL, h, _WALL), room.wall_color, "wall"),
            ((0.0, h / 2, (length + _WALL) / 2), (w + 2 * _WALL, h, _WALL), room.wall_color, "wall"),
        ]
        if room.ceiling:  # plain, resting on the walls
            ceiling = ((0.0, h + _WALL / 2, 0.0), (w + 2 * _WALL, _WALL, length + 2 * _WALL), room.ceiling_color, None)
            room_boxes.append(ceiling)
        for centre, size, color, surface in room_boxes:
            body = self._static_box(centre, size, (0.0, 0.0, 0.0), color, friction=1.0, restitution=1.0)
            scene_id_of_body[body] = 0
            pattern = {"floor": room.floor_pattern, "wall": room.wall_pattern}.get(surface, "plain")
            if pattern != "plain":
                self._texture_box(body, room, size, surface == "floor")
        for prop in scene.props:
            body = self._add_prop(prop)
            self._body_of[prop.id] = body
            scene_id_of_body[body] = prop.id
        for obj in scene.objects:
            body = self._add_object(obj)
            self._body_of[obj.id] = body
            self._movable[obj.id] = body
            scene_id_of_body[body] = obj.id

        cam = scene.camera
        if cam.radius > 0:
            self._camera_shape = pb.createCollisionShape(pb.GEOM_SPHERE, radius=cam.radius, physicsClientId=c)
            self._camera_body = pb.createMultiBody(
                0.0, self._camera_shape, -1, to_bullet(cam.position), physicsClientId=c
            )
            pb.setCollisionFilterGroupMask(self._camera_body, -1, _CAMERA_GROUP, 1, physicsClientId=c)
        else:
            self._camera_body = self._camera_shape = -1
        self._camera_pose = (np.array(cam.position, dtype=np.float64), cam.yaw, cam.pitch)

        self._rebuild_lut()

    def _reconnect(self) -> None:
        """Replace the client with a fresh one (load() rebuilds everything the old one held)."""
        old = self.client
        self._client = None
        pb.disconnect(physicsClientId=old)
        self._client = pb.connect(pb.DIRECT)
        self._textures, self._textures_loaded = {}, 0
        self._scene = None

    def _rebuild_lut(self) -> None:
        lut = np.zeros(max(self._live, default=0) + 2, dtype=np.int32)
        for body, sid in self._live.items():
            lut[body + 1] = sid
        self._id_lut = lut

    def _static_box(
        self,
        centre: Sequence[float],
        size: Sequence[float],
        rotation: Sequence[float],
        color: Color,
        friction: float,
        restitution: float,
    ) -> int:
        c = self.client
        half = [size[0] / 2, size[2] / 2, size[1] / 2]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=_rgba(color), physicsClientId=c)
        body = pb.createMultiBody(
            0.0, col, vis, to_bullet(centre), quat_to_bullet(euler_to_quat(rotation)), physicsClientId=c
        )
        pb.changeDynamics(body, -1, lateralFriction=friction, restitution=restitution, physicsClientId=c)
        return body

    def _texture_box(self, body: int, room: Room, size: Sequence[float], is_floor: bool) -> None:
        """Paint a room box with its pattern: a texture made at run time (TinyRenderer maps it once per face)."""
        if is_floor:
            pattern, colors, extent = room.floor_pattern, (room.floor_color, room.floor_color2), (size[0], size[2])
        else:
            pattern, colors, extent = (
                room.wall_pattern,
                (room.wall_color, room.wall_color2),
                (max(size[0], size[2]), size[1]),
            )
        image = pattern_image(pattern, colors, extent, room.tile_size, texels_per_tile=_TEXELS_PER_TILE)
        texture = self._texture(image)
        pb.changeVisualShape(
            body, -1, textureUniqueId=texture, rgbaColor=[1.0, 1.0, 1.0, 1.0], physicsClientId=self.client
        )

    def _texture(self, image: np.ndarray) -> int:
        """The texture holding ``image``, loaded once per scene (a wall's image is often its opposite wall's)."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        digest = hashlib.blake2b(str(image.shape).encode() + image.tobytes(), digest_size=16).digest()
        texture = self._textures.get(digest)
        if texture is None:
            with tempfile.TemporaryDirectory(prefix="tdwgym-") as tmp:
                path = os.path.join(tmp, "pattern.tga")
                write_tga(path, image)
                texture = pb.loadTexture(path, physicsClientId=self.client)
            self._textures[digest] = texture
            self._textures_loaded += 1
        return texture

    @property
    def texture_count(self) -> int:
        """Pattern textures the current client has loaded (at most :data:`MAX_TEXTURES` plus one scene's worth)."""
        return self._textures_loaded

    def _add_prop(self, prop: PropSpec) -> int:
        return self._static_box(prop.position, prop.size, prop.rotation, prop.color, prop.friction, prop.restitution)

    def _compound_shapes(self, obj: ObjectSpec) -> tuple[int, int]:
        c = self.client
        kinds = {"cube": pb.GEOM_BOX, "sphere": pb.GEOM_SPHERE, "cylinder": pb.GEOM_CYLINDER}
        parts: Sequence[PartSpec] = obj.parts
        types = [kinds[p.shape] for p in parts]
        halves = [[p.size[0] / 2, p.size[2] / 2, p.size[1] / 2] for p in parts]
        radii = [p.size[0] / 2 for p in parts]
        lengths = [p.size[1] for p in parts]
        offsets = [to_bullet(p.offset) for p in parts]
        col = pb.createCollisionShapeArray(
            types, radii=radii, halfExtents=halves, lengths=lengths, collisionFramePositions=offsets, physicsClientId=c
        )
        vis = pb.createVisualShapeArray(
            types, radii=radii, halfExtents=halves, lengths=lengths, visualFramePositions=offsets, physicsClientId=c
        )
        return col, vis

    def _shapes(self, obj: ObjectSpec) -> tuple[int, int]:
        c = self.client
        sx, sy, sz = obj.size
        rgba = _rgba(obj.color)
        if obj.shape == COMPOUND:
            return self._compound_shapes(obj)
        if obj.shape == "cube":
            half = [sx / 2, sz / 2, sy / 2]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=c)
        elif obj.shape == "sphere":
            col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=sx / 2, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=sx / 2, rgbaColor=rgba, physicsClientId=c)
        elif obj.shape == "cylinder":
            col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=sx / 2, height=sy, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=sx / 2, length=sy, rgbaColor=rgba, physicsClientId=c)
        elif obj.shape == "capsule":
            col = pb.createCollisionShape(pb.GEOM_CAPSULE, radius=sx / 2, height=sy - sx, physicsClientId=c)
            vis = pb.createVisualShape(
                pb.GEOM_CAPSULE, radius=sx / 2, length=sy - sx, rgbaColor=rgba, physicsClientId=c
            )
        elif obj.shape == "cone":
            verts, indices = _cone_mesh(sx / 2, sy)
            # pybullet takes a reference to every vertex coordinate and never gives it back (a 2.5 kB leak per
            # cone): hand the references back after each call
            col = _release_leaked_refs(
                lambda: pb.createCollisionShape(pb.GEOM_MESH, vertices=verts, physicsClientId=c), verts, indices
            )
            vis = _release_leaked_refs(
                lambda: pb.createVisualShape(
                    pb.GEOM_MESH, vertices=verts, indices=indices, rgbaColor=rgba, physicsClientId=c
                ),
                verts,
                indices,
            )
        else:  # pragma: no cover - ObjectSpec validates shapes
            raise BackendError(f"unsupported shape {obj.shape!r}")
        return col, vis

    def _add_object(self, obj: ObjectSpec) -> int:
        c = self.client
        col, vis = self._shapes(obj)
        body = pb.createMultiBody(
            obj.mass, col, vis, to_bullet(obj.position), quat_to_bullet(euler_to_quat(obj.rotation)), physicsClientId=c
        )
        pb.changeDynamics(
            body,
            -1,
            lateralFriction=obj.friction,
            restitution=obj.restitution,
            rollingFriction=0.0,
            spinningFriction=0.0,
            linearDamping=0.0,
            angularDamping=0.0,
            physicsClientId=c,
        )
        if obj.shape == COMPOUND:
            pb.changeVisualShape(body, -1, rgbaColor=_rgba(obj.color), physicsClientId=c)
        pb.resetBaseVelocity(body, to_bullet(obj.velocity), spin_to_bullet(obj.angular_velocity), physicsClientId=c)
        return body

    # -- simulation ---------------------------------------------------------------------------------------
    def step(self, substeps: int) -> list[Contact]:
        if substeps < 0:
            raise ValueError(f"substeps must be >= 0, got {substeps}")
        c = self.client
        self.scene  # noqa: B018 - raises if nothing is loaded
        dt = self.timestep
        lut = self._id_lut
        camera = self._camera_body
        acc: dict[tuple[int, int], list[Any]] = {}
        for _ in range(substeps):
            pb.stepSimulation(physicsClientId=c)
            for pt in pb.getContactPoints(physicsClientId=c):
                body_a, body_b = pt[1], pt[2]
                if body_a == camera or body_b == camera:
                    continue
                a, b = int(lut[body_a + 1]), int(lut[body_b + 1])
                if a == b == 0:
                    continue
                normal = pt[7]
                if b < a:
                    a, b = b, a
                    normal = (-normal[0], -normal[1], -normal[2])
                impulse = pt[9] * dt
                entry = acc.get((a, b))
                if entry is None:
                    acc[(a, b)] = [impulse, pt[6], normal, pt[9]]
                else:
                    entry[0] += impulse
                    if pt[9] > entry[3]:
                        entry[1], entry[2], entry[3] = pt[6], normal, pt[9]
        return [
            Contact(a=a, b=b, impulse=float(v[0]), point=from_bullet(v[1]), normal=from_bullet(v[2]))
            for (a, b), v in sorted(acc.items())
        ]

    def set_camera(self, position: Sequence[float], yaw: float, pitch: float) -> None:
        pos = np.array(position, dtype=np.float64)
        self._camera_pose = (pos, float(yaw), float(pitch))
        if self._camera_body >= 0:
            pb.resetBasePositionAndOrientation(
                self._camera_body, to_bullet(pos), [0, 0, 0, 1], physicsClientId=self.client
            )

    @property
    def camera_pose(self) -> tuple[np.ndarray, float, float]:
        """Current camera (position, yaw, pitch)."""
        pos, yaw, pitch = self._camera_pose
        return pos.copy(), yaw, pitch

    def push(self, object_id: int, point: Sequence[float], impulse: Sequence[float]) -> None:
        body = self._movable.get(object_id)
        if body is None:
            raise KeyError(f"no movable object with id {object_id}; ids are {sorted(self._movable)}")
        # An impulse J delivered over one substep is a force J / dt; Bullet clears external forces every substep.
        force = [j / self.timestep for j in to_bullet(impulse)]
        pb.applyExternalForce(body, -1, force, to_bullet(point), pb.WORLD_FRAME, physicsClientId=self.client)

    def ray_cast(self, origin: Sequence[float], direction: Sequence[float], max_distance: float) -> RayHit | None:
        d = np.asarray(direction, dtype=np.float64)
        d = d / np.linalg.norm(d)
        start = np.asarray(origin, dtype=np.float64)
        end = start + d * max_distance
        hit = pb.rayTest(to_bullet(start), to_bullet(end), collisionFilterMask=_RAY_MASK, physicsClientId=self.client)[
            0
        ]
        if hit[0] < 0:
            return None
        return RayHit(
            id=int(self._id_lut[hit[0] + 1]),
            point=from_bullet(hit[3]),
            normal=from_bullet(hit[4]),
            distance=float(hit[2] * max_distance),
        )

    def overlapping(self, center: Sequence[float], radius: float) -> list[int]:
        c = self.client
        probe = self._shape_cache.get(("sphere", radius))
        if probe is None:
            probe = pb.createCollisionShape(pb.GEOM_SPHERE, radius=max(radius, 1e-4), physicsClientId=c)
            self._shape_cache[("sphere", radius)] = probe
        pos = to_bullet(center)
        found: set[int] = set()
        for body in self._live:
            if pb.getClosestPoints(
                bodyA=-1,
                bodyB=body,
                distance=0.0,
                collisionShapeA=probe,
                collisionShapePositionA=pos,
                physicsClientId=c,
            ):
                found.add(int(self._id_lut[body + 1]))
        return sorted(found)

    def object_states(self) -> dict[int, ObjectState]:
        c = self.client
        out = {}
        for sid, body in self._movable.items():
            pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            lin, ang = pb.getBaseVelocity(body, physicsClientId=c)
            out[sid] = ObjectState(
                id=sid,
                position=from_bullet(pos),
                rotation=quat_from_bullet(orn),
                velocity=from_bullet(lin),
                angular_velocity=spin_from_bullet(ang),
            )
        return out

    def set_object_state(
        self,
        object_id: int,
        position: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        velocity: Sequence[float] | None = None,
        angular_velocity: Sequence[float] | None = None,
    ) -> None:
        body = self._movable.get(object_id)
        if body is None:
            raise KeyError(f"no movable object with id {object_id}; ids are {sorted(self._movable)}")
        c = self.client
        if position is not None or rotation is not None:
            pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            pb.resetBasePositionAndOrientation(
                body,
                to_bullet(position) if position is not None else pos,
                quat_to_bullet(rotation) if rotation is not None else orn,
                physicsClientId=c,
            )
        if velocity is not None or angular_velocity is not None:
            lin, ang = pb.getBaseVelocity(body, physicsClientId=c)
            pb.resetBaseVelocity(
                body,
                to_bullet(velocity) if velocity is not None else lin,
                spin_to_bullet(angular_velocity) if angular_velocity is not None else ang,
                physicsClientId=c,
            )

    def remove_object(self, object_id: int) -> None:
        body = self._movable.pop(object_id, None)
        if body is None:
            raise KeyError(f"no movable object with id {object_id}; ids are {sorted(self._movable)}")
        pb.removeBody(body, physicsClientId=self.client)
        del self._body_of[object_id]
        del self._live[body]
        self._rebuild_lut()

    def add_object(self, spec: ObjectSpec) -> None:
        if spec.id in self._body_of:
            raise ValueError(f"id {spec.id} is already in the scene; ids in use are {sorted(self._body_of)}")
        self.scene  # noqa: B018 - raises if nothing is loaded
        body = self._add_object(spec)
        self._body_of[spec.id] = self._movable[spec.id] = body
        self._live[body] = spec.id
        self._rebuild_lut()

    def set_object_color(self, object_id: int, color: Sequence[float]) -> None:
        body = self._movable.get(object_id)
        if body is None:
            raise KeyError(f"no movable object with id {object_id}; ids are {sorted(self._movable)}")
        pb.changeVisualShape(body, -1, rgbaColor=[*map(float, color), 1.0], physicsClientId=self.client)

    def set_collision_enabled(self, id_a: int, id_b: int, enabled: bool) -> None:
        def bodies(sid: int) -> list[int]:
            found = [b for b, s in self._live.items() if s == sid]
            if not found:
                raise KeyError(f"no body with scene id {sid}; ids are {sorted(set(self._live.values()))}")
            return found

        for a in bodies(id_a):
            for b in bodies(id_b):
                pb.setCollisionFilterPair(a, b, -1, -1, int(enabled), physicsClientId=self.client)

    # -- rendering ------------------------------------------------------------------------------------------
    def render(self, width: int, height: int, passes: Sequence[str] = ("rgb",)) -> dict[str, np.ndarray]:
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"unknown render passes {unknown}; valid passes are {list(PASSES)}")
        scene = self.scene
        cam, light = scene.camera, scene.light
        pos, yaw, pitch = self._camera_pose
        target = pos + camera_forward(yaw, pitch)
        view = pb.computeViewMatrix(to_bullet(pos), to_bullet(target), [0.0, 0.0, 1.0], physicsClientId=self.client)
        proj = list(
            pb.computeProjectionMatrixFOV(cam.fov, width / height, cam.near, cam.far, physicsClientId=self.client)
        )
        # TinyRenderer samples pixel corners, not centres: shift the image half a pixel left and down (2/W and
        # 2/H are one pixel in normalised device coordinates) so that pixel (i, j) shows the ray through
        # (j + 0.5, i + 0.5), the pinhole model of tdwgym.sim.geometry.intrinsics.
        proj[8] += 1.0 / width
        proj[9] += 1.0 / height
        flags = 0 if "segmentation" in passes else pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, depth_buf, seg = pb.getCameraImage(
            width,
            height,
            view,
            proj,
            lightDirection=to_bullet([-d for d in light.direction]),
            lightColor=list(light.color),
            lightAmbientCoeff=light.ambient,
            lightDiffuseCoeff=light.diffuse,
            lightSpecularCoeff=light.specular,
            shadow=int(light.shadows),
            renderer=pb.ER_TINY_RENDERER,
            flags=flags,
            physicsClientId=self.client,
        )
        out: dict[str, np.ndarray] = {}
        if "rgb" in passes:
            out["rgb"] = np.ascontiguousarray(np.reshape(rgba, (height, width, 4))[:, :, :3], dtype=np.uint8)
        if "depth" in passes:
            d = np.reshape(depth_buf, (height, width)).astype(np.float64)
            near, far = cam.near, cam.far
            out["depth"] = (far * near / (far - (far - near) * d)).astype(np.float32)
        if "segmentation" in passes:
            s = np.reshape(seg, (height, width)).astype(np.int64)
            s = np.where((s >= 0) & (s < len(self._id_lut) - 1), s, -1)
            out["segmentation"] = self._id_lut[s + 1]
        return out

    def close(self) -> None:
        if self._client is not None:
            try:
                pb.disconnect(physicsClientId=self._client)
            finally:
                self._client = None
                self._scene = None
                self._textures, self._textures_loaded = {}, 0

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass


def write_tga(path: str, image: np.ndarray) -> None:
    """Write an RGB uint8 image as an uncompressed, top-left-origin TGA file (read by PyBullet's loadTexture)."""
    h, w, _ = image.shape
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 24, 0x20)
    with open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(image[:, :, ::-1]).tobytes())


def _cone_mesh(radius: float, height: float) -> tuple[list[list[float]], list[int]]:
    """Vertices (Bullet axes, base at -height/2, apex at +height/2) and triangle indices of a cone."""
    verts = [[0.0, 0.0, height / 2], [0.0, 0.0, -height / 2]]
    for i in range(_CONE_SEGMENTS):
        a = 2 * math.pi * i / _CONE_SEGMENTS
        verts.append([radius * math.cos(a), radius * math.sin(a), -height / 2])
    indices: list[int] = []
    for i in range(_CONE_SEGMENTS):
        j = 2 + i
        k = 2 + (i + 1) % _CONE_SEGMENTS
        indices += [0, j, k, 1, k, j]
    return verts, indices


def _release_leaked_refs(call: Callable[[], T], *containers: list[Any]) -> T:
    """Run ``call`` and drop the references it took on the items of ``containers`` (lists of lists of numbers,
    made for the call) without releasing them: pybullet's mesh calls leak one per coordinate. Only the measured
    excess is dropped, so a call that leaks nothing is left alone (and immortal objects are never touched)."""
    items: dict[int, Any] = {}
    stack: list[Any] = list(containers)
    while stack:
        obj = stack.pop()
        if id(obj) in items:
            continue
        items[id(obj)] = obj
        if isinstance(obj, list):
            stack.extend(obj)
    before = {key: sys.getrefcount(obj) for key, obj in items.items()}
    result = call()
    for key, obj in items.items():
        for _ in range(sys.getrefcount(obj) - before[key]):
            ctypes.pythonapi.Py_DecRef(ctypes.py_object(obj))
    return result
