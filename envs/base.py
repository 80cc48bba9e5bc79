"""The one environment template every scenario stands on.

A scenario subclasses :class:`TDWRoomEnv` and implements :meth:`TDWRoomEnv._generate_scene` only. This class owns
the spaces, seeding, the reset/step template, frame skip (physics substeps per step), observation modes, rendering,
and the camera and push mechanics. It talks to the simulator only through :class:`tdwgym.backends.Backend` and
never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from tdwgym.backends import Backend, Contact, ObjectState, make_backend, resolve_backend_name
from tdwgym.geometry import camera_forward, camera_right
from tdwgym.scene import SceneSpec

DISCRETE_ACTIONS: tuple[str, ...] = (
    "noop", "forward", "back", "strafe_left", "strafe_right", "turn_left", "turn_right", "look_up", "look_down",
    "push",
)
"""Meaning of each Discrete action index."""

# Discrete action -> (forward, strafe, turn, pitch, push) in the continuous action's units.
_DISCRETE_TO_CONTROL = np.array(
    [
        [0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [-1, 0, 0, 0, 0],
        [0, -1, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, -1, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, -1, 0],
        [0, 0, 0, 0, 1],
    ],
    dtype=np.float64,
)

OBS_MODES: tuple[str, ...] = ("rgb", "rgbd", "rgb_seg")
ACTION_TYPES: tuple[str, ...] = ("discrete", "continuous")
MAX_SEGMENTATION_ID = 1023
"""Upper bound of ids in segmentation observations."""
MOVED_SPEED = 0.05
"""A push "moved" its object when it changed the object's velocity by more than this (m/s)."""

T = TypeVar("T")


class SceneGenerationError(RuntimeError):
    """A scene generator ran out of attempts (objects could not be placed without overlap)."""


def sample_until(
    rng: np.random.Generator, draw: Callable[[np.random.Generator], T], accept: Callable[[T], bool],
    attempts: int = 200, what: str = "placement",
) -> T:
    """Bounded rejection sampling: ``draw`` until ``accept``, at most ``attempts`` times.

    Raises:
        SceneGenerationError: After the last failed attempt.
    """
    for _ in range(attempts):
        candidate = draw(rng)
        if accept(candidate):
            return candidate
    raise SceneGenerationError(
        f"could not find a valid {what} in {attempts} attempts; the room may be too small for the objects asked for"
    )


