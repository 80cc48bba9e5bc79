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

The package is split by job: :mod:`.connection` (settings, the socket, the build's process, one frame of commands),
:mod:`.scene_commands` (a scene as TDW commands), :mod:`.outputs` (TDW's output data read back) and
:mod:`.backend` (:class:`TDWBackend`, which combines them). Importing it registers ``"tdw"``; the names below are
its public interface.
"""

from tdwgym.sim.backends.tdw.backend import COMMAND_LOG_FRAMES, DEFAULT_TIME_STEP, TDWBackend
from tdwgym.sim.backends.tdw.connection import (
    BUILD_ENV_VAR,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PORT,
    DEFAULT_RESPONSE_TIMEOUT,
    LAUNCH_ENV_VAR,
    LOG_ENV_VAR,
    PORT_ENV_VAR,
    TIMEOUT_ENV_VAR,
    TDWConnectionError,
    ensure_imp_module,
)
from tdwgym.sim.backends.tdw.outputs import DEPTH_FAR, DEPTH_NEAR
from tdwgym.sim.backends.tdw.scene_commands import (
    AVATAR_ID,
    CAMERA_COLLIDER_ID,
    PART_ID_BASE,
    PROP_MODEL,
    QUAD_ID_BASE,
    SHAPE_MODELS,
    camera_rotation,
)

__all__ = [
    "AVATAR_ID",
    "BUILD_ENV_VAR",
    "CAMERA_COLLIDER_ID",
    "COMMAND_LOG_FRAMES",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_RESPONSE_TIMEOUT",
    "DEFAULT_TIME_STEP",
    "DEPTH_FAR",
    "DEPTH_NEAR",
    "LAUNCH_ENV_VAR",
    "LOG_ENV_VAR",
    "PART_ID_BASE",
    "PORT_ENV_VAR",
    "PROP_MODEL",
    "QUAD_ID_BASE",
    "SHAPE_MODELS",
    "TIMEOUT_ENV_VAR",
    "TDWBackend",
    "TDWConnectionError",
    "camera_rotation",
    "ensure_imp_module",
]
