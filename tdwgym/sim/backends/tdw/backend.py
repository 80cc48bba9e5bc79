"""The ThreeDWorld backend itself, :class:`TDWBackend`: the :class:`~tdwgym.sim.backends.base.Backend`
interface on top of its connection, its scene-to-commands translation and its output parsing (see the
package's docstring for how a scene maps onto TDW)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.sim.backends.base import PASSES, Backend, BackendError, Contact, ObjectState, RayHit, register_backend
from tdwgym.sim.backends.tdw.connection import (
    BUILD_ENV_VAR,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_RESPONSE_TIMEOUT,
    LAUNCH_ENV_VAR,
    LOG_ENV_VAR,
    PORT_ENV_VAR,
    TIMEOUT_ENV_VAR,
    TDWConnection,
    _check_port,
    _check_seconds,
    _env_flag,
    _import_tdw,
)
from tdwgym.sim.backends.tdw.outputs import OutputParsing
from tdwgym.sim.backends.tdw.scene_commands import (
    AVATAR_ID,
    CAMERA_COLLIDER_ID,
    PART_ID_BASE,
    PROP_MODEL,
    QUAD_ID_BASE,
    SHAPE_MODELS,
    SceneCommands,
    _Model,
    _Part,
    _quat,
    _rgba,
    _vec,
)
from tdwgym.sim.geometry import euler_to_quat, rotate
from tdwgym.sim.scene import ObjectSpec, SceneSpec

DEFAULT_TIME_STEP = 1.0 / 240.0
"""Seconds per physics step; the embedded backend's 240 Hz, so ``substeps`` mean the same time on both."""


COMMAND_LOG_FRAMES = 10_000
"""Frames kept in :attr:`TDWBackend.command_log`."""