def _resolution(value: Any, name: str) -> tuple[int, int]:
    """(height, width) from an int or a pair, validated."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        hw = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        hw = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be a positive int or a (height, width) pair of positive ints, got {value!r}")
    if min(hw) <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return hw


def _choice(value: Any, valid: tuple[str, ...], name: str) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid values are {list(valid)}")
    return value


class TDWRoomEnv(gym.Env):
    """Base class of the ``TDWRoom-*`` environments; scenarios implement :meth:`_generate_scene`.

    See a scenario's docstring (e.g. :class:`tdwgym.envs.occlusion.OcclusionEnv`) for the full specification of
    spaces, rewards and episode ends.

    Args:
        render_mode: None or ``"rgb_array"``.
        resolution: Observation size, an int or (height, width). Default 64.
        obs_mode: ``"rgb"`` (uint8 HxWx3), ``"rgbd"`` (Dict rgb + depth in metres) or ``"rgb_seg"`` (Dict rgb +
            segmentation of object ids).
        action_type: ``"discrete"`` (10 actions) or ``"continuous"`` (Box: forward, strafe, turn, pitch, push).
        backend: ``"bullet"`` or ``"tdw"``; default ``$TDWGYM_BACKEND`` or ``"bullet"``.
        backend_kwargs: Extra keyword arguments for the backend's constructor.
        render_size: Size of :meth:`render` frames, an int or (height, width). Default 256.
        substeps: Physics substeps at 240 Hz per env step (the frame skip). Default 8, i.e. 30 steps per
            simulated second.
        move_step: Metres the camera moves per step at full forward or strafe.
        turn_step: Degrees of yaw per step at full turn.
        pitch_step: Degrees of pitch per step at full pitch.
        pitch_limit: Largest absolute pitch in degrees.
        push_reach: Longest distance in metres at which a push hits an object.
        push_impulse: Impulse in N*s of a full-strength push.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        resolution: int | tuple[int, int] = 64,
        obs_mode: str = "rgb",
        action_type: str = "discrete",
        backend: str | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
        render_size: int | tuple[int, int] = 256,
        substeps: int = 8,
        move_step: float = 0.15,
        turn_step: float = 10.0,
        pitch_step: float = 5.0,
        pitch_limit: float = 60.0,
        push_reach: float = 2.5,
        push_impulse: float = 3.0,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; valid values are "
                             f"{[None, *self.metadata['render_modes']]}")
        self.render_mode = render_mode
        self.resolution = _resolution(resolution, "resolution")
        self.render_size = _resolution(render_size, "render_size")
        self.obs_mode = _choice(obs_mode, OBS_MODES, "obs_mode")
        self.action_type = _choice(action_type, ACTION_TYPES, "action_type")
        self.backend_name = resolve_backend_name(backend)
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
            raise ValueError(f"substeps must be an int >= 1, got {substeps!r}")
        self.substeps = int(substeps)
        for name, value in (("move_step", move_step), ("turn_step", turn_step), ("pitch_step", pitch_step),
                            ("push_reach", push_reach), ("push_impulse", push_impulse)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= pitch_limit < 90:
            raise ValueError(f"pitch_limit must be in [0, 90) degrees, got {pitch_limit!r}")
        self.move_step, self.turn_step, self.pitch_step = float(move_step), float(turn_step), float(pitch_step)
        self.pitch_limit, self.push_reach = float(pitch_limit), float(push_reach)
        self.push_impulse = float(push_impulse)

        self.backend: Backend = make_backend(self.backend_name, **dict(backend_kwargs or {}))
        self.metadata = {**type(self).metadata, "render_fps": round(1.0 / (self.backend.timestep * self.substeps))}

        if self.action_type == "discrete":
            self.action_space: spaces.Space = spaces.Discrete(len(DISCRETE_ACTIONS))
        else:
            self.action_space = spaces.Box(
                low=np.array([-1, -1, -1, -1, 0], dtype=np.float32),
                high=np.array([1, 1, 1, 1, 1], dtype=np.float32), dtype=np.float32,
            )
        h, w = self.resolution
        rgb = spaces.Box(0, 255, (h, w, 3), dtype=np.uint8)
        if self.obs_mode == "rgb":
            self.observation_space: spaces.Space = rgb
        elif self.obs_mode == "rgbd":
            self.observation_space = spaces.Dict(
                {"rgb": rgb, "depth": spaces.Box(0.0, np.inf, (h, w), dtype=np.float32)}
            )
        else:
            self.observation_space = spaces.Dict(
                {"rgb": rgb, "segmentation": spaces.Box(0, MAX_SEGMENTATION_ID, (h, w), dtype=np.int32)}
            )
        self._passes = {"rgb": ("rgb", "segmentation"), "rgbd": ("rgb", "depth", "segmentation"),
                        "rgb_seg": ("rgb", "segmentation")}[self.obs_mode]
        self._in_view: list[int] = []

        self.scene: SceneSpec | None = None
        self._cam_pos = np.zeros(3)
        self._yaw = 0.0
        self._pitch = 0.0
        self._steps = 0

    # -- the scenario hook ---------------------------------------------------------------------------------------
    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        """Draw this episode's scene using only ``rng``."""
        raise NotImplementedError

    # -- Gymnasium API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"scene"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; valid options are ['scene']")
        scene = options.get("scene")
        if scene is None:
            scene = self._generate_scene(self.np_random)
        elif not isinstance(scene, SceneSpec):
            raise TypeError(f"options['scene'] must be a tdwgym.scene.SceneSpec, got {type(scene).__name__}")
        self.backend.load(scene)
        self.scene = scene
        cam = scene.camera
        self._cam_pos = np.array(cam.position, dtype=np.float64)
        self._yaw, self._pitch = cam.yaw, float(np.clip(cam.pitch, -self.pitch_limit, self.pitch_limit))
        self.backend.set_camera(self._cam_pos, self._yaw, self._pitch)
        self._steps = 0
        obs = self._observe()
        push = {"attempted": False, "hit": False, "object_id": None, "moved": False}
        return obs, self._info(self.backend.object_states(), [], push)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self.scene is None:
            raise ResetNeeded("call reset() before step()")
        forward, strafe, turn, pitch, push = self._control(action)

        self._yaw = (self._yaw + turn * self.turn_step) % 360.0
        self._pitch = float(np.clip(self._pitch + pitch * self.pitch_step, -self.pitch_limit, self.pitch_limit))
        if forward or strafe:
            self._move_camera(forward, strafe)
        self.backend.set_camera(self._cam_pos, self._yaw, self._pitch)

        push_info: dict[str, Any] = {"attempted": push > 0, "hit": False, "object_id": None, "moved": False}
        before: dict[int, ObjectState] = {}
        if push > 0:
            hit_id = self._push(push)
            if hit_id is not None:
                push_info["hit"], push_info["object_id"] = True, hit_id
                before = self.backend.object_states()

        contacts = self.backend.step(self.substeps)
        self._steps += 1
        states = self.backend.object_states()
        if push_info["hit"]:
            oid = push_info["object_id"]
            dv = np.linalg.norm(states[oid].velocity - before[oid].velocity)
            push_info["moved"] = bool(dv > MOVED_SPEED)
        return self._observe(), 0.0, False, False, self._info(states, contacts, push_info)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to gym.make")
            return None
        if self.scene is None:
            raise ResetNeeded("call reset() before render()")
        h, w = self.render_size
        return self.backend.render(w, h, ("rgb",))["rgb"]

    def close(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
        super().close()

    # -- mechanics ------------------------------------------------------------------------------------------------
    def _control(self, action: Any) -> tuple[float, float, float, float, float]:
        """Validate ``action`` and convert it to (forward, strafe, turn, pitch, push strength)."""
        if self.action_type == "discrete":
            a = np.asarray(action) if isinstance(action, np.ndarray) else action
            if isinstance(a, np.ndarray):
                if a.shape not in ((), (1,)) or a.dtype.kind not in "iu":
                    raise ValueError(f"invalid action {action!r} (shape {a.shape}, dtype {a.dtype}) for action space "
                                     f"{self.action_space}: expected one integer in [0, {self.action_space.n})")
                a = int(a.reshape(()))
            elif isinstance(a, bool) or not isinstance(a, (int, np.integer)):
                raise ValueError(f"invalid action {action!r} of type {type(action).__name__} for action space "
                                 f"{self.action_space}: expected an integer in [0, {self.action_space.n})")
            if not 0 <= int(a) < self.action_space.n:
                raise ValueError(f"action {a} is outside the action space {self.action_space}: valid actions are "
                                 f"0..{self.action_space.n - 1} ({', '.join(DISCRETE_ACTIONS)})")
            return tuple(float(v) for v in _DISCRETE_TO_CONTROL[int(a)])  # type: ignore[return-value]
        try:
            arr = np.asarray(action)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad action
            raise ValueError(f"invalid action {action!r} for action space {self.action_space}") from exc
        space = self.action_space
        if arr.shape != space.shape or arr.dtype.kind not in "fiu":
            raise ValueError(f"invalid action {action!r} (shape {arr.shape}, dtype {arr.dtype}) for action space "
                             f"{space}: expected a real array of shape {space.shape} "
                             "(forward, strafe, turn, pitch, push)")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action {arr.tolist()} contains NaN or inf; action space is {space}")
        if np.any(arr < space.low) or np.any(arr > space.high):
            raise ValueError(f"action {arr.tolist()} is outside the action space {space}: bounds are "
                             f"low={space.low.tolist()} high={space.high.tolist()}")
        return tuple(float(v) for v in arr)  # type: ignore[return-value]

    def _move_camera(self, forward: float, strafe: float) -> None:
        """Move horizontally; stay inside the walls and refuse moves into any object or prop."""
        assert self.scene is not None
        room, radius = self.scene.room, self.scene.camera.radius
        yaw = self._yaw
        heading = np.array([math.sin(math.radians(yaw)), 0.0, math.cos(math.radians(yaw))])
        target = self._cam_pos + self.move_step * (forward * heading + strafe * camera_right(yaw))
        margin = radius + 0.05
        target[0] = np.clip(target[0], -room.width / 2 + margin, room.width / 2 - margin)
        target[2] = np.clip(target[2], -room.length / 2 + margin, room.length / 2 - margin)
        if radius > 0 and any(i != 0 for i in self.backend.overlapping(target, radius)):
            return
        self._cam_pos = target

    def _push(self, strength: float) -> int | None:
        """Cast a ray from the camera centre; push the movable object it hits within reach. Returns its id."""
        assert self.scene is not None
        direction = camera_forward(self._yaw, self._pitch)
        hit = self.backend.ray_cast(self._cam_pos, direction, self.push_reach)
        if hit is None or hit.id not in {o.id for o in self.scene.objects}:
            return None
        self.backend.push(hit.id, hit.point, direction * self.push_impulse * strength)
        return hit.id

    # -- observations and info --------------------------------------------------------------------------------
    def _observe(self) -> Any:
        """Render the observation; note which movable objects it shows (the segmentation pass costs ~nothing)."""
        h, w = self.resolution
        frames = self.backend.render(w, h, self._passes)
        seg = frames["segmentation"]
        counts = np.bincount(seg.ravel(), minlength=1) if seg.size else np.zeros(1, np.int64)
        assert self.scene is not None
        self._in_view = [o.id for o in self.scene.objects if o.id < len(counts) and counts[o.id] > 0]
        if self.obs_mode == "rgb":
            return frames["rgb"]
        if self.obs_mode == "rgbd":
            return {"rgb": frames["rgb"], "depth": frames["depth"]}
        return {"rgb": frames["rgb"], "segmentation": seg.astype(np.int32, copy=False)}

    def _info(self, states: dict[int, ObjectState], contacts: list[Contact], push: dict[str, Any]) -> dict:
        return {
            "objects": {
                oid: {"position": s.position, "rotation": s.rotation, "velocity": s.velocity,
                      "angular_velocity": s.angular_velocity}
                for oid, s in states.items()
            },
            "camera": {"position": self._cam_pos.copy(), "yaw": self._yaw, "pitch": self._pitch},
            "contacts": [
                {"a": c.a, "b": c.b, "impulse": c.impulse, "point": c.point, "normal": c.normal} for c in contacts
            ],
            "push": push,
            "objects_in_view": len(self._in_view),
            "visible_ids": list(self._in_view),
            "sim_time": self._steps * self.substeps * self.backend.timestep,
        }
