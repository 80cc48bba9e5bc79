"""The built-in policies and policy loading, shared by ``tdwgym record``, ``tdwgym dataset`` and the evaluation.

A policy maps an observation to an action and has a per-episode :meth:`Policy.reset`. ``reset(seed)`` makes the
actions that follow a function of ``seed`` (and the observations) only, so a dataset episode is reproducible from
its policy seed; ``reset()`` without a seed starts an episode and keeps the random stream going.

Built-in names (:data:`BUILTIN_POLICIES`):

- ``random``: uniform samples from the action space, seeded by ``reset(seed)``.
- ``orbit``: a scripted camera orbit. The camera strafes right and turns left so that it circles the point
  :data:`ORBIT_RADIUS` metres ahead of where the episode starts, always looking at it (discrete and continuous
  action spaces).
- ``static``: no-ops (the camera stays where it is).
- ``seek``: a scripted pusher. It turns, strafes and nods towards the nearest movable object, walks up to it and
  pushes it (it reads the camera pose and object positions from the env; discrete and continuous action spaces).
  It makes interaction-rich recordings, and it is the policy that knows how to push in ``tdwgym audit``.

Any other spec is a stored policy: a stable-baselines3 PPO ``.zip`` or a ``tdwgym train`` run folder (its latest
agent), read by a loader registered here (:func:`register_policy_loader`; ``tdwgym.agents.sb3_agents`` provides
``sb3``, found through the ``tdwgym.policy_loaders`` entry point). This module needs neither torch nor
stable-baselines3.

    policy = load_policy("orbit", env)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    obs, *_ = env.step(policy(obs))
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tdwgym.envs.base import DISCRETE_ACTIONS, DISCRETE_TO_CONTROL

__all__ = [
    "TRUST_PICKLES_ENV",
    "BUILTIN_POLICIES",
    "ORBIT_RADIUS",
    "POLICY_LOADERS",
    "OrbitPolicy",
    "Policy",
    "PolicyLoader",
    "RandomPolicy",
    "SeekPolicy",
    "StaticPolicy",
    "load_policy",
    "make_policy",
    "policy_env_kwargs",
    "policy_loaders",
    "register_policy_loader",
    "seek_action",
]

BUILTIN_POLICIES: tuple[str, ...] = ("random", "orbit", "static", "seek")
"""Names of the built-in policies; any other spec is an SB3 ``.zip`` or a run folder."""

ORBIT_RADIUS = 2.5
"""Metres from the camera to the point the ``orbit`` policy circles: about the distance to the scene centre."""

_STRAFE_RIGHT = DISCRETE_ACTIONS.index("strafe_right")
_TURN_LEFT = DISCRETE_ACTIONS.index("turn_left")
SEEK_REACH = 0.9
"""The ``seek`` policy pushes once its target is within this fraction of the env's ``push_reach``."""


def seek_action(
    position: np.ndarray,
    yaw: float,
    pitch: float,
    targets: dict[int, np.ndarray],
    *,
    turn_step: float = 10.0,
    pitch_step: float = 5.0,
    move_step: float = 0.15,
    reach: float = 2.25,
) -> int:
    """One step of the scripted pusher: the discrete action that brings the nearest target under the view axis.

    In order: turn until the target's bearing is within half a turn step, strafe until it is within half a move
    step of the view axis sideways, nod until its elevation is within 0.6 of a pitch step, walk forward until it
    is within ``reach``, then push. With no target it turns left (searching).

    Args:
        position: Camera position (metres).
        yaw: Camera yaw in degrees (0 looks along +z, 90 along +x).
        pitch: Camera pitch in degrees (positive looks up).
        targets: Positions of the objects it may push, by id; the nearest one is the target.
        turn_step: The env's degrees per turn.
        pitch_step: The env's degrees per nod.
        move_step: The env's metres per step.
        reach: Distance in metres (camera to target centre) under which it pushes.

    Returns:
        An index into :data:`tdwgym.envs.base.DISCRETE_ACTIONS`.
    """
    if not targets:
        return _TURN_LEFT
    position = np.asarray(position, dtype=np.float64)
    offsets = sorted((float(np.linalg.norm(np.asarray(p) - position)), oid) for oid, p in targets.items())
    d = np.asarray(targets[offsets[0][1]], dtype=np.float64) - position
    bearing = (math.degrees(math.atan2(d[0], d[2])) - yaw + 180.0) % 360.0 - 180.0
    if abs(bearing) > 0.55 * turn_step:
        return DISCRETE_ACTIONS.index("turn_right" if bearing > 0 else "turn_left")
    y = math.radians(yaw)
    sideways = d[0] * math.cos(y) - d[2] * math.sin(y)  # along camera_right(yaw)
    if abs(sideways) > 0.55 * move_step:
        return DISCRETE_ACTIONS.index("strafe_right" if sideways > 0 else "strafe_left")
    elevation = math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))
    if abs(elevation - pitch) > 0.6 * pitch_step:
        return DISCRETE_ACTIONS.index("look_up" if elevation > pitch else "look_down")
    if offsets[0][0] > reach:
        return DISCRETE_ACTIONS.index("forward")
    return DISCRETE_ACTIONS.index("push")


