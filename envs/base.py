"""The one environment template every scenario stands on.

A scenario subclasses :class:`TDWRoomEnv` and implements :meth:`TDWRoomEnv._generate_scene` only. This class owns
the spaces, seeding, the reset/step template, frame skip (physics substeps per step), observation modes, rendering,
and the camera and push mechanics. It talks to the simulator only through :class:`tdwgym.sim.backends.Backend` and
never imports torch. It runs a little over 600 lines because the template is one class whose reset/step, spaces and
mechanics share state; the parts that are not the template live beside it (impossible events, scene drawing).

It also owns the three variant arguments every scenario takes:

* ``level`` (0 to 3): the curriculum level the generator reads as ``self.level``.
* ``split`` ("train", "test_id", "test_ood"): which bands of the scenario's :class:`~tdwgym.envs.factors.FactorSpace`
  the generator draws from (through ``self.plan``). Train and test_id scenes never coincide: their random streams
  are salted differently and every scene belongs to one of them by a hash of its content
  (:func:`~tdwgym.envs.sampling.split_bucket`).
* ``impossible`` (None or a kind of :data:`~tdwgym.envs.impossible.IMPOSSIBLE_KINDS`): a violation staged in the
  possible scene by :mod:`tdwgym.envs.impossible`. The same seed with ``impossible=None`` gives the possible twin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from tdwgym.envs.factors import LEVELS, SPLITS, FactorPlan, FactorSpace
from tdwgym.envs.impossible import IMPOSSIBLE_KINDS, add_impossible_event, apply_event
from tdwgym.envs.sampling import draw_scene
from tdwgym.sim.backends import PASSES, Backend, Contact, ObjectState, RayHit, make_backend, resolve_backend_name
from tdwgym.sim.geometry import camera_forward, camera_right
from tdwgym.sim.scene import SceneSpec

DISCRETE_ACTIONS: tuple[str, ...] = (
    "noop",
    "forward",
    "back",
    "strafe_left",
    "strafe_right",
    "turn_left",
    "turn_right",
    "look_up",
    "look_down",
    "push",
)
"""Meaning of each Discrete action index."""

# Discrete action -> (forward, strafe, turn, pitch, push) in the continuous action's units (public: scripted
# policies that choose among the discrete actions act in the continuous space through it).
DISCRETE_TO_CONTROL = np.array(
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

OBS_MODES: tuple[str, ...] = ("rgb", "rgbd", "rgb_seg", "rgbd_seg")
ACTION_TYPES: tuple[str, ...] = ("discrete", "continuous")
MAX_SEGMENTATION_ID = 1023
"""Upper bound of ids in segmentation observations."""
DEPTH_MAX = 100.0
"""Upper bound of depth observations in metres: the default camera's far plane (deeper values are clipped to it)."""
MOVED_SPEED = 0.05
"""A push "moved" its object when it changed the object's velocity by more than this (m/s)."""

INFO_LEVELS: tuple[str, ...] = ("full", "light")
"""Valid values of the ``info_level`` argument."""
MAX_RESOLUTION = 4096
"""Largest observation or render side in pixels (a 4096 x 4096 frame is already 48 MiB of RGB per pass)."""
MAX_SUBSTEPS = 240
"""Most physics substeps per env step: one simulated second at 240 Hz (the default is 8)."""
MAX_PUSH_IMPULSE = 100.0
"""Strongest full-strength push in N*s (the default is 3): 100 N*s launches a 2 kg object at the fastest speed a
scene may start with (:data:`tdwgym.sim.scene.MAX_SPEED`)."""


def keys_to_action(action_type: str = "discrete") -> dict[tuple[int, ...], Any]:
    """:data:`tdwgym.envs.window.KEY_MAP` as Gymnasium's ``play`` wants it: ``(pygame key code,)`` -> action.

    Args:
        action_type: ``"discrete"`` (action indices) or ``"continuous"`` (float32 arrays of forward, strafe, turn,
            pitch, push strength; give ``play`` ``noop=np.zeros(5, np.float32)``).
    """
    from tdwgym.envs.window import KEY_MAP, import_pygame, key_codes

    codes = key_codes(import_pygame())
    index = {key: DISCRETE_ACTIONS.index(action) for key, action in KEY_MAP.items()}
    if action_type == "discrete":
        return {(codes[key],): i for key, i in index.items()}
    return {(codes[key],): np.asarray(DISCRETE_TO_CONTROL[i], dtype=np.float32) for key, i in index.items()}


