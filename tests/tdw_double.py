"""A test double of the ThreeDWorld build that speaks TDW's real wire protocol.

Like the Unity build it is the ZMQ REQ side: it connects to the controller's port, says hello, then for every JSON
command list it receives answers with a multipart message of FlatBuffers output data built with ``tdw.FBOutput``'s
own generated builders (``Transforms``, ``Rigidbodies``, ``Images``, ``SegmentationColors``, ``Collision``,
``EnvironmentCollision``, ``Raycast``, ``Overlap``, ``QuitSignal``), each with TDW's 4-character identifier at bytes
4..8, followed by the frame number as a big-endian integer.

Its world is deliberately simple and predictable, so tests can check decoding against exact values:

* physics: no gravity; each physics frame moves every non-kinematic object by ``velocity * time_step`` and
  ``apply_force_to_object`` adds ``force / mass`` to the velocity (an impulse); ``step_physics n`` adds n frames and
  ``simulate_physics false`` stops them;
* rendering: the bottom half of the image holds one vertical band per visible object (sorted by id) in its
  ``set_color`` colour and its segmentation colour, at the depth of its centre from the camera; elsewhere depth
  grows by 0.5 m per row from the top (so a missing vertical flip shows);
* collisions: whatever a test queued with :meth:`FakeBuild.queue_collision` / :meth:`FakeBuild.queue_env_collision`,
  sent on the next physics frame unless ``ignore_collisions`` made the pair ignore each other; ray casts and overlaps
  test the objects' bounding spheres and the floor;
* joints: an object attached with ``add_fixed_joint`` keeps its pose in its parent's frame (it follows the parent
  each physics frame; teleports of both keep it);
* textured quads: kept in :attr:`FakeBuild.quads` with their decoded texture; like TDW's they are absent from all
  output data (the double does not draw them).

The parameters of the commands added since the first version (:data:`PARAMS`) are checked against the Command API:
a missing required or an unknown parameter is reported in :attr:`FakeBuild.unknown`.

Run as a program (``python tdw_double.py -port 1071``) it stands in for a build executable.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from PIL import Image

from tdwgym.sim.backends.tdw import ensure_imp_module

ensure_imp_module()  # tdw's FlatBuffers runtime imports imp, which Python 3.12 removed
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # "the imp module is deprecated" on Python 3.11
    from tdw.FBOutput import (
        Collision,
        ContactPoint,
        EnvironmentCollision,
        ImagePass,
        Images,
        Overlap,
        PassMask,
        QuitSignal,
        Raycast,
        Rigidbodies,
        SegmentationColors,
        Transforms,
        Vector3,
    )
    from tdw.flatbuffers import Builder

KNOWN_COMMANDS = frozenset(
    {
        "set_error_handling",
        "send_version",
        "load_scene",
        "create_exterior_walls",
        "set_floor_color",
        "set_proc_gen_walls_color",
        "create_proc_gen_ceiling",
        "destroy_proc_gen_ceiling",
        "set_proc_gen_ceiling_height",
        "set_proc_gen_ceiling_color",
        "set_time_step",
        "set_gravity_vector",
        "set_directional_light_color",
        "set_shadow_strength",
        "set_render_quality",
        "add_object",
        "rotate_object_to",
        "rotate_object_to_euler_angles",
        "set_kinematic_state",
        "set_object_collision_detection_mode",
        "set_mass",
        "set_physic_material",
        "scale_object",
        "set_color",
        "set_velocity",
        "set_angular_velocity",
        "destroy_object",
        "hide_object",
        "teleport_object",
        "create_avatar",
        "set_field_of_view",
        "set_camera_clipping_planes",
        "teleport_avatar_to",
        "rotate_sensor_container_to",
        "set_screen_size",
        "set_pass_masks",
        "send_images",
        "send_transforms",
        "send_rigidbodies",
        "send_collisions",
        "send_segmentation_colors",
        "send_raycast",
        "send_overlap_sphere",
        "simulate_physics",
        "step_physics",
        "apply_force_to_object",
        "apply_torque_to_object",
        "terminate",
        "ignore_collisions",
        "add_fixed_joint",
        "create_textured_quad",
        "set_textured_quad",
        "destroy_textured_quad",
    }
)
"""Command names of TDW's Command API that tdwgym sends (checked against Documentation/api/command_api.md)."""

PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ignore_collisions": (frozenset({"id", "other_id"}), frozenset({"ignore"})),
    "add_fixed_joint": (frozenset({"id", "parent_id"}), frozenset({"break_force", "break_torque"})),
    "create_textured_quad": (frozenset({"id", "position", "size", "euler_angles"}), frozenset()),
    "set_textured_quad": (frozenset({"id", "image", "dimensions"}), frozenset()),
    "destroy_textured_quad": (frozenset({"id"}), frozenset()),
    "destroy_object": (frozenset({"id"}), frozenset()),
    "set_color": (frozenset({"id", "color"}), frozenset()),
    "create_proc_gen_ceiling": (frozenset(), frozenset()),
    "destroy_proc_gen_ceiling": (frozenset(), frozenset()),
    "set_proc_gen_ceiling_height": (frozenset({"height"}), frozenset()),
    "set_proc_gen_ceiling_color": (frozenset({"color"}), frozenset()),
}
"""Command -> (required, optional) parameters besides ``$type``, as Documentation/api/command_api.md lists them."""

DEPTH_NEAR, DEPTH_FAR = 0.1, 100.0
BACKGROUND_RGB = (128, 128, 128)


def segmentation_color(object_id: int) -> tuple[int, int, int]:
    """The double's segmentation colour of an object (a 24-bit hash of the id, never black)."""
    h = (object_id * 2654435761) % (1 << 24) or 1
    return (h >> 16) & 255, (h >> 8) & 255, h & 255


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    u, w = np.asarray(q[:3], dtype=np.float64), float(q[3])
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def _finish(builder: Builder, root: int, identifier: bytes) -> bytes:
    """Finish a buffer with a FlatBuffers file identifier (bytes 4..8), as the build's flatc code does."""
    builder.Prep(builder.minalign, 8)
    for b in reversed(identifier):
        builder.PrependByte(b)
    builder.PrependUOffsetTRelative(root)
    builder.finished = True
    return bytes(builder.Output())


def _vector(builder: Builder, start: Any, values: list[float], prepend: Any) -> int:
    start(builder, len(values))
    for v in reversed(values):
        prepend(v)
    return builder.EndVector(len(values))


@dataclass
class FakeQuad:
    """A textured quad: bottom-centre anchor, Euler angles, size (width, height) and its texture (H x W x 3)."""

    id: int
    position: np.ndarray
    euler_angles: np.ndarray
    size: tuple[float, float]
    texture: np.ndarray | None = None


@dataclass
class FakeJoint:
    """A fixed joint: the child's pose in its parent's frame."""

    parent: int
    local_position: np.ndarray
    local_rotation: np.ndarray


@dataclass
class FakeObject:
    id: int
    name: str
    url: str
    position: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    mass: float = 1.0
    kinematic: bool = False
    hidden: bool = False
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def center(self) -> np.ndarray:
        """Bounding-box centre, assuming a pivot at the bottom centre of a 1 m model (the flex primitives)."""
        return self.position + quat_rotate(self.rotation, np.array([0.0, 0.5 * self.scale[1], 0.0]))

    @property
    def radius(self) -> float:
        return 0.5 * float(np.max(self.scale))


