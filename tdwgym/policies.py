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

Any other spec is a stable-baselines3 PPO ``.zip`` or a ``tdwgym train`` run folder (its latest agent); see
:func:`load_policy`. stable-baselines3 and torch are imported only when such a policy is loaded.

    policy = load_policy("orbit", env)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    obs, *_ = env.step(policy(obs))
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tdwgym.envs.base import DISCRETE_ACTIONS, DISCRETE_TO_CONTROL

__all__ = [
    "BUILTIN_POLICIES",
    "ORBIT_RADIUS",
    "OrbitPolicy",
    "Policy",
    "RandomPolicy",
    "SB3Policy",
    "SeekPolicy",
    "StaticPolicy",
    "latest_agent",
    "load_policy",
    "load_sb3_model",
    "make_policy",
    "sb3_env_kwargs",
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


class SB3Policy(Policy):
    """A stable-baselines3 model acting in an env, with an optional stack of the last frames.

    Args:
        env: The env the model acts in.
        model: A loaded stable-baselines3 model (see :func:`load_sb3_model`).
        name: Label.
        frame_stack: Frames the model's policy stacks along the last axis (1: the observation as it is).
        deterministic: Take the mode of the action distribution and predict on one torch thread (the same
            arithmetic in every process); otherwise sample, seeded through ``torch.manual_seed`` by
            ``reset(seed)``.

    Raises:
        ValueError: The model's action space is not the env's.
    """

    def __init__(
        self, env: gym.Env, model: Any, name: str = "agent", frame_stack: int = 1, deterministic: bool = False
    ) -> None:
        super().__init__(env, name)
        if model.action_space != self.action_space:
            raise ValueError(
                f"the model acts in {model.action_space} but the env's action space is {self.action_space}; "
                "make the env with the action_type the model was trained with"
            )
        self.model = model
        self.frame_stack = max(int(frame_stack), 1)
        self.deterministic = deterministic
        self._stack: deque[np.ndarray] = deque(maxlen=self.frame_stack)

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: forget the stacked frames; ``seed`` reseeds torch when actions are sampled."""
        self._stack.clear()
        if seed is not None and not self.deterministic:
            import torch

            torch.manual_seed(seed)

    def _observation(self, obs: Any) -> Any:
        if self.frame_stack == 1:
            return obs
        if isinstance(obs, dict):
            raise ValueError("frame stacking needs array observations, not a dict; use obs_mode='rgb'")
        frame = np.asarray(obs)
        if not self._stack:
            self._stack.extend([frame] * self.frame_stack)
        else:
            self._stack.append(frame)
        return np.concatenate(list(self._stack), axis=-1)

    def act(self, obs: Any) -> Any:
        """The model's action: an ``int`` for a discrete action space, else an array of the space's dtype."""
        model_obs = self._observation(obs)
        if self.deterministic:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                action, _ = self.model.predict(model_obs, deterministic=True)
            finally:
                torch.set_num_threads(threads)
        else:
            action, _ = self.model.predict(model_obs, deterministic=False)
        if isinstance(self.action_space, spaces.Discrete):
            return int(action)
        return np.asarray(action, dtype=self.action_space.dtype)


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


def latest_agent(run_dir: str | os.PathLike) -> Path | None:
    """The newest ``agent.zip`` of a ``tdwgym train`` run folder, or None when it has none.

    Looks at ``checkpoints/latest.json`` (its ``dir`` names the checkpoint folder), then ``agent.zip`` at the top.
    """
    run = Path(run_dir)
    pointer = run / "checkpoints" / "latest.json"
    if pointer.exists():
        agent = run / "checkpoints" / json.loads(pointer.read_text())["dir"] / "agent.zip"
        if agent.exists():
            return agent
    direct = run / "agent.zip"
    return direct if direct.exists() else None


def load_sb3_model(path: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a stable-baselines3 PPO model (cached per file version and device: the same file loads once).

    Args:
        path: The ``.zip`` written by ``model.save``.
        device: Torch device (``"auto"``: CUDA when available).

    Raises:
        ImportError: stable-baselines3 is not installed (with the pip command that installs it).
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _load_sb3_cached(str(resolved), stat.st_mtime_ns, stat.st_size, str(device))


@lru_cache(maxsize=2)
def _load_sb3_cached(path: str, mtime_ns: int, size: int, device: str) -> Any:
    try:
        from stable_baselines3 import PPO
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("a model policy needs stable-baselines3: pip install 'tdwgym[agents]'") from exc
    from tdwgym.agents.device import resolve_device

    return PPO.load(path, device=resolve_device(device))


def sb3_env_kwargs(path: str | os.PathLike, resolution: int) -> dict[str, Any]:
    """``obs_mode`` and ``action_type`` of a ``TDWRoom-*`` env matching an SB3 model's spaces.

    Args:
        path: The model's ``.zip``.
        resolution: The env's image size; the model's must equal it.

    Raises:
        ValueError: The model does not observe TDWRoom images, or observes another size.
    """
    model = load_sb3_model(path)
    obs_space, act_space = model.observation_space, model.action_space
    if isinstance(obs_space, spaces.Dict):
        keys = set(obs_space.spaces)
        obs_mode = "rgbd" if "depth" in keys else "rgb_seg" if "segmentation" in keys else None
        image = obs_space.spaces.get("rgb")
    else:
        obs_mode, image = "rgb", obs_space
    if obs_mode is None or image is None or len(image.shape) != 3:
        raise ValueError(f"the model at {path} observes {obs_space}, not a TDWRoom observation")
    hw = image.shape[:2] if image.shape[2] == 3 else image.shape[1:]
    if tuple(hw) != (resolution, resolution):
        raise ValueError(f"the model at {path} observes {hw[0]}x{hw[1]} images; pass --resolution {hw[0]}")
    return {"obs_mode": obs_mode, "action_type": "discrete" if isinstance(act_space, spaces.Discrete) else "continuous"}


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
        deterministic: An SB3 model takes its most likely action (see :class:`SB3Policy`) instead of sampling.

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
    name = path.stem
    if path.is_dir():
        config = path / "config.json"
        if frame_stack is None and config.exists():
            frame_stack = int(json.loads(config.read_text()).get("frame_stack", 1))
        agent = latest_agent(path)
        if agent is None:
            raise FileNotFoundError(
                f"run folder {path} holds no agent (expected checkpoints/latest.json pointing at "
                "a folder with agent.zip, as `tdwgym train` writes)"
            )
        path, name = agent, "agent"
    model = load_sb3_model(path, device=device)
    policy = SB3Policy(env, model, name=name, frame_stack=frame_stack or 1, deterministic=deterministic)
    if seed is not None:
        policy.reset(seed)
    return policy