def _resolution(value: Any, name: str) -> tuple[int, int]:
    """(height, width) from an int or a pair, validated."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        hw = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        hw = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be a positive int or a (height, width) pair of positive ints, got {value!r}")
    if min(hw) <= 0 or max(hw) > MAX_RESOLUTION:
        raise ValueError(f"{name} must be in 1..{MAX_RESOLUTION} pixels per side, got {value!r}")
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
        render_mode: None, ``"rgb_array"`` (:meth:`render` returns the frame) or ``"human"`` (every reset and step
            is drawn in a pygame window at ``render_fps``; needs ``tdwgym[play]``).
        resolution: Observation size, an int or (height, width). Default 64.
        obs_mode: ``"rgb"`` (uint8 HxWx3), ``"rgbd"`` (Dict rgb + depth in metres, float32 HxWx1 in
            [0, :data:`DEPTH_MAX`]), ``"rgb_seg"`` (Dict rgb + segmentation of object ids, int32 HxWx1) or
            ``"rgbd_seg"`` (all three: what the object-centric world model reads).
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
        push_cone: Aim tolerance in degrees: when the ray along the view axis meets no movable object, a push hits
            the movable object nearest the view axis within this angle (centre to axis) that a ray from the camera
            reaches within ``push_reach``, along that ray. 0 (default): the view axis only.
        push_reward: Reward of a step whose push moved an object (``info["push"]["moved"]``). 0 (default): every
            reward is 0.0, the environments being self-supervised. A task reward for calibration: PPO rewarded only
            for pushes shows what a learner can reach within a budget (``tdwgym compare``'s ``oracle`` agent).
        level: Curriculum level 0 to 3 (what each adds: docs/scenarios.md).
        split: ``"train"``, ``"test_id"`` (training distribution, scenes disjoint from train) or ``"test_ood"``
            (at least one factor from a held-out band, or a held-out combination).
        impossible: None, or one of :data:`IMPOSSIBLE_KINDS` the scenario supports (``SUPPORTED_IMPOSSIBLE``).
        extra_passes: Render passes (of ``"rgb"``, ``"depth"``, ``"segmentation"``) to render with every
            observation beside those ``obs_mode`` needs, from the same render call; all of them are in
            :attr:`last_frames` (dataset recording uses this).
        ceiling: Whether the room has a ceiling (default). ``False`` gives the open-topped rooms of earlier
            versions; the seed draws the same scene either way.
        info_level: ``"full"`` (default): every key of the step ``info``. ``"light"``: only what training reads
            (``push``, ``objects_in_view``, ``visible_ids``, ``sim_time``, ``events``, ``camera_moved``,
            ``camera_blocked``; ``labels`` at reset), without
            the per-object states, camera pose and contacts, which are the bulk of what a subprocess vector env
            pickles per step. The env is the same either way; :meth:`full_info` builds the full keys on demand.
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}
    SCENARIO: str = "base"
    """Name of the scenario in labels."""
    FACTORS: FactorSpace = FactorSpace(factors=())
    """The scenario's factors of variation and held-out bands."""
    SUPPORTED_IMPOSSIBLE: tuple[str, ...] = ()
    """Impossible kinds the scenario can stage."""

    @classmethod
    def check_impossible(cls, kind: str | None) -> str | None:
        """``kind`` if the scenario can stage it (None passes): the one check of an impossible kind, used by the env,
        :func:`tdwgym.envs.twins.make_pairs` and ``tdwgym dataset``.

        Raises:
            ValueError: Naming the kind and the valid values (None and :attr:`SUPPORTED_IMPOSSIBLE`).
        """
        if kind is None or kind in cls.SUPPORTED_IMPOSSIBLE:
            return kind
        valid = [None, *cls.SUPPORTED_IMPOSSIBLE]
        if kind not in IMPOSSIBLE_KINDS:
            raise ValueError(
                f"unknown impossible kind {kind!r} for the {cls.SCENARIO} scenario; valid values are {valid}"
            )
        raise ValueError(f"the {cls.SCENARIO} scenario cannot stage impossible={kind!r}; valid values are {valid}")

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
        push_cone: float = 0.0,
        push_reward: float = 0.0,
        level: int = 0,
        split: str = "train",
        impossible: str | None = None,
        extra_passes: Sequence[str] = (),
        ceiling: bool = True,
        info_level: str = "full",
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; valid values are {[None, *self.metadata['render_modes']]}"
            )
        self.render_mode = render_mode
        self._window: Any = None
        if render_mode == "human":
            from tdwgym.envs.window import import_pygame

            import_pygame()  # a missing pygame is an error here, not at the first step
        self.resolution = _resolution(resolution, "resolution")
        self.render_size = _resolution(render_size, "render_size")
        self.obs_mode = _choice(obs_mode, OBS_MODES, "obs_mode")
        self.action_type = _choice(action_type, ACTION_TYPES, "action_type")
        self.backend_name = resolve_backend_name(backend)
        if (
            isinstance(substeps, bool)
            or not isinstance(substeps, (int, np.integer))
            or not 1 <= substeps <= MAX_SUBSTEPS
        ):
            raise ValueError(f"substeps must be an int in 1..{MAX_SUBSTEPS}, got {substeps!r}")
        self.substeps = int(substeps)
        for name, value in (
            ("move_step", move_step),
            ("turn_step", turn_step),
            ("pitch_step", pitch_step),
            ("push_reach", push_reach),
            ("push_impulse", push_impulse),
            ("push_cone", push_cone),
            ("push_reward", push_reward),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= pitch_limit < 90:
            raise ValueError(f"pitch_limit must be in [0, 90) degrees, got {pitch_limit!r}")
        self.move_step, self.turn_step, self.pitch_step = float(move_step), float(turn_step), float(pitch_step)
        self.pitch_limit, self.push_reach = float(pitch_limit), float(push_reach)
        if push_impulse > MAX_PUSH_IMPULSE:
            raise ValueError(f"push_impulse must be in [0, {MAX_PUSH_IMPULSE:g}] N*s, got {push_impulse!r}")
        self.push_impulse = float(push_impulse)
        if push_cone >= 90:
            raise ValueError(f"push_cone must be in [0, 90) degrees, got {push_cone!r}")
        self.push_cone = float(push_cone)
        self.push_reward = float(push_reward)
        if isinstance(level, bool) or level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; valid values are {list(LEVELS)}")
        self.level = int(level)
        self.split = _choice(split, SPLITS, "split")
        self.impossible = self.check_impossible(impossible)
        self.info_level = _choice(info_level, INFO_LEVELS, "info_level")
        if not isinstance(ceiling, (bool, np.bool_)):
            raise ValueError(f"ceiling must be True or False, got {ceiling!r}")
        self.ceiling = bool(ceiling)
        self.plan: FactorPlan | None = None
        unknown_passes = [p for p in extra_passes if p not in PASSES]
        if isinstance(extra_passes, str) or unknown_passes:
            raise ValueError(
                f"extra_passes must be a sequence of render passes from {list(PASSES)}, got {extra_passes!r}"
            )

        # the simulator starts last, once every argument is valid, so a bad argument leaks no client or process
        self.backend: Backend = make_backend(self.backend_name, **dict(backend_kwargs or {}))
        self.metadata = {**type(self).metadata, "render_fps": round(1.0 / (self.backend.timestep * self.substeps))}

        if self.action_type == "discrete":
            self.action_space: spaces.Space = spaces.Discrete(len(DISCRETE_ACTIONS))
        else:
            self.action_space = spaces.Box(
                low=np.array([-1, -1, -1, -1, 0], dtype=np.float32),
                high=np.array([1, 1, 1, 1, 1], dtype=np.float32),
                dtype=np.float32,
            )
        h, w = self.resolution
        parts = {
            "rgb": spaces.Box(0, 255, (h, w, 3), dtype=np.uint8),
            "depth": spaces.Box(0.0, DEPTH_MAX, (h, w, 1), dtype=np.float32),
            "segmentation": spaces.Box(0, MAX_SEGMENTATION_ID, (h, w, 1), dtype=np.int32),
        }
        self._obs_keys = {"rgb": ("rgb",), "rgbd": ("rgb", "depth"), "rgb_seg": ("rgb", "segmentation")}.get(
            self.obs_mode, ("rgb", "depth", "segmentation")
        )
        self.observation_space: spaces.Space = (
            parts["rgb"] if self.obs_mode == "rgb" else spaces.Dict({k: parts[k] for k in self._obs_keys})
        )
        # segmentation is always rendered: it costs next to nothing and tells which objects are in view
        needed = {"rgb", "segmentation", *extra_passes, *self._obs_keys}
        self._passes = tuple(p for p in PASSES if p in needed)
        self.last_frames: dict[str, np.ndarray] = {}
        """Every pass rendered for the latest observation (at ``resolution``)."""
        self._in_view: list[int] = []

        self.scene: SceneSpec | None = None
        self._cam_pos = np.zeros(3)
        self._yaw = 0.0
        self._pitch = 0.0
        self._steps = 0
        self._movable_ids: set[int] = set()

    # -- the scenario hook ---------------------------------------------------------------------------------------
    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        """Draw this episode's scene using only ``rng``, ``self.level`` and ``self.plan`` (factor draws)."""
        raise NotImplementedError

    # -- scene sampling -------------------------------------------------------------------------------------------
    def sample_scene(self, seed: int | None = None, rng: np.random.Generator | None = None) -> SceneSpec:
        """The scene ``reset(seed=seed)`` starts from, before any impossible event is added (no simulation).

        Args:
            seed: As passed to :meth:`reset`.
            rng: Or the generator :meth:`reset` would use (``self.np_random``); exactly one of the two.

        Raises:
            ~tdwgym.envs.sampling.SceneGenerationError: When no scene of this split could be drawn in 100
                attempts.
        """
        return draw_scene(self, seed=seed, rng=rng)

    def set_camera_pose(self, position: Any, yaw: float, pitch: float) -> None:
        """Place the camera directly (scripted cameras, e.g. for matched impossible/possible clips).

        Raises:
            ValueError: A position that is not 3 finite numbers or lies outside the room (a
                :class:`~tdwgym.sim.scene.SceneError` naming the valid ranges), or angles that are not finite; the
                camera stays where it was.
        """
        try:
            pos = np.array(position, dtype=np.float64)
            yaw, pitch = float(yaw), float(pitch)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"set_camera_pose needs a position of 3 numbers and numeric yaw, pitch: {exc}") from exc
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ValueError(f"set_camera_pose: position must be 3 finite numbers (metres), got {position!r}")
        if not (math.isfinite(yaw) and math.isfinite(pitch)):
            raise ValueError(f"set_camera_pose: yaw and pitch must be finite degrees, got yaw={yaw!r} pitch={pitch!r}")
        if self.scene is None:
            raise ResetNeeded("call reset() before set_camera_pose()")
        self.scene.room.check_inside(pos, "set_camera_pose: position")
        self._cam_pos = pos
        self._yaw, self._pitch = float(yaw) % 360.0, float(np.clip(pitch, -self.pitch_limit, self.pitch_limit))
        self.backend.set_camera(self._cam_pos, self._yaw, self._pitch)

    # -- Gymnasium API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"scene"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; valid options are ['scene']")
        scene = options.get("scene")
        if scene is None:
            scene = self.sample_scene(rng=self.np_random)
            if self.impossible is not None:
                scene = self.add_impossible_event(scene, self.impossible)
        elif not isinstance(scene, SceneSpec):
            raise TypeError(f"options['scene'] must be a tdwgym.sim.scene.SceneSpec, got {type(scene).__name__}")
        self.backend.load(scene)
        self.scene = scene
        self._movable_ids = {o.id for o in scene.objects}
        cam = scene.camera
        self._cam_pos = np.array(cam.position, dtype=np.float64)
        self._yaw, self._pitch = cam.yaw, float(np.clip(cam.pitch, -self.pitch_limit, self.pitch_limit))
        self.backend.set_camera(self._cam_pos, self._yaw, self._pitch)
        self._steps = 0
        obs = self._observe()
        push = {"attempted": False, "hit": False, "object_id": None, "moved": False}
        self._last_contacts = []
        info = self._info(self.backend.object_states(), [], push)
        # the step's keys too (nothing happened yet), so reset and step info hold the same keys; labels on top
        info.update(events=[], camera_moved=False, camera_blocked=False, labels=scene.labels)
        if self.render_mode == "human":
            self._show()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self.scene is None:
            raise ResetNeeded("call reset() before step()")
        forward, strafe, turn, pitch, push = self._control(action)
        pose_before = (self._cam_pos.copy(), self._yaw, self._pitch)

        self._yaw = (self._yaw + turn * self.turn_step) % 360.0
        self._pitch = float(np.clip(self._pitch + pitch * self.pitch_step, -self.pitch_limit, self.pitch_limit))
        if forward or strafe:
            self._move_camera(forward, strafe)
        self.backend.set_camera(self._cam_pos, self._yaw, self._pitch)

        # scripted events first, so a push acts on the scene as this step shows it (never on a removed object)
        applied = []
        for event in self.scene.events:
            if event.frame == self._steps + 1:
                apply_event(self, event)
                applied.append(event.kind)

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
        self._last_contacts = contacts
        info = self._info(states, contacts, push_info)
        info["events"] = applied
        info["camera_moved"] = not (
            np.array_equal(pose_before[0], self._cam_pos) and pose_before[1:] == (self._yaw, self._pitch)
        )
        # asked to move, turn or nod but held in place (a wall, an object, the pitch limit)
        info["camera_blocked"] = bool(forward or strafe or turn or pitch) and not info["camera_moved"]
        reward = self.push_reward if push_info["moved"] else 0.0
        obs = self._observe()
        if self.render_mode == "human":
            self._show()
        return obs, reward, False, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to gym.make")
            return None
        if self.scene is None:
            raise ResetNeeded("call reset() before render()")
        if self.render_mode == "human":
            self._show()
            return None
        h, w = self.render_size
        return self.backend.render(w, h, ("rgb",))["rgb"]

    def get_keys_to_action(self) -> dict[tuple[int, ...], Any]:
        """The keyboard map of ``gymnasium.utils.play.play`` (pygame key codes -> action; W/S/A/D move, the arrows
        turn and nod, space pushes): :func:`keys_to_action`. Needs pygame."""
        return keys_to_action(self.action_type)

    def _show(self) -> None:
        """Draw the current view in the human window (opened on first use)."""
        from tdwgym.envs.window import HumanWindow

        if self._window is None:
            self._window = HumanWindow(f"tdwgym {self.SCENARIO}", self.metadata["render_fps"])
        h, w = self.render_size
        self._window.show(self.backend.render(w, h, ("rgb",))["rgb"])

    def close(self) -> None:
        window = getattr(self, "_window", None)
        if window is not None:
            window.close()
            self._window = None
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
        super().close()

    # -- scripted events ------------------------------------------------------------------------------------------
    def add_impossible_event(self, scene: SceneSpec, kind: str) -> SceneSpec:
        """``scene`` with the events of impossible ``kind`` added, timed by a dry run of its physics in this env
        (:func:`tdwgym.envs.impossible.add_impossible_event`)."""
        return add_impossible_event(self, scene, kind)

    # -- mechanics ------------------------------------------------------------------------------------------------
    def _control(self, action: Any) -> tuple[float, float, float, float, float]:
        """Validate ``action`` and convert it to (forward, strafe, turn, pitch, push strength)."""
        if self.action_type == "discrete":
            a = np.asarray(action) if isinstance(action, np.ndarray) else action
            if isinstance(a, np.ndarray):
                if a.shape not in ((), (1,)) or a.dtype.kind not in "iu":
                    raise ValueError(
                        f"invalid action {action!r} (shape {a.shape}, dtype {a.dtype}) for action space "
                        f"{self.action_space}: expected one integer in [0, {self.action_space.n})"
                    )
                a = int(a.reshape(()))
            elif isinstance(a, bool) or not isinstance(a, (int, np.integer)):
                raise ValueError(
                    f"invalid action {action!r} of type {type(action).__name__} for action space "
                    f"{self.action_space}: expected an integer in [0, {self.action_space.n})"
                )
            if not 0 <= int(a) < self.action_space.n:
                raise ValueError(
                    f"action {a} is outside the action space {self.action_space}: valid actions are "
                    f"0..{self.action_space.n - 1} ({', '.join(DISCRETE_ACTIONS)})"
                )
            return tuple(float(v) for v in DISCRETE_TO_CONTROL[int(a)])  # type: ignore[return-value]
        try:
            arr = np.asarray(action)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad action
            raise ValueError(f"invalid action {action!r} for action space {self.action_space}") from exc
        space = self.action_space
        if arr.shape != space.shape or arr.dtype.kind not in "fiu":
            raise ValueError(
                f"invalid action {action!r} (shape {arr.shape}, dtype {arr.dtype}) for action space "
                f"{space}: expected a real array of shape {space.shape} "
                "(forward, strafe, turn, pitch, push)"
            )
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action {arr.tolist()} contains NaN or inf; action space is {space}")
        if np.any(arr < space.low) or np.any(arr > space.high):
            raise ValueError(
                f"action {arr.tolist()} is outside the action space {space}: bounds are "
                f"low={space.low.tolist()} high={space.high.tolist()}"
            )
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
        if (hit is None or hit.id not in self._movable_ids) and self.push_cone > 0:
            hit, direction = self._aimed_hit(direction)
        if hit is None or hit.id not in self._movable_ids:
            return None
        self.backend.push(hit.id, hit.point, direction * self.push_impulse * strength)
        return hit.id

    def _aimed_hit(self, axis: np.ndarray) -> tuple[RayHit | None, np.ndarray]:
        """``push_cone``: the ray hit on the movable object nearest ``axis`` within the cone, and its direction."""
        cos_cone = math.cos(math.radians(self.push_cone))
        candidates = []
        for oid, state in self.backend.object_states().items():
            offset = np.asarray(state.position, dtype=np.float64) - self._cam_pos
            dist = float(np.linalg.norm(offset))
            if oid in self._movable_ids and dist > 1e-9:
                cos = float(offset @ axis) / dist
                if cos >= cos_cone:
                    candidates.append((-cos, oid, offset / dist))
        for _, oid, direction in sorted(candidates, key=lambda c: (c[0], c[1])):
            hit = self.backend.ray_cast(self._cam_pos, direction, self.push_reach)
            if hit is not None and hit.id == oid:
                return hit, direction
        return None, axis

    # -- state for scripted policies ---------------------------------------------------------------------------
    @property
    def camera_pose(self) -> tuple[np.ndarray, float, float]:
        """The camera's position (a copy, metres), yaw and pitch (degrees) now."""
        return self._cam_pos.copy(), self._yaw, self._pitch

    def movable_positions(self) -> dict[int, np.ndarray]:
        """Positions of the objects a push can move, by scene id (empty before :meth:`reset`)."""
        if self.scene is None:
            return {}
        states = self.backend.object_states()
        return {
            oid: np.asarray(states[oid].position, dtype=np.float64)
            for oid in sorted(self._movable_ids)
            if oid in states
        }

    # -- observations and info --------------------------------------------------------------------------------
    def _observe(self) -> Any:
        """Render the observation; note which movable objects it shows (the segmentation pass costs ~nothing)."""
        h, w = self.resolution
        frames = self.last_frames = self.backend.render(w, h, self._passes)
        seg = frames["segmentation"]
        counts = np.bincount(seg.ravel(), minlength=1) if seg.size else np.zeros(1, np.int64)
        assert self.scene is not None
        self._in_view = [o.id for o in self.scene.objects if o.id < len(counts) and counts[o.id] > 0]
        if self.obs_mode == "rgb":
            return frames["rgb"]
        # a channel axis and finite bounds: image spaces to SB3 and Gymnasium's wrappers
        out = {"rgb": frames["rgb"]}
        if "depth" in self._obs_keys:
            out["depth"] = np.minimum(frames["depth"], DEPTH_MAX)[..., None]
        if "segmentation" in self._obs_keys:
            out["segmentation"] = seg.astype(np.int32, copy=False)[..., None]
        return out

    def _info(self, states: dict[int, ObjectState], contacts: list[Contact], push: dict[str, Any]) -> dict:
        info = {
            "push": push,
            "objects_in_view": len(self._in_view),
            "visible_ids": list(self._in_view),
            "sim_time": self._steps * self.substeps * self.backend.timestep,
        }
        if self.info_level == "full":
            info.update(self._full_keys(states, contacts))
        return info

    def _full_keys(self, states: dict[int, ObjectState], contacts: list[Contact]) -> dict:
        return {
            "objects": {
                oid: {
                    "position": s.position,
                    "rotation": s.rotation,
                    "velocity": s.velocity,
                    "angular_velocity": s.angular_velocity,
                }
                for oid, s in states.items()
            },
            "camera": {"position": self._cam_pos.copy(), "yaw": self._yaw, "pitch": self._pitch},
            "contacts": [
                {"a": c.a, "b": c.b, "impulse": c.impulse, "point": c.point, "normal": c.normal} for c in contacts
            ],
        }

    def full_info(self) -> dict:
        """The keys ``info_level="light"`` leaves out of ``info`` (``objects``, ``camera``), for the current state;
        ``contacts`` holds the contacts of the last physics step."""
        return self._full_keys(self.backend.object_states(), getattr(self, "_last_contacts", []))