class FakeBuild:
    """The test double; call :meth:`start` (a thread) before or after the controller binds its port.

    Attributes:
        frames: The command lists received, one per frame, in order (the handshake first).
        unknown: ``$type`` values outside :data:`KNOWN_COMMANDS`.
        objects: The objects in the scene by id.
        frame: Frames answered so far.
        physics_frames: Physics steps run so far.
        ignored: Unordered pairs of object ids that ignore collisions with each other.
        joints: Child id -> its fixed joint.
        quads: Textured quads by id.
    """

    def __init__(self, port: int, hello: bool = True) -> None:
        self.port = port
        self.hello = hello
        self.frames: list[list[dict[str, Any]]] = []
        self.unknown: list[str] = []
        self.objects: dict[int, FakeObject] = {}
        self.frame = 0
        self.physics_frames = 0
        self.physics = True
        self.time_step = 0.01
        self.avatar: dict[str, Any] | None = None
        self.screen = (256, 256)
        self.pass_masks: list[str] = []
        self.walls: list[dict[str, int]] = []
        self.ignored: set[frozenset[int]] = set()
        self.joints: dict[int, FakeJoint] = {}
        self.quads: dict[int, FakeQuad] = {}
        self.ceiling = False
        self.terminated = False
        self._collisions: list[bytes] = []
        self._pairs: list[frozenset[int]] = []  # the object pair of each queued collision (empty: the room)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- test controls --------------------------------------------------------------------------------------
    def queue_collision(
        self,
        collider: int,
        collidee: int,
        impulse: tuple[float, float, float],
        normal: tuple[float, float, float],
        point: tuple[float, float, float],
        state: int = 1,
    ) -> None:
        """Send a ``Collision`` (state 1 enter, 2 stay) on the next physics frame."""
        b = Builder(256)
        b.StartVector(24, 1, 4)
        ContactPoint.CreateContactPoint(b, *normal, *point)
        contacts = b.EndVector(1)
        Collision.CollisionStart(b)
        Collision.CollisionAddColliderId(b, collider)
        Collision.CollisionAddCollideeId(b, collidee)
        Collision.CollisionAddRelativeVelocity(b, Vector3.CreateVector3(b, 0.0, 0.0, 0.0))
        Collision.CollisionAddImpulse(b, Vector3.CreateVector3(b, *impulse))
        Collision.CollisionAddState(b, state)
        Collision.CollisionAddContacts(b, contacts)
        self._collisions.append(_finish(b, Collision.CollisionEnd(b), b"coll"))
        self._pairs.append(frozenset((collider, collidee)))

    def queue_env_collision(
        self,
        object_id: int,
        normal: tuple[float, float, float],
        point: tuple[float, float, float],
        floor: bool = True,
        state: int = 1,
    ) -> None:
        """Send an ``EnvironmentCollision`` on the next physics frame."""
        b = Builder(256)
        b.StartVector(24, 1, 4)
        ContactPoint.CreateContactPoint(b, *normal, *point)
        contacts = b.EndVector(1)
        EnvironmentCollision.EnvironmentCollisionStart(b)
        EnvironmentCollision.EnvironmentCollisionAddObjectId(b, object_id)
        EnvironmentCollision.EnvironmentCollisionAddState(b, state)
        EnvironmentCollision.EnvironmentCollisionAddContacts(b, contacts)
        EnvironmentCollision.EnvironmentCollisionAddFloor(b, floor)
        self._collisions.append(_finish(b, EnvironmentCollision.EnvironmentCollisionEnd(b), b"enco"))
        self._pairs.append(frozenset())

    def commands_of(self, frame: int) -> list[str]:
        """The ``$type`` of every command of one received frame."""
        return [c["$type"] for c in self.frames[frame]]

    # -- the REQ loop -----------------------------------------------------------------------------------------
    def start(self) -> FakeBuild:
        self._thread = threading.Thread(target=self._run, name="tdw-double", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.serve()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test through .error
            self.error = exc

    def serve(self) -> None:
        """Connect and answer frames until ``terminate`` or :meth:`stop`."""
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{self.port}")
        try:
            if self.hello:
                sock.send(b"0")
            while not self._stop.is_set() and not self.terminated:
                if not sock.poll(50):
                    continue
                msg = sock.recv_multipart()
                commands = json.loads(msg[0].decode("utf-8"))
                self.frames.append(commands)
                out = self._handle(commands)
                self.frame += 1
                sock.send_multipart([*out, self.frame.to_bytes(4, byteorder="big")])
        finally:
            sock.close(0)
            ctx.term()

    # -- the world ---------------------------------------------------------------------------------------------
    def _handle(self, commands: list[dict[str, Any]]) -> list[bytes]:
        out: list[bytes] = []
        late: list[dict[str, Any]] = []  # output requests answered at the end of the frame, as the build does
        extra_frames = 0
        for c in commands:
            t = c["$type"]
            if t not in KNOWN_COMMANDS:
                self.unknown.append(t)
            if t in PARAMS:
                required, optional = PARAMS[t]
                keys = set(c) - {"$type"}
                if not required <= keys or not keys <= required | optional:
                    self.unknown.append(f"{t} with parameters {sorted(keys)}")
            if t == "load_scene":
                self.objects.clear()
                self.avatar = None
                self.ignored.clear()
                self.joints.clear()
                self.quads.clear()
                self.ceiling = False
            elif t == "create_proc_gen_ceiling":
                assert not self.ceiling, "create_proc_gen_ceiling sent to a room that has a ceiling"
                self.ceiling = True
            elif t == "destroy_proc_gen_ceiling":
                assert self.ceiling, "destroy_proc_gen_ceiling sent to a room without a ceiling"
                self.ceiling = False
            elif t == "create_exterior_walls":
                self.walls = c["walls"]
            elif t == "add_object":
                clash = [o.id for o in self.objects.values() if segmentation_color(o.id) == segmentation_color(c["id"])]
                assert not clash or clash == [c["id"]], f"segmentation colours of {c['id']} and {clash} clash"
                self.objects[c["id"]] = FakeObject(id=c["id"], name=c["name"], url=c["url"], position=_v(c["position"]))
            elif t == "rotate_object_to":
                r = c["rotation"]
                self.objects[c["id"]].rotation = np.array([r["x"], r["y"], r["z"], r["w"]])
            elif t == "scale_object":
                self.objects[c["id"]].scale = self.objects[c["id"]].scale * _v(c["scale_factor"])
            elif t == "set_kinematic_state":
                self.objects[c["id"]].kinematic = bool(c["is_kinematic"])
            elif t == "set_mass":
                self.objects[c["id"]].mass = float(c["mass"])
            elif t == "set_color":
                col = c["color"]
                self.objects[c["id"]].color = (col["r"], col["g"], col["b"])
            elif t == "set_velocity":
                self.objects[c["id"]].velocity = _v(c["velocity"])
            elif t == "set_angular_velocity":
                self.objects[c["id"]].angular_velocity = _v(c["velocity"])
            elif t == "destroy_object":
                self.objects.pop(c["id"], None)
                self.ignored = {pair for pair in self.ignored if c["id"] not in pair}
                self.joints = {k: j for k, j in self.joints.items() if c["id"] not in (k, j.parent)}
            elif t == "ignore_collisions":
                assert c["id"] in self.objects and c["other_id"] in self.objects, f"{t} of a missing object: {c}"
                pair = frozenset((c["id"], c["other_id"]))
                if c.get("ignore", True):
                    self.ignored.add(pair)
                else:
                    self.ignored.discard(pair)
            elif t == "add_fixed_joint":
                child, parent = self.objects[c["id"]], self.objects[c["parent_id"]]
                inv = quat_conjugate(parent.rotation)
                self.joints[child.id] = FakeJoint(
                    parent.id, quat_rotate(inv, child.position - parent.position), quat_multiply(inv, child.rotation)
                )
            elif t == "create_textured_quad":
                size = c["size"]
                self.quads[c["id"]] = FakeQuad(
                    c["id"], _v(c["position"]), _v(c["euler_angles"]), (float(size["x"]), float(size["y"]))
                )
            elif t == "set_textured_quad":
                with Image.open(io.BytesIO(base64.b64decode(c["image"]))) as img:
                    texture = np.asarray(img.convert("RGB"), dtype=np.uint8)
                dims = c["dimensions"]
                assert (texture.shape[1], texture.shape[0]) == (dims["x"], dims["y"]), "dimensions mismatch"
                self.quads[c["id"]].texture = texture
            elif t == "destroy_textured_quad":
                self.quads.pop(c["id"])
            elif t == "hide_object":
                self.objects[c["id"]].hidden = True
            elif t == "teleport_object":
                self.objects[c["id"]].position = _v(c["position"])
            elif t == "apply_force_to_object":
                obj = self.objects[c["id"]]
                obj.velocity = obj.velocity + _v(c["force"]) / obj.mass
            elif t == "create_avatar":
                self.avatar = {"id": c.get("id", "a"), "position": np.zeros(3), "rotation": np.array([0, 0, 0, 1.0])}
            elif t == "teleport_avatar_to":
                assert self.avatar is not None, "teleport_avatar_to before create_avatar"
                self.avatar["position"] = _v(c["position"])
            elif t == "rotate_sensor_container_to":
                assert self.avatar is not None, "rotate_sensor_container_to before create_avatar"
                r = c["rotation"]
                self.avatar["rotation"] = np.array([r["x"], r["y"], r["z"], r["w"]])
            elif t == "set_screen_size":
                self.screen = (int(c["width"]), int(c["height"]))
            elif t == "set_pass_masks":
                self.pass_masks = list(c["pass_masks"])
            elif t == "set_time_step":
                self.time_step = float(c["time_step"])
            elif t == "simulate_physics":
                self.physics = bool(c["value"])
            elif t == "step_physics":
                if self.physics:
                    self._advance(int(c["frames"]))
                extra_frames += int(c["frames"])
            elif t in ("send_images", "send_transforms", "send_rigidbodies", "send_segmentation_colors"):
                late.append(c)
            elif t == "send_raycast":
                out.append(self._raycast(c))
            elif t == "send_overlap_sphere":
                out.append(self._overlap(c))
            elif t == "terminate":
                self.terminated = True
                b = Builder(32)
                QuitSignal.QuitSignalStart(b)
                QuitSignal.QuitSignalAddOk(b, True)
                out.append(_finish(b, QuitSignal.QuitSignalEnd(b), b"quit"))
        if self.physics:
            self._advance(1)
            out.extend(
                data for data, pair in zip(self._collisions, self._pairs, strict=True) if pair not in self.ignored
            )
            self._collisions, self._pairs = [], []
        else:
            self._follow_joints()
        for c in late:
            t = c["$type"]
            if t == "send_transforms":
                out.append(self._transforms(c.get("ids") or sorted(self.objects)))
            elif t == "send_rigidbodies":
                out.append(self._rigidbodies(c.get("ids") or sorted(self.objects)))
            elif t == "send_segmentation_colors":
                out.append(self._segmentation_colors(c.get("ids") or sorted(self.objects)))
            elif t == "send_images":
                out.append(self._images())
        return out

    def _advance(self, frames: int) -> None:
        for obj in self.objects.values():
            if not obj.kinematic and obj.id not in self.joints:
                obj.position = obj.position + obj.velocity * self.time_step * frames
        self._follow_joints()
        self.physics_frames += frames

    def _follow_joints(self) -> None:
        """Put every jointed object back at its pose in its parent's frame (a perfectly stiff fixed joint)."""
        for child_id, joint in self.joints.items():
            child, parent = self.objects.get(child_id), self.objects.get(joint.parent)
            if child is not None and parent is not None:
                child.position = parent.position + quat_rotate(parent.rotation, joint.local_position)
                child.rotation = quat_multiply(parent.rotation, joint.local_rotation)

    # -- output data ----------------------------------------------------------------------------------------
    def _transforms(self, ids: list[int]) -> bytes:
        objs = [self.objects[i] for i in ids if i in self.objects]
        b = Builder(1024)
        ids_v = _vector(b, Transforms.TransformsStartIdsVector, [o.id for o in objs], b.PrependInt32)
        pos = _vector(
            b, Transforms.TransformsStartPositionsVector, [float(x) for o in objs for x in o.position], b.PrependFloat32
        )
        rot = _vector(
            b, Transforms.TransformsStartRotationsVector, [float(x) for o in objs for x in o.rotation], b.PrependFloat32
        )
        fwd = _vector(
            b,
            Transforms.TransformsStartForwardsVector,
            [float(x) for o in objs for x in quat_rotate(o.rotation, np.array([0.0, 0.0, 1.0]))],
            b.PrependFloat32,
        )
        Transforms.TransformsStart(b)
        Transforms.TransformsAddIds(b, ids_v)
        Transforms.TransformsAddPositions(b, pos)
        Transforms.TransformsAddRotations(b, rot)
        Transforms.TransformsAddForwards(b, fwd)
        return _finish(b, Transforms.TransformsEnd(b), b"tran")

    def _rigidbodies(self, ids: list[int]) -> bytes:
        objs = [self.objects[i] for i in ids if i in self.objects]
        b = Builder(1024)
        ids_v = _vector(b, Rigidbodies.RigidbodiesStartIdsVector, [o.id for o in objs], b.PrependInt32)
        vel = _vector(
            b,
            Rigidbodies.RigidbodiesStartVelocitiesVector,
            [float(x) for o in objs for x in o.velocity],
            b.PrependFloat32,
        )
        ang = _vector(
            b,
            Rigidbodies.RigidbodiesStartAngularVelocitiesVector,
            [float(x) for o in objs for x in o.angular_velocity],
            b.PrependFloat32,
        )
        sleep = _vector(b, Rigidbodies.RigidbodiesStartSleepingsVector, [False for _ in objs], b.PrependBool)
        Rigidbodies.RigidbodiesStart(b)
        Rigidbodies.RigidbodiesAddIds(b, ids_v)
        Rigidbodies.RigidbodiesAddVelocities(b, vel)
        Rigidbodies.RigidbodiesAddAngularVelocities(b, ang)
        Rigidbodies.RigidbodiesAddSleepings(b, sleep)
        return _finish(b, Rigidbodies.RigidbodiesEnd(b), b"rigi")

    def _segmentation_colors(self, ids: list[int]) -> bytes:
        objs = [self.objects[i] for i in ids if i in self.objects]
        b = Builder(1024)
        names = [b.CreateString(o.name) for o in objs]
        cats = [b.CreateString("prim") for o in objs]
        ids_v = _vector(b, SegmentationColors.SegmentationColorsStartIdsVector, [o.id for o in objs], b.PrependInt32)
        names_v = _vector(b, SegmentationColors.SegmentationColorsStartNamesVector, names, b.PrependUOffsetTRelative)
        cats_v = _vector(b, SegmentationColors.SegmentationColorsStartCategoriesVector, cats, b.PrependUOffsetTRelative)
        cols = _vector(
            b,
            SegmentationColors.SegmentationColorsStartColorsVector,
            [c for o in objs for c in segmentation_color(o.id)],
            b.PrependInt32,
        )
        SegmentationColors.SegmentationColorsStart(b)
        SegmentationColors.SegmentationColorsAddIds(b, ids_v)
        SegmentationColors.SegmentationColorsAddNames(b, names_v)
        SegmentationColors.SegmentationColorsAddCategories(b, cats_v)
        SegmentationColors.SegmentationColorsAddColors(b, cols)
        return _finish(b, SegmentationColors.SegmentationColorsEnd(b), b"segm")

    def render_arrays(self) -> dict[str, np.ndarray]:
        """The frame the double renders now: rgb and id pass (uint8 HxWx3) and depth in metres (HxW)."""
        w, h = self.screen
        rgb = np.empty((h, w, 3), dtype=np.uint8)
        rgb[:] = BACKGROUND_RGB
        ids = np.zeros((h, w, 3), dtype=np.uint8)
        depth = np.repeat((1.0 + 0.5 * np.arange(h, dtype=np.float64))[:, None], w, axis=1)
        visible = [o for _, o in sorted(self.objects.items()) if not o.hidden]
        eye = self.avatar["position"] if self.avatar is not None else np.zeros(3)
        if visible:
            band = max(1, w // len(visible))
            for k, obj in enumerate(visible):
                cols = slice(k * band, (k + 1) * band)
                rgb[h // 2 :, cols] = [round(255 * c) for c in obj.color]
                ids[h // 2 :, cols] = segmentation_color(obj.id)
                depth[h // 2 :, cols] = float(np.linalg.norm(obj.center - eye))
        return {"rgb": rgb, "id": ids, "depth": depth}

    def _images(self) -> bytes:
        frames = self.render_arrays()
        w, h = self.screen
        passes: list[tuple[int, bytes, int]] = []
        for mask in self.pass_masks:
            if mask == "_img":
                passes.append((PassMask.PassMask._img, _png(frames["rgb"]), 1))
            elif mask == "_id":
                passes.append((PassMask.PassMask._id, _png(frames["id"]), 1))
            elif mask == "_depth":
                v = frames["depth"] * 256.0 / (DEPTH_FAR - DEPTH_NEAR)
                r = np.floor(v)
                g = np.floor((v - r) * 256.0)
                bl = np.floor(((v - r) * 256.0 - g) * 256.0)
                raw = np.stack([r, g, bl], axis=-1).astype(np.uint8)
                passes.append((PassMask.PassMask._depth, np.flip(raw, 0).tobytes(), 1))  # bottom row first
        b = Builder(4096)
        pass_offsets = []
        for mask, data, ext in passes:
            img = b.CreateByteVector(data)
            ImagePass.ImagePassStart(b)
            ImagePass.ImagePassAddPassMask(b, mask)
            ImagePass.ImagePassAddImage(b, img)
            ImagePass.ImagePassAddExtension(b, ext)
            pass_offsets.append(ImagePass.ImagePassEnd(b))
        passes_v = _vector(b, Images.ImagesStartPassesVector, pass_offsets, b.PrependUOffsetTRelative)
        avatar = b.CreateString(self.avatar["id"] if self.avatar else "a")
        sensor = b.CreateString("SensorContainer")
        Images.ImagesStart(b)
        Images.ImagesAddAvatarId(b, avatar)
        Images.ImagesAddSensorName(b, sensor)
        Images.ImagesAddWidth(b, w)
        Images.ImagesAddHeight(b, h)
        Images.ImagesAddPasses(b, passes_v)
        return _finish(b, Images.ImagesEnd(b), b"imag")

    def _raycast(self, c: dict[str, Any]) -> bytes:
        origin, dest = _v(c["origin"]), _v(c["destination"])
        length = float(np.linalg.norm(dest - origin))
        d = (dest - origin) / length
        best: tuple[float, int | None, np.ndarray] | None = None
        for obj in self.objects.values():
            rel = obj.center - origin
            along = float(rel @ d)
            miss2 = float(rel @ rel) - along * along
            if miss2 > obj.radius**2:
                continue
            t = along - float(np.sqrt(obj.radius**2 - miss2))
            if 0.0 < t <= length and (best is None or t < best[0]):
                best = (t, obj.id, obj.center)
        if best is None and d[1] < 0 and -origin[1] / d[1] <= length:
            t = -origin[1] / d[1]
            best = (t, None, origin + t * d)
        b = Builder(128)
        Raycast.RaycastStart(b)
        Raycast.RaycastAddHit(b, best is not None)
        Raycast.RaycastAddHitObject(b, best is not None and best[1] is not None)
        Raycast.RaycastAddRaycastId(b, int(c.get("id", 0)))
        if best is not None:
            point = origin + best[0] * d
            normal = (point - best[2]) if best[1] is not None else np.array([0.0, 1.0, 0.0])
            normal = normal / np.linalg.norm(normal)
            Raycast.RaycastAddObjectId(b, best[1] or 0)
            Raycast.RaycastAddNormal(b, Vector3.CreateVector3(b, *map(float, normal)))
            Raycast.RaycastAddPoint(b, Vector3.CreateVector3(b, *map(float, point)))
        return _finish(b, Raycast.RaycastEnd(b), b"rayc")

    def _overlap(self, c: dict[str, Any]) -> bytes:
        centre, radius = _v(c["position"]), float(c["radius"])
        hits = [o.id for _, o in sorted(self.objects.items()) if np.linalg.norm(o.center - centre) <= radius + o.radius]
        b = Builder(128)
        ids_v = _vector(b, Overlap.OverlapStartObjectIdsVector, hits, b.PrependInt32)
        Overlap.OverlapStart(b)
        Overlap.OverlapAddId(b, int(c.get("id", 0)))
        Overlap.OverlapAddObjectIds(b, ids_v)
        Overlap.OverlapAddEnv(b, bool(centre[1] - radius <= 0.0))
        Overlap.OverlapAddWalls(b, False)
        return _finish(b, Overlap.OverlapEnd(b), b"over")


def _v(d: dict[str, float]) -> np.ndarray:
    return np.array([d["x"], d["y"], d["z"]], dtype=np.float64)


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str]) -> int:
    """Serve as a build program: ``tdw_double.py -port 1071`` (or ``"-port 1071"`` as one argument, as TDW does)."""
    tokens = " ".join(argv).split()
    port = int(tokens[tokens.index("-port") + 1]) if "-port" in tokens else 1071
    build = FakeBuild(port)
    build.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