def _require_tdwroom_actions(space: spaces.Space, policy: str) -> None:
    """Raise TypeError unless ``space`` is a TDWRoom action space (the 10 discrete actions or the 5-vector)."""
    if not (
        (isinstance(space, spaces.Discrete) and space.n == len(DISCRETE_ACTIONS))
        or (isinstance(space, spaces.Box) and space.shape == (5,))
    ):
        raise TypeError(f"the {policy} policy needs a TDWRoom action space, got {space}")


class Policy:
    """Chooses actions in one env; call :meth:`reset` at every episode start.

    Args:
        env: The env the policy acts in (wrapped or not): its ``action_space`` bounds the actions.
        name: Short label used in file names (``random``, ``orbit``, ``agent``, ...).
    """

    def __init__(self, env: gym.Env, name: str) -> None:
        self.name = name
        self.action_space = env.action_space
        self.unwrapped = env.unwrapped

    def reset(self, seed: int | None = None) -> None:
        """Start an episode.

        Args:
            seed: Reseed the policy's randomness; None keeps its stream going (a later episode of one recording).
        """

    def act(self, obs: Any) -> Any:
        """The action for observation ``obs``."""
        raise NotImplementedError

    def __call__(self, obs: Any) -> Any:
        return self.act(obs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, action_space={self.action_space})"


class RandomPolicy(Policy):
    """Uniform samples from the action space, seeded through ``action_space.seed`` by :meth:`reset`."""

    def __init__(self, env: gym.Env, name: str = "random") -> None:
        super().__init__(env, name)

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; ``seed`` reseeds the action space's generator."""
        if seed is not None:
            self.action_space.seed(seed)

    def act(self, obs: Any) -> Any:
        """A uniform sample from the action space."""
        return self.action_space.sample()


class StaticPolicy(Policy):
    """The no-op: discrete action 0 (``noop``), or a zero control vector."""

    def __init__(self, env: gym.Env, name: str = "static") -> None:
        super().__init__(env, name)

    def act(self, obs: Any) -> Any:
        """The no-op action."""
        if isinstance(self.action_space, spaces.Discrete):
            return int(self.action_space.start)
        return np.zeros(self.action_space.shape, dtype=self.action_space.dtype)