@register_backend
class TDWBackend(TDWConnection, SceneCommands, OutputParsing, Backend):
    """ThreeDWorld simulator and renderer for one scene at a time, reusing one running build across loads.

    Every argument left ``None`` falls back to its environment variable, then to the default.

    Args:
        port: Port the controller binds and the build connects to (``$TDWGYM_TDW_PORT``, default 1071). ``0`` picks
            a free port (only when this backend launches the build).
        launch_build: Launch a build (``$TDWGYM_TDW_LAUNCH``, default True). False waits for a build you start
            yourself with ``-port <port>``, locally or on another machine.
        build_path: Executable of a TDW build to launch (``$TDWGYM_TDW_BUILD``). When None and ``launch_build``,
            TDW's own build is used, downloaded first if missing or outdated (that needs internet).
        build_args: Extra command-line arguments for a launched build, e.g. ``["-force-glcore42"]``.
        connect_timeout: Seconds to wait for the build to connect (``$TDWGYM_TDW_TIMEOUT``, default 60).
        response_timeout: Seconds to wait for the build's answer to one frame of commands (default 300: the
            first frame that adds a model downloads it).
        time_step: Seconds per physics step (default 1/240, as the embedded backend).
        log_commands: Keep the commands of every frame in :attr:`command_log` and log them at DEBUG level
            (``$TDWGYM_TDW_LOG``). A path also appends each frame to that file as a JSON line.
        render_quality: TDW render quality 0..5, or None for TDW's default.
        check_version: Let TDW check PyPI for a newer ``tdw`` and download the matching build when it launches its
            own build.
        patterns: Paint patterned floors and walls with textured quads (default). False keeps them in their first
            colour (``floor_color``/``wall_color``), e.g. for a build that renders the quads wrongly.
    """

    name = "tdw"

    def __init__(
        self,
        port: int | None = None,
        launch_build: bool | None = None,
        build_path: str | os.PathLike[str] | None = None,
        build_args: Sequence[str] = (),
        connect_timeout: float | None = None,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
        time_step: float = DEFAULT_TIME_STEP,
        log_commands: bool | str | os.PathLike[str] | None = None,
        render_quality: int | None = None,
        check_version: bool = True,
        patterns: bool = True,
    ) -> None:
        # every setting is checked before tdw is imported, a build launched or a port bound
        env = os.environ
        if port is None and env.get(PORT_ENV_VAR):
            port = _check_port(env[PORT_ENV_VAR], f"${PORT_ENV_VAR}")
        self.port = _check_port(DEFAULT_PORT if port is None else port, "port")
        if build_path is None and env.get(BUILD_ENV_VAR):
            build_path = env[BUILD_ENV_VAR]
        if launch_build is None:
            launch_build = _env_flag(env[LAUNCH_ENV_VAR]) if env.get(LAUNCH_ENV_VAR) else True
        self.launch_build = bool(launch_build)
        self.build_path = Path(build_path).expanduser() if build_path is not None else None
        if connect_timeout is None and env.get(TIMEOUT_ENV_VAR):
            connect_timeout = _check_seconds(env[TIMEOUT_ENV_VAR], f"${TIMEOUT_ENV_VAR}")
        self.connect_timeout = _check_seconds(
            DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout, "connect_timeout"
        )
        self.response_timeout = _check_seconds(response_timeout, "response_timeout")
        self._time_step = _check_seconds(time_step, "time_step")
        if render_quality is not None and (
            isinstance(render_quality, bool) or not isinstance(render_quality, int) or not 0 <= render_quality <= 5
        ):
            raise ValueError(f"render_quality must be None or an int in 0..5, got {render_quality!r}")
        if log_commands is None and env.get(LOG_ENV_VAR):
            raw = env[LOG_ENV_VAR]
            log_commands = (
                raw
                if raw.strip().lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off")
                else _env_flag(raw)
            )
        self._log_path = Path(log_commands) if isinstance(log_commands, (str, os.PathLike)) else None
        self.log_commands = bool(log_commands)
        self.command_log: deque[dict[str, Any]] = deque(maxlen=COMMAND_LOG_FRAMES)
        """Per frame: ``{"frame": n, "kind": "load" | "step" | "query", "commands": [...]}`` (when logging)."""
        self._render_quality = render_quality
        self.patterns = bool(patterns)
        if self.port == 0 and not (self.launch_build or self.build_path):
            raise ValueError(
                "port=0 (pick a free port) needs a build this backend launches; give the port your build connects to"
            )
        self._tdw = _import_tdw()

        self._controller: Any = None
        self._context: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._process_rc: int | None = None
        self._frame = -1
        self._build_version = ""
        self._unity_version = ""
        self._models: dict[tuple[str, str], _Model] = {}
        # scene state
        self._scene: SceneSpec | None = None
        self._room_key: tuple[Any, ...] | None = None
        self._avatar_ready = False
        self._tdw_ids: list[int] = []  # every TDW object this backend added to the current scene
        self._owner: dict[int, int] = {}  # TDW id -> scene id, for every part of a movable object and every prop
        self._parts: dict[int, list[_Part]] = {}  # movable id -> its TDW objects, the first one with the scene id
        self._pivot_offset: dict[int, np.ndarray] = {}  # movable id -> first part's pivot-to-centre, object frame
        self._next_part_id = PART_ID_BASE
        self._seg_codes: dict[int, int] = {}  # TDW id -> 0xRRGGBB of its segmentation colour
        self._seg_lut: dict[int, int] = {}  # 0xRRGGBB -> scene id
        self._collisions_on = False
        self._quad_ids: list[int] = []  # pattern quads in the scene
        self._next_quad_id = QUAD_ID_BASE
        self._pattern_key: tuple[Any, ...] | None = None
        self._ceiling = False
        """Whether the current room has its proc-gen ceiling."""
        self._camera_pose: tuple[np.ndarray, float, float] = (np.zeros(3), 0.0, 0.0)
        self._camera_radius = 0.0
        self._physics_paused = False
        self._pending: list[dict[str, Any]] = []  # applied on the next frame of any kind
        self._pending_forces: list[dict[str, Any]] = []  # applied on the next physics frame only
        self._states: dict[int, ObjectState] = {}
        self._states_fresh = False
        self._render_request: tuple[int, int, tuple[str, ...]] | None = None
        self._screen: tuple[int, int] | None = None
        self._masks: tuple[str, ...] | None = None
        self._images: dict[str, np.ndarray] | None = None
        self._images_key: tuple[int, int, tuple[str, ...]] | None = None
        self._connect(check_version=check_version, build_args=list(build_args))

    # -- bookkeeping -----------------------------------------------------------------------------------------
    @property
    def timestep(self) -> float:
        return self._time_step

    @property
    def scene(self) -> SceneSpec:
        if self._scene is None:
            raise BackendError("no scene loaded: call load(scene) first")
        return self._scene

    @property
    def frame(self) -> int:
        """The build's frame number after the last communicate."""
        return self._frame

    def version(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "tdw": self._tdw["version"],
            "build": self._build_version,
            "unity": self._unity_version,
            "time_step": self._time_step,
            "port": self.port,
            "render_quality": self._render_quality,
        }

    # -- scene construction ------------------------------------------------------------------------------------
    def load(self, scene: SceneSpec) -> None:
        self.controller  # noqa: B018 - raises if closed
        for obj in scene.objects:
            self._check_new_id(obj, in_use=())
        for prop in scene.props:
            if prop.id >= PART_ID_BASE:
                raise BackendError(f"scene id {prop.id} is too large: the TDW backend reserves ids from {PART_ID_BASE}")
        commands: list[dict[str, Any]] = []
        room_key = (int(round(scene.room.width)), int(round(scene.room.length)))
        if self._room_key != room_key:
            if self._room_key is not None:  # a new room: reload the empty scene (it destroys objects and avatar)
                commands.append({"$type": "load_scene", "scene_name": "ProcGenScene"})
                self._avatar_ready = False
                self._masks = None
                self._quad_ids, self._pattern_key = [], None
            self._ceiling = False
            commands.append(self._tdw["TDWUtils"].create_empty_room(*room_key))
        else:
            commands.extend({"$type": "destroy_object", "id": i} for i in self._tdw_ids)
        commands.extend(self._room_commands(scene.room, room_key))
        commands.extend(
            [
                {"$type": "set_time_step", "time_step": self._time_step},
                {"$type": "set_gravity_vector", "gravity": _vec((0.0, -scene.gravity, 0.0))},
                {"$type": "set_directional_light_color", "color": _rgba(scene.light.color)},
                {"$type": "set_shadow_strength", "strength": 0.582 if scene.light.shadows else 0.0},
            ]
        )
        if self._render_quality is not None:
            commands.append({"$type": "set_render_quality", "render_quality": int(self._render_quality)})

        self._tdw_ids = []
        self._owner = {}
        self._parts = {}
        self._pivot_offset = {}
        self._seg_codes = {}
        self._seg_lut = {}
        self._collisions_on = False
        self._states = {}
        for prop in scene.props:
            commands.extend(
                self._add_body(
                    prop.id,
                    self._model(*PROP_MODEL),
                    prop.size,
                    prop.position,
                    euler_to_quat(prop.rotation),
                    prop.color,
                    mass=1.0,
                    friction=prop.friction,
                    restitution=prop.restitution,
                    kinematic=True,
                )
            )
            self._owner[prop.id] = prop.id
        for obj in scene.objects:
            commands.extend(self._add_object(obj))

        cam = scene.camera
        if not self._avatar_ready:
            commands.append({"$type": "create_avatar", "type": "A_Img_Caps_Kinematic", "id": AVATAR_ID})
            self._avatar_ready = True
        commands.extend(
            [
                {"$type": "set_field_of_view", "field_of_view": cam.fov, "avatar_id": AVATAR_ID},
                {"$type": "set_camera_clipping_planes", "near": cam.near, "far": cam.far, "avatar_id": AVATAR_ID},
            ]
        )
        self._camera_radius = cam.radius
        if cam.radius > 0:
            commands.extend(
                self._add_body(
                    CAMERA_COLLIDER_ID,
                    self._model(*SHAPE_MODELS["sphere"]),
                    (2 * cam.radius,) * 3,
                    cam.position,
                    euler_to_quat((0.0, 0.0, 0.0)),
                    (1.0, 1.0, 1.0),
                    mass=1.0,
                    friction=0.0,
                    restitution=0.0,
                    kinematic=True,
                )
            )
            commands.append({"$type": "hide_object", "id": CAMERA_COLLIDER_ID})
        self._pending = []
        self._pending_forces = []
        self._camera_pose = (np.array(cam.position, dtype=np.float64), cam.yaw, cam.pitch)
        commands.extend(self._camera_commands())
        commands.extend(self._output_requests(list(self._owner)))
        self._scene = scene
        self._room_key = room_key
        self._images = None
        self._frame_commands(commands, kind="load", physics=False)

    # -- frames ------------------------------------------------------------------------------------------------
    def _frame_commands(self, commands: list[dict[str, Any]], kind: str, physics: bool) -> list[bytes]:
        """Send one frame: pending commands, ``commands``, then state (and prefetched image) requests; parse them."""
        head: list[dict[str, Any]] = []
        if physics and self._physics_paused:
            head.append({"$type": "simulate_physics", "value": True})
        elif not physics and not self._physics_paused:
            head.append({"$type": "simulate_physics", "value": False})
        self._physics_paused = not physics
        head.extend(self._pending)
        self._pending = []
        if physics:
            head.extend(self._pending_forces)
            self._pending_forces = []
        movable = sorted(self._pivot_offset)
        tail: list[dict[str, Any]] = []
        if movable:
            tail += [
                {"$type": "send_transforms", "ids": movable, "frequency": "once"},
                {"$type": "send_rigidbodies", "ids": movable, "frequency": "once"},
            ]
        image_key = self._render_request if kind != "query-images" else None
        if image_key is not None and kind in ("step", "load"):
            tail.extend(self._image_commands(*image_key))
        resp = self._communicate(head + commands + tail, kind="query" if kind.startswith("query") else kind)
        self._parse_states(resp)
        self._parse_segmentation_colors(resp)
        if image_key is not None and kind in ("step", "load"):
            self._images = self._decode_images(resp, *image_key)
            self._images_key = image_key
        return resp

    # -- simulation ---------------------------------------------------------------------------------------
    def step(self, substeps: int) -> list[Contact]:
        if substeps < 0:
            raise ValueError(f"substeps must be >= 0, got {substeps}")
        self.scene  # noqa: B018 - raises if nothing is loaded
        if substeps == 0:
            return []
        commands = [{"$type": "step_physics", "frames": int(substeps) - 1}] if substeps > 1 else []
        resp = self._frame_commands(commands, kind="step", physics=True)
        return self._contacts(resp)

    def set_camera(self, position: Sequence[float], yaw: float, pitch: float) -> None:
        self.scene  # noqa: B018
        pose = (np.array(position, dtype=np.float64), float(yaw), float(pitch))
        old = self._camera_pose
        if np.array_equal(pose[0], old[0]) and pose[1] == old[1] and pose[2] == old[2]:
            return
        self._camera_pose = pose
        self._pending.extend(self._camera_commands())
        self._images = None

    @property
    def camera_pose(self) -> tuple[np.ndarray, float, float]:
        """Current camera (position, yaw, pitch)."""
        pos, yaw, pitch = self._camera_pose
        return pos.copy(), yaw, pitch

    def push(self, object_id: int, point: Sequence[float], impulse: Sequence[float]) -> None:
        parts = self._movable_parts(object_id)
        j = np.asarray(impulse, dtype=np.float64)
        total = sum(p.mass for p in parts)
        for part in parts:  # a compound's parts share the impulse by mass: each gains the same velocity J / M
            share = j if len(parts) == 1 else j * (part.mass / total)
            self._pending_forces.append({"$type": "apply_force_to_object", "id": part.tdw_id, "force": _vec(share)})
        state = self._states.get(object_id)
        if state is not None:  # an off-centre push also spins the object: angular impulse r x J
            torque = np.cross(np.asarray(point, dtype=np.float64) - state.position, j)
            if np.linalg.norm(torque) > 1e-9:
                self._pending_forces.append(
                    {"$type": "apply_torque_to_object", "id": int(object_id), "torque": _vec(torque)}
                )

    def ray_cast(self, origin: Sequence[float], direction: Sequence[float], max_distance: float) -> RayHit | None:
        self.scene  # noqa: B018
        d = np.asarray(direction, dtype=np.float64)
        d = d / np.linalg.norm(d)
        start = np.asarray(origin, dtype=np.float64)
        resp = self._frame_commands(
            [{"$type": "send_raycast", "origin": _vec(start), "destination": _vec(start + d * max_distance), "id": 0}],
            kind="query",
            physics=False,
        )
        od = self._tdw["output_data"]
        for r in resp[:-1]:
            if r[4:8] != b"rayc":
                continue
            ray = od.Raycast(r)
            if not ray.get_hit():
                return None
            tdw_id = int(ray.get_object_id()) if ray.get_hit_object() else 0
            if tdw_id == CAMERA_COLLIDER_ID:
                return None
            hit_id = self._owner.get(tdw_id, 0)
            point = np.array(ray.get_point(), dtype=np.float64)
            return RayHit(
                id=hit_id,
                point=point,
                normal=np.array(ray.get_normal(), dtype=np.float64),
                distance=float(np.linalg.norm(point - start)),
            )
        raise BackendError("the TDW build sent no Raycast output for send_raycast")

    def overlapping(self, center: Sequence[float], radius: float) -> list[int]:
        self.scene  # noqa: B018
        resp = self._frame_commands(
            [{"$type": "send_overlap_sphere", "radius": float(radius), "position": _vec(center), "id": 0}],
            kind="query",
            physics=False,
        )
        od = self._tdw["output_data"]
        for r in resp[:-1]:
            if r[4:8] != b"over":
                continue
            ov = od.Overlap(r)
            found = {self._owner[int(i)] for i in ov.get_object_ids() if int(i) in self._owner}
            if ov.get_env() or ov.get_walls():
                found.add(0)
            return sorted(found)
        raise BackendError("the TDW build sent no Overlap output for send_overlap_sphere")

    def object_states(self) -> dict[int, ObjectState]:
        self.scene  # noqa: B018
        if not self._states_fresh:
            self._frame_commands([], kind="query", physics=False)
        return dict(self._states)

    def set_object_state(
        self,
        object_id: int,
        position: Sequence[float] | None = None,
        rotation: Sequence[float] | None = None,
        velocity: Sequence[float] | None = None,
        angular_velocity: Sequence[float] | None = None,
    ) -> None:
        parts = self._movable_parts(object_id)
        current = self.object_states()[object_id]
        q = np.asarray(rotation if rotation is not None else current.rotation, dtype=np.float64)
        if position is not None or rotation is not None:
            centre = np.asarray(position if position is not None else current.position, dtype=np.float64)
            for part in parts:
                self._pending.append({"$type": "rotate_object_to", "id": part.tdw_id, "rotation": _quat(q)})
                self._pending.append(
                    {
                        "$type": "teleport_object",
                        "id": part.tdw_id,
                        "position": _vec(centre + rotate(q, part.offset - part.pivot_to_centre)),
                    }
                )
        if velocity is not None or angular_velocity is not None:
            self._pending.extend(
                self._velocity_commands(
                    object_id, q, velocity, angular_velocity, current.velocity, current.angular_velocity
                )
            )
        self._states_fresh = False
        self._images = None

    def _movable_parts(self, object_id: int) -> list[_Part]:
        parts = self._parts.get(object_id)
        if parts is None:
            raise KeyError(f"no movable object with id {object_id}; ids are {sorted(self._parts)}")
        return parts

    # -- scene edits ----------------------------------------------------------------------------------------------
    def remove_object(self, object_id: int) -> None:
        """Destroy a movable object (``destroy_object`` of each part), at once, in a frame without physics.

        The edit gets a frame of its own so that a following :meth:`add_object` with the same id (a ``"replace"``
        event) reaches a build in which the old object is gone.
        """
        parts = self._movable_parts(object_id)
        gone = {p.tdw_id for p in parts}
        del self._parts[object_id]
        del self._pivot_offset[object_id]
        self._tdw_ids = [i for i in self._tdw_ids if i not in gone]
        for tdw_id in gone:
            self._owner.pop(tdw_id, None)
            self._seg_codes.pop(tdw_id, None)
        self._rebuild_seg_lut()
        self._pending_forces = [c for c in self._pending_forces if c["id"] not in gone]
        self._states.pop(object_id, None)
        self._images = None
        self._frame_commands([{"$type": "destroy_object", "id": i} for i in sorted(gone)], kind="query", physics=False)

    def add_object(self, spec: ObjectSpec) -> None:
        """Add a movable object as :meth:`load` does, with its velocities; sent with the next frame."""
        self.scene  # noqa: B018 - raises if nothing is loaded
        self._check_new_id(spec, in_use=list(self._owner.values()))
        commands = self._add_object(spec)
        new_ids = [p.tdw_id for p in self._parts[spec.id]]
        self._pending.extend(commands + self._output_requests(new_ids))
        self._states_fresh = False
        self._images = None

    def set_object_color(self, object_id: int, color: Sequence[float]) -> None:
        """``set_color`` of every part of a movable object; sent with the next frame."""
        rgb = tuple(float(c) for c in color)
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValueError(f"color must be 3 floats in [0, 1], got {color!r}")
        for part in self._movable_parts(object_id):
            self._pending.append({"$type": "set_color", "id": part.tdw_id, "color": _rgba(rgb)})
        self._images = None

    def set_collision_enabled(self, id_a: int, id_b: int, enabled: bool) -> None:
        """``ignore_collisions`` between every part of ``id_a`` and every part of ``id_b``; sent with the next frame.

        Objects and props only: TDW has no command that makes an object ignore the room's floor and walls, so a
        pair with the room (id 0) raises NotImplementedError.
        """
        if id_a == 0 or id_b == 0:
            raise NotImplementedError(
                "the tdw backend cannot change collisions with the room (id 0): TDW's ignore_collisions takes two "
                "objects and the floor and walls are not objects; use the embedded backend (backend='bullet')"
            )

        def tdw_ids(sid: int) -> list[int]:
            found = [tid for tid, owner in self._owner.items() if owner == sid]
            if not found:
                raise KeyError(f"no body with scene id {sid}; ids are {sorted(set(self._owner.values()))}")
            return found

        for a in tdw_ids(id_a):
            for b in tdw_ids(id_b):
                if a != b:
                    self._pending.append({"$type": "ignore_collisions", "id": a, "other_id": b, "ignore": not enabled})

    def render(self, width: int, height: int, passes: Sequence[str] = ("rgb",)) -> dict[str, np.ndarray]:
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"unknown render passes {unknown}; valid passes are {list(PASSES)}")
        self.scene  # noqa: B018
        key = (int(width), int(height), tuple(p for p in PASSES if p in passes))
        self._render_request = key
        if self._images is None or self._images_key != key:
            resp = self._frame_commands(self._image_commands(*key), kind="query-images", physics=False)
            self._images = self._decode_images(resp, *key)
            self._images_key = key
        return {p: self._images[p].copy() for p in passes}

    # -- shutdown ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._controller is None:
            return
        controller = self._controller
        try:
            controller.socket.setsockopt(self._tdw["zmq"].RCVTIMEO, 2000)
            if self.log_commands:
                self.command_log.append(
                    {"frame": self._frame + 1, "kind": "close", "commands": [{"$type": "terminate"}]}
                )
            controller.socket.send_multipart([json.dumps([{"$type": "terminate"}]).encode("utf-8")])
            controller.socket.recv_multipart()
        except Exception:  # noqa: BLE001 - the build may already be gone
            pass
        finally:
            self._controller = None
            self._free_socket(controller.socket)
            self._stop_process()
            self._scene = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass
