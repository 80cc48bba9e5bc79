"""The ThreeDWorld backend: a TDW build (Unity, PhysX) driven through the ``tdw`` package's controller.

Install with ``pip install 'tdwgym[tdw]'``; nothing here imports ``tdw`` until a :class:`TDWBackend` is created.

How the scene maps onto TDW:

* The room is ``TDWUtils.create_empty_room`` in TDW's ``ProcGenScene`` (walls are whole 1 m sections, so width and
  length are rounded to whole metres), with ``create_proc_gen_ceiling`` at ``Room.height`` when ``Room.ceiling``.
  A ``"checker"`` or ``"stripes"`` floor or wall pattern is a textured quad
  (``create_textured_quad`` + ``set_textured_quad``, a PNG of the pattern) laid 1 mm in front of the surface; quads
  are visual only (no collider, absent from the ``_id`` pass), so physics, ray casts and segmentation see the plain
  room. Objects are the primitives of ``models_flex.json`` (cube, sphere, cylinder, cone) and
  ``models_special.json`` (``prim_capsule``), scaled to their ``size``; props are kinematic cubes. Scene ids are TDW
  object ids.
* A compound object is one primitive per part: the first part has the scene id, the others ids from
  :data:`PART_ID_BASE` up, each attached to the first with ``add_fixed_joint`` and told to ``ignore_collisions`` with
  its siblings. The object's mass is shared between the parts by volume. Every output of a part (transforms of the
  first part, collisions, ray casts, overlaps, segmentation colours) is reported under the object's scene id.
* Scene edits (scripted events): ``remove_object`` is ``destroy_object`` of every part, sent at once in a frame of
  its own (so a same-id ``add_object`` never meets the old object); ``add_object`` adds the parts as a load does;
  ``set_object_color`` is ``set_color``; ``set_collision_enabled`` is ``ignore_collisions`` for every pair of parts
  (TDW has no command to ignore the room's floor and walls, so a pair with the room raises NotImplementedError).
* TDW places an object by its pivot (the bottom centre of the flex primitives); a scene ``position`` is the
  bounding-box centre. The offset between the two comes from each model record's bounds and is applied at this
  boundary, in both directions. Axes, units, Euler angles and quaternions (x, y, z, w) are TDW's own.
* The camera is a kinematic avatar (``A_Img_Caps_Kinematic``) moved with ``teleport_avatar_to`` and
  ``rotate_sensor_container_to``. Its collider (``Camera.radius``) is a hidden kinematic sphere that follows it.
* Every ``communicate`` is one TDW frame. A frame of :meth:`TDWBackend.step` runs ``substeps`` physics steps
  (``step_physics substeps - 1`` plus the frame's own); every other frame (loading, ray casts, overlaps, a render
  after the camera moved) is sent with ``simulate_physics`` off, so queries never advance time.
* :meth:`TDWBackend.render` images are requested with the step they follow: after one call the backend asks for
  the same passes on every step frame and serves them from that frame while nothing moved since.

Connection: by default TDW downloads (first run) and launches its own build; or pass ``build_path`` to launch a
build you have; or ``launch_build=False`` to wait for a build you start yourself (``./TDW.x86_64 -port 1071``).
The controller binds a ZMQ REP socket and the build connects to it; :class:`TDWBackend` waits at most
``connect_timeout`` seconds for that and then frees the port and raises :class:`TDWConnectionError`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.sim.backends.base import PASSES, Backend, BackendError, Contact, ObjectState, RayHit, register_backend
from tdwgym.sim.geometry import euler_to_quat, rotate
from tdwgym.sim.patterns import pattern_image
from tdwgym.sim.scene import COMPOUND, Color, ObjectSpec, Room, SceneSpec

logger = logging.getLogger(__name__)

PORT_ENV_VAR = "TDWGYM_TDW_PORT"
"""Port of the controller's socket (default 1071)."""
LAUNCH_ENV_VAR = "TDWGYM_TDW_LAUNCH"
"""``0``/``false`` to connect to a build you started yourself instead of launching one."""
BUILD_ENV_VAR = "TDWGYM_TDW_BUILD"
"""Path of a TDW build executable to launch (instead of TDW's own downloaded build)."""
TIMEOUT_ENV_VAR = "TDWGYM_TDW_TIMEOUT"
"""Seconds to wait for the build to connect (default 60)."""
LOG_ENV_VAR = "TDWGYM_TDW_LOG"
"""``1`` to keep a log of the commands of every frame, or a file path to also append it there as JSON lines."""