class OrbitPolicy(Policy):
    """A scripted camera orbit: strafe right and turn left so the camera circles a point ahead, looking at it.

    The circled point is :data:`ORBIT_RADIUS` metres ahead of the camera at the episode's start. A continuous
    action strafes at full speed and turns by the matching angle every step; with discrete actions the policy
    strafes, and turns left instead whenever the turn owed for the distance strafed reaches half a turn step, so
    the point stays within about half a turn step of the image centre. Walls and objects that block the camera
    make it drift.

    Args:
        env: A ``TDWRoom-*`` env (its ``move_step`` and ``turn_step`` set the turn per strafe).
        name: Label.
        radius: Orbit radius in metres.

    Raises:
        TypeError: The env has no ``move_step``/``turn_step``, or its action space is neither the 10 discrete
            actions nor the 5-vector control.
    """

    def __init__(self, env: gym.Env, name: str = "orbit", radius: float = ORBIT_RADIUS) -> None:
        super().__init__(env, name)
        move_step = getattr(self.unwrapped, "move_step", None)
        turn_step = getattr(self.unwrapped, "turn_step", None)
        if move_step is None or turn_step is None:
            raise TypeError(f"the orbit policy needs a TDWRoom env (move_step, turn_step); got {self.unwrapped}")
        _require_tdwroom_actions(self.action_space, "orbit")
        self.turn_step = float(turn_step)
        self.degrees_per_strafe = math.degrees(float(move_step) / float(radius))
        self._owed = 0.0  # degrees of turn owed for the distance strafed so far

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: the orbit's centre is again ``radius`` metres ahead of the camera."""
        self._owed = 0.0

    def act(self, obs: Any) -> Any:
        """The next step of the orbit."""
        if isinstance(self.action_space, spaces.Box):
            turn = -min(1.0, self.degrees_per_strafe / self.turn_step) if self.turn_step else 0.0
            return np.array([0.0, 1.0, turn, 0.0, 0.0], dtype=self.action_space.dtype)
        if self.turn_step and self._owed >= self.turn_step / 2:
            self._owed -= self.turn_step
            return _TURN_LEFT
        self._owed += self.degrees_per_strafe
        return _STRAFE_RIGHT


class SeekPolicy(Policy):
    """The scripted pusher: :func:`seek_action` on the env's camera pose and movable objects.

    Deterministic: its actions are a function of the env's state. Walls and objects that block the camera can make
    it push the same object again and again; that is still interaction.

    With continuous actions it takes the control vector of the same discrete step (full strength).

    Args:
        env: A ``TDWRoom-*`` env.
        name: Label.

    Raises:
        TypeError: The env is not a ``TDWRoom-*`` env, or its action space is neither the 10 discrete actions nor
            the 5-vector control.
    """

    def __init__(self, env: gym.Env, name: str = "seek") -> None:
        super().__init__(env, name)
        if not hasattr(self.unwrapped, "movable_positions"):
            raise TypeError(f"the seek policy needs a TDWRoom env (camera pose, movable objects); got {self.unwrapped}")
        _require_tdwroom_actions(self.action_space, "seek")

    def act(self, obs: Any) -> Any:
        """The next scripted step towards the nearest movable object."""
        env = self.unwrapped
        position, yaw, pitch = env.camera_pose
        action = seek_action(
            position,
            yaw,
            pitch,
            env.movable_positions(),
            turn_step=env.turn_step,
            pitch_step=env.pitch_step,
            move_step=env.move_step,
            reach=SEEK_REACH * env.push_reach,
        )
        if isinstance(self.action_space, spaces.Box):
            return DISCRETE_TO_CONTROL[action].astype(self.action_space.dtype)
        return action


def make_policy(name: str, env: gym.Env, seed: int | None = None) -> Policy:
    """A built-in policy by name.

    Args:
        name: One of :data:`BUILTIN_POLICIES`.
        env: The env it acts in.
        seed: Passed to :meth:`Policy.reset` (None: no reset; call ``reset(seed)`` at each episode start).

    Raises:
        ValueError: ``name`` is not a built-in policy.
    """
    classes: dict[str, type[Policy]] = {
        "random": RandomPolicy,
        "orbit": OrbitPolicy,
        "static": StaticPolicy,
        "seek": SeekPolicy,
    }
    if name not in classes:
        raise ValueError(f"unknown policy {name!r}; valid built-in policies are {list(BUILTIN_POLICIES)}")
    policy = classes[name](env)
    if seed is not None:
        policy.reset(seed)
    return policy


TRUST_PICKLES_ENV = "TDWGYM_TRUST_PICKLES"
"""The environment variable that ``--trust-pickles`` sets to ``1``: stored agents may then be read with a loader
that unpickles them (SB3's ``PPO.load``). Worker processes inherit it; without it nothing tdwgym reads runs code."""


class PolicyLoader(Protocol):
    """Loads policies that are not built in (files, folders): what :func:`register_policy_loader` takes."""

    def load(
        self, path: Path, env: gym.Env, *, frame_stack: int | None, device: str, deterministic: bool
    ) -> Policy | None:
        """The policy stored at ``path`` (an existing file or folder), or None when it is not of this kind."""

    def env_kwargs(self, path: Path, resolution: int) -> dict[str, Any] | None:
        """``gym.make`` arguments an env needs for the policy at ``path`` (e.g. its ``obs_mode``), or None."""


POLICY_LOADERS: dict[str, PolicyLoader] = {}
"""Name -> loader of policies that are not built in; filled by :func:`register_policy_loader`."""

ENTRY_POINT_GROUP = "tdwgym.policy_loaders"
"""Entry-point group of policy loaders: ``tdwgym.agents`` declares its stable-baselines3 loader there, so any
process (a dataset worker, a Ray task) finds it without importing ``tdwgym.agents`` first."""

_entry_point_errors: dict[str, str] = {}


def register_policy_loader(name: str, loader: PolicyLoader) -> None:
    """Let :func:`load_policy` load another kind of stored policy (``tdwgym.agents`` registers ``sb3``)."""
    POLICY_LOADERS[name] = loader


def policy_loaders() -> dict[str, PolicyLoader]:
    """The registered loaders, after loading those declared as ``tdwgym.policy_loaders`` entry points (once)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in POLICY_LOADERS or ep.name in _entry_point_errors:
            continue
        try:
            register_policy_loader(ep.name, ep.load())
        except ImportError as exc:  # e.g. the agents extra is not installed
            _entry_point_errors[ep.name] = str(exc)
    return POLICY_LOADERS


def policy_env_kwargs(spec: str | os.PathLike, resolution: int) -> dict[str, Any]:
    """``gym.make`` arguments that the policy ``spec`` needs of its env (``{}`` for built-in policies); e.g. the
    ``obs_mode`` and ``action_type`` of a stable-baselines3 model.

    Raises:
        ValueError: The stored policy cannot act in a ``TDWRoom`` env of this resolution.
    """
    if isinstance(spec, str) and spec in BUILTIN_POLICIES:
        return {}
    for loader in policy_loaders().values():
        kwargs = loader.env_kwargs(Path(spec), resolution)
        if kwargs is not None:
            return kwargs
    return {}


def load_policy(
    spec: str | os.PathLike,
    env: gym.Env,
    seed: int | None = 0,
    frame_stack: int | None = None,
    device: str = "auto",
    deterministic: bool = False,
) -> Policy:
    """A policy from a built-in name, a stable-baselines3 ``.zip`` or a training run folder.

    Args:
        spec: One of :data:`BUILTIN_POLICIES`, the path of a stable-baselines3 PPO ``.zip``, or a run folder
            written by ``tdwgym train`` (its latest ``agent.zip``; its ``config.json`` gives the frame stack).
        env: The env the policy acts in.
        seed: Passed to :meth:`Policy.reset` (None: no reset; call ``reset(seed)`` at each episode start).
        frame_stack: Frames an SB3 policy stacks (default: the run's ``config.json``, else 1).
        device: Torch device of an SB3 model (``"auto"``: CUDA when available).
        deterministic: A stored model takes its most likely action instead of sampling.

    Returns:
        The policy, named after the built-in, ``agent`` for a run folder, or the ``.zip``'s stem.

    Raises:
        FileNotFoundError: ``spec`` is neither a built-in name nor an existing file, nor a run folder with an agent.
        ValueError: An SB3 model's action space is not the env's.
    """
    if isinstance(spec, str) and spec in BUILTIN_POLICIES:
        return make_policy(spec, env, seed)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"unknown policy {str(spec)!r}: valid policies are {list(BUILTIN_POLICIES)}, the path of a "
            "stable-baselines3 PPO .zip, or a `tdwgym train` run folder (no such file or folder)"
        )
    for loader in policy_loaders().values():
        policy = loader.load(path, env, frame_stack=frame_stack, device=device, deterministic=deterministic)
        if policy is not None:
            if seed is not None:
                policy.reset(seed)
            return policy
    missing = "; ".join(_entry_point_errors.values())
    raise ValueError(
        f"no policy loader reads {str(spec)!r}: stable-baselines3 .zip files and run folders need the agents "
        f"extra (pip install 'tdwgym[agents]'){f' ({missing})' if missing else ''}"
    )