DEFAULT_PORT = 1071
DEFAULT_CONNECT_TIMEOUT = 60.0
DEFAULT_RESPONSE_TIMEOUT = 300.0
DEFAULT_TIME_STEP = 1.0 / 240.0
"""Seconds per physics step; the embedded backend's 240 Hz, so ``substeps`` mean the same time on both."""
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
DEPTH_NEAR, DEPTH_FAR = 0.1, 100.0
"""TDW's ``_depth`` shader encodes depth between these planes, whatever the camera's clipping planes."""
COMMAND_LOG_FRAMES = 10_000
"""Frames kept in :attr:`TDWBackend.command_log`."""

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
_INSTALL_HINT = "the ThreeDWorld backend needs the tdw extra: pip install 'tdwgym[tdw]'"


class TDWConnectionError(BackendError):
    """No TDW build connected to the controller in time, or the build stopped answering."""


def ensure_imp_module() -> None:
    """Give ``tdw``'s bundled FlatBuffers runtime the ``imp.find_module`` it imports (``imp`` left Python 3.12).

    ``tdw/flatbuffers/compat.py`` does ``import imp`` only to ask ``imp.find_module("numpy")``. On Python 3.12+
    this installs a stand-in module named ``imp`` with just that function; it does nothing where ``imp`` exists.
    """
    if sys.version_info < (3, 12) or "imp" in sys.modules:
        return
    import importlib.util
    import types

    def find_module(name: str, path: Any = None) -> tuple[None, str | None, tuple[str, str, int]]:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ImportError(f"No module named {name!r}")
        return None, spec.origin, ("", "", 0)

    shim = types.ModuleType("imp", "tdwgym stand-in for the removed imp module (find_module only), for tdw")
    shim.find_module = find_module  # type: ignore[attr-defined]
    sys.modules["imp"] = shim


def _check_port(value: Any, name: str) -> int:
    """A TCP port: an int in 1..65535 (0: pick a free one, for a build this backend launches)."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a port number in 1..65535 (0: pick a free one), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 65535:
        raise ValueError(f"{name} must be a port number in 1..65535 (0: pick a free one), got {value!r}")
    return int(value)


def _check_seconds(value: Any, name: str) -> float:
    """A duration: a finite number of seconds > 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return seconds


def _import_tdw() -> dict[str, Any]:
    """Import the parts of ``tdw`` this backend uses, or raise ImportError with the pip command."""
    ensure_imp_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            import zmq
            from tdw import output_data
            from tdw.controller import Controller
            from tdw.librarian import ModelLibrarian
            from tdw.tdw_utils import TDWUtils
            from tdw.version import __version__ as tdw_version
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return {
        "zmq": zmq,
        "output_data": output_data,
        "Controller": Controller,
        "ModelLibrarian": ModelLibrarian,
        "TDWUtils": TDWUtils,
        "version": tdw_version,
    }


def _env_flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


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


@register_backend
class TDWBackend(Backend):
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

    # -- connection --------------------------------------------------------------------------------------------
    def _connect(self, check_version: bool, build_args: list[str]) -> None:
        zmq = self._tdw["zmq"]
        controller_cls = self._tdw["Controller"]
        executable: Path | None = None
        if self.build_path is not None:
            executable = self.build_path
            if not executable.exists():
                raise TDWConnectionError(f"TDW build not found at {executable} (build_path / ${BUILD_ENV_VAR})")
        elif self.launch_build:
            from tdw.backend.paths import BUILD_PATH
            from tdw.backend.update import Update

            if check_version:
                if not Update.check_for_update(download_build=True):
                    raise TDWConnectionError(
                        "TDW could not download or find its build; check internet access to github.com, or pass "
                        f"build_path= / set ${BUILD_ENV_VAR}, or start a build yourself and pass launch_build=False"
                    )
            executable = Path(BUILD_PATH)
            if not executable.exists():
                raise TDWConnectionError(
                    f"TDW build not found at {executable}; run once with check_version=True "
                    f"(downloads it) or pass build_path= / set ${BUILD_ENV_VAR}"
                )

        self._context = zmq.Context()
        socket = self._context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            if self.port == 0:
                self.port = socket.bind_to_random_port("tcp://*")
            else:
                socket.bind(f"tcp://*:{self.port}")
        except zmq.ZMQError as exc:
            socket.close(0)
            self._context.term()
            self._context = None
            raise TDWConnectionError(
                f"cannot bind the TDW controller to port {self.port} ({exc}); is another "
                f"controller or env using it? Pick another port (port= / ${PORT_ENV_VAR})"
            ) from exc
        if executable is not None:
            cmd = [str(executable), f"-port {self.port}", *build_args]
            logger.info("launching TDW build: %s", cmd)
            try:
                self._process = subprocess.Popen(cmd)
            except OSError as exc:
                self._free_socket(socket)
                raise TDWConnectionError(f"cannot launch the TDW build {executable}: {exc}") from exc

        deadline = time.monotonic() + self.connect_timeout
        connected = False
        while not connected:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            connected = bool(socket.poll(timeout=max(1, int(min(left, 0.25) * 1000))))
            if not connected and self._process is not None and self._process.poll() is not None:
                break
        if not connected:
            exited = self._process is not None and self._process.poll() is not None
            self._free_socket(socket)
            self._stop_process(wait=0.0)
            what = (
                f"the TDW build {executable} exited with code {self._process_rc}"
                if exited
                else f"no TDW build connected to port {self.port} within {self.connect_timeout:g} s"
            )
            raise TDWConnectionError(
                f"{what}. Check that: the build runs (build_path / ${BUILD_ENV_VAR}; its log is "
                "~/.config/unity3d/MIT/TDW/Player.log on Linux); it has a display (DISPLAY is "
                f"{os.environ.get('DISPLAY', 'unset')!r}: on a headless server start an X server, e.g. Xvfb or "
                f"X with the GPU); it was started with -port {self.port} if you launch it yourself "
                f"(launch_build=False / ${LAUNCH_ENV_VAR}=0); nothing else uses port {self.port} (port= / "
                f"${PORT_ENV_VAR}); a first run may need longer to download (connect_timeout= / ${TIMEOUT_ENV_VAR})"
            )
        socket.recv()  # the build's hello
        socket.setsockopt(zmq.RCVTIMEO, max(1, int(self.response_timeout * 1000)))

        controller = controller_cls.__new__(controller_cls)  # TDW's communicate(), without its blocking __init__
        controller.add_ons = []
        controller.socket = socket
        controller._is_standalone = True
        controller._tdw_version = ""
        controller._unity_version = ""
        self._controller = controller
        resp = self._communicate(
            [
                {"$type": "set_error_handling"},
                {"$type": "send_version"},
                {"$type": "load_scene", "scene_name": "ProcGenScene"},
            ],
            kind="connect",
        )
        for r in resp[:-1]:
            if r[4:8] == b"vers":
                try:
                    v = self._tdw["output_data"].Version(r)
                    self._build_version, self._unity_version = v.get_tdw_version(), v.get_unity_version()
                except Exception:  # noqa: BLE001 - the version is informational only
                    pass
        self._room_key = None
        self._avatar_ready = False
        self._quad_ids, self._pattern_key = [], None
        self._ceiling = False

    def _free_socket(self, socket: Any) -> None:
        socket.close(0)
        if self._context is not None:
            self._context.term()
            self._context = None

    def _stop_process(self, wait: float = 5.0) -> None:
        """Wait up to ``wait`` seconds for a launched build to exit, then terminate (and at last kill) it."""
        proc = self._process
        if proc is None:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._process_rc = proc.returncode

    @property
    def controller(self) -> Any:
        """The ``tdw`` controller (raises if closed)."""
        if self._controller is None:
            raise BackendError("the TDW backend is closed")
        return self._controller

    def _communicate(self, commands: list[dict[str, Any]], kind: str) -> list[bytes]:
        controller = self.controller
        if self.log_commands:
            entry = {"frame": self._frame + 1, "kind": kind, "commands": commands}
            self.command_log.append(entry)
            logger.debug("TDW frame %d (%s): %s", self._frame + 1, kind, json.dumps(commands))
            if self._log_path is not None:
                with self._log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")
        try:
            resp = controller.communicate(commands)
        except self._tdw["zmq"].Again as exc:
            self._abandon()
            raise TDWConnectionError(
                f"the TDW build did not answer within {self.response_timeout:g} s (response_timeout); it may have "
                "crashed or lost its display: see ~/.config/unity3d/MIT/TDW/Player.log"
            ) from exc
        if not resp:
            raise TDWConnectionError("the TDW build sent an empty reply")
        self._frame = int.from_bytes(resp[-1], byteorder="big")
        for r in resp[:-1]:
            if r[4:8] == b"quit":
                self._abandon()
                raise TDWConnectionError("the TDW build quit; see ~/.config/unity3d/MIT/TDW/Player.log")
        return resp

    def _abandon(self) -> None:
        """Drop a connection that can no longer be used (its REQ/REP state is broken)."""
        if self._controller is not None:
            self._free_socket(self._controller.socket)
            self._controller = None
        self._stop_process(wait=0.0)
        self._scene = None

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

    def _model(self, library: str, name: str) -> _Model:
        key = (library, name)
        if key not in self._models:
            librarians = self._tdw["Controller"].MODEL_LIBRARIANS
            if library not in librarians:
                librarians[library] = self._tdw["ModelLibrarian"](library)
            self._models[key] = _Model(library, librarians[library].get_record(name))
        return self._models[key]

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

    def _parse_states(self, resp: list[bytes]) -> None:
        od = self._tdw["output_data"]
        positions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        velocities: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for r in resp[:-1]:
            tag = r[4:8]
            if tag == b"tran":
                t = od.Transforms(r)
                for i in range(t.get_num()):
                    positions[t.get_id(i)] = (
                        np.array(t.get_position(i), dtype=np.float64),
                        np.array(t.get_rotation(i), dtype=np.float64),
                    )
            elif tag == b"rigi":
                rb = od.Rigidbodies(r)
                for i in range(rb.get_num()):
                    velocities[rb.get_id(i)] = (
                        np.array(rb.get_velocity(i), dtype=np.float64),
                        np.array(rb.get_angular_velocity(i), dtype=np.float64),
                    )
        if not positions:
            return
        states = {}
        for oid, offset in self._pivot_offset.items():
            if oid not in positions:
                continue
            pivot, q = positions[oid]
            v, w = velocities.get(oid, (np.zeros(3), np.zeros(3)))
            root_offset = self._parts[oid][0].offset
            if root_offset.any():  # a compound: the first part's velocity is its own centre's, not the object's
                v = v + np.cross(w, rotate(q, -root_offset))
            states[oid] = ObjectState(
                id=oid, position=pivot + rotate(q, offset), rotation=q, velocity=v, angular_velocity=w
            )
        self._states = states
        self._states_fresh = True

    def _parse_segmentation_colors(self, resp: list[bytes]) -> None:
        od = self._tdw["output_data"]
        changed = False
        for r in resp[:-1]:
            if r[4:8] == b"segm":
                seg = od.SegmentationColors(r)
                for i in range(seg.get_num()):
                    red, green, blue = (int(c) for c in seg.get_object_color(i)[:3])
                    self._seg_codes[int(seg.get_object_id(i))] = (red << 16) | (green << 8) | blue
                    changed = True
        if changed:
            self._rebuild_seg_lut()

    def _rebuild_seg_lut(self) -> None:
        self._seg_lut = {code: self._owner[tid] for tid, code in self._seg_codes.items() if tid in self._owner}

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

    def _contacts(self, resp: list[bytes]) -> list[Contact]:
        od = self._tdw["output_data"]
        owner = self._owner
        # (a, b) -> {(reporter, state): (impulse, point, normal)}; both bodies may report the same collision.
        acc: dict[tuple[int, int], dict[Any, tuple[float, np.ndarray, np.ndarray]]] = {}
        for r in resp[:-1]:
            tag = r[4:8]
            if tag == b"coll":
                c = od.Collision(r)
                collider, collidee = owner.get(c.get_collider_id()), owner.get(c.get_collidee_id())
                if collider is None or collidee is None or collider == collidee:
                    continue  # the camera's collider, or two parts of one compound
                impulse = float(np.linalg.norm(c.get_impulse()))
                point, normal = self._first_contact(c)
                # Unity's contact normal points from the other body (collidee) to the reporting one (collider).
                a, b = (collider, collidee) if collider < collidee else (collidee, collider)
                if a != collider:
                    normal = -normal
                key, sub = (a, b), c.get_state()
            elif tag == b"enco":
                e = od.EnvironmentCollision(r)
                oid = owner.get(e.get_object_id())
                if oid is None:
                    continue
                impulse = 0.0  # TDW reports no impulse for collisions with the room
                point, normal = self._first_contact(e)
                key, sub = (0, oid), (e.get_state(), e.get_floor())
                normal = -normal  # from the object (b) to the room (a)
            else:
                continue
            subs = acc.setdefault(key, {})
            if sub not in subs or impulse > subs[sub][0]:
                subs[sub] = (impulse, point, normal)
        contacts = []
        for (a, b), subs in sorted(acc.items()):
            best = max(subs.values(), key=lambda v: v[0])
            contacts.append(
                Contact(a=a, b=b, impulse=float(sum(v[0] for v in subs.values())), point=best[1], normal=best[2])
            )
        return contacts

    @staticmethod
    def _first_contact(c: Any) -> tuple[np.ndarray, np.ndarray]:
        if c.get_num_contacts() == 0:
            return np.zeros(3), np.zeros(3)
        return (np.array(c.get_contact_point(0), dtype=np.float64), np.array(c.get_contact_normal(0), dtype=np.float64))

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

    def _decode_images(
        self, resp: list[bytes], width: int, height: int, passes: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        from PIL import Image

        od = self._tdw["output_data"]
        images = None
        for r in resp[:-1]:
            if r[4:8] == b"imag":
                images = od.Images(r)
                if images.get_avatar_id() == AVATAR_ID:
                    break
        if images is None:
            raise BackendError("the TDW build sent no Images output for send_images")
        if (images.get_width(), images.get_height()) != (width, height):
            raise BackendError(
                f"asked TDW for {width}x{height} images but got {images.get_width()}x"
                f"{images.get_height()}; the screen may be smaller than the requested size"
            )
        out: dict[str, np.ndarray] = {}
        for i in range(images.get_num_passes()):
            mask = images.get_pass_mask(i)
            data = images.get_image(i)
            if mask == "_depth":
                out["depth"] = (
                    self._tdw["TDWUtils"]
                    .get_depth_values(
                        data,
                        depth_pass="_depth",
                        width=width,
                        height=height,
                        near_plane=DEPTH_NEAR,
                        far_plane=DEPTH_FAR,
                    )
                    .astype(np.float32)
                )
            elif mask in ("_img", "_id"):
                with Image.open(io.BytesIO(data.tobytes())) as img:
                    rgb = np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
                if mask == "_img":
                    out["rgb"] = rgb
                else:
                    out["segmentation"] = self._segmentation(rgb)
        missing = [p for p in passes if p not in out]
        if missing:
            raise BackendError(f"the TDW build sent no image for passes {missing}")
        return out

    def _segmentation(self, id_pass: np.ndarray) -> np.ndarray:
        codes = (id_pass[..., 0].astype(np.int64) << 16) | (id_pass[..., 1].astype(np.int64) << 8) | id_pass[..., 2]
        out = np.zeros(codes.shape, dtype=np.int32)
        for code, sid in self._seg_lut.items():
            out[codes == code] = sid
        return out

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


__all__ = ["PART_ID_BASE", "SHAPE_MODELS", "TDWBackend", "TDWConnectionError", "camera_rotation"]
