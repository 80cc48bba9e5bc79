"""Agents as policies: a stable-baselines3 PPO ``.zip`` or a ``tdwgym train`` run folder (its latest agent).

Core's :func:`tdwgym.tools.policies.load_policy` knows the built-in policies only; this module plugs the SB3 ones in
through its registration point (:func:`tdwgym.tools.policies.register_policy_loader`, found through the
``tdwgym.policy_loaders`` entry point, so a dataset worker that never imported ``tdwgym.agents`` loads them too).

    policy = load_policy("runs/curiosity", env)      # tdwgym.tools.policies.load_policy: the run's latest agent
"""

from __future__ import annotations

import os
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tdwgym.agents.agent_zip import load_agent, trusts_pickles
from tdwgym.agents.rundir import RunDir
from tdwgym.tools.policies import Policy, register_policy_loader

__all__ = ["SB3_LOADER", "SB3Loader", "SB3Policy", "latest_agent", "load_sb3_model", "sb3_env_kwargs"]


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


def latest_agent(run_dir: str | os.PathLike) -> Path | None:
    """The newest ``agent.zip`` of a ``tdwgym train`` run folder, or None when it has none
    (:meth:`RunDir.agent_path`)."""
    return RunDir(run_dir).agent_path()


def load_sb3_model(path: str | os.PathLike, device: str = "cpu", trust_pickles: bool | None = None) -> Any:
    """Load a stable-baselines3 PPO model without unpickling anything in it
    (:func:`tdwgym.agents.agent_zip.load_agent`; cached per file version and device: the same file loads once).

    Args:
        path: The ``.zip`` written by ``model.save``.
        device: Torch device (``"auto"``: CUDA when available).
        trust_pickles: Load with SB3's ``PPO.load`` (unpickling the file's ``data``); None:
            ``$TDWGYM_TRUST_PICKLES`` (set by ``--trust-pickles``).

    Raises:
        ImportError: stable-baselines3 is not installed (with the pip command that installs it).
        AgentFileError: (a ValueError) one line naming a file that cannot be loaded safely.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    trusted = trusts_pickles(trust_pickles)
    return _load_sb3_cached(str(resolved), stat.st_mtime_ns, stat.st_size, str(device), trusted)


@lru_cache(maxsize=2)
def _load_sb3_cached(path: str, mtime_ns: int, size: int, device: str, trust_pickles: bool) -> Any:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("a model policy needs stable-baselines3: pip install 'tdwgym[agents]'") from exc
    from tdwgym.agents.device import resolve_device

    return load_agent(path, device=resolve_device(device), trust_pickles=trust_pickles)


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


class SB3Loader:
    """The policy loader of stable-baselines3 PPO ``.zip`` files and ``tdwgym train`` run folders."""

    def load(
        self, path: Path, env: gym.Env, *, frame_stack: int | None, device: str, deterministic: bool
    ) -> Policy | None:
        """The policy of a ``.zip`` or a run folder (its latest ``agent.zip``; its config gives the frame stack).

        Raises:
            FileNotFoundError: A run folder without an agent.
            ValueError: The model's action space is not the env's.
        """
        name = path.stem
        if path.is_dir():
            run = RunDir(path)
            agent = run.agent_path()
            if agent is None:
                raise FileNotFoundError(
                    f"run folder {path} holds no agent (expected checkpoints/latest.json pointing at "
                    "a folder with agent.zip, as `tdwgym train` writes)"
                )
            if frame_stack is None:
                frame_stack = run.frame_stack
            path, name = agent, "agent"
        model = load_sb3_model(path, device=device)
        return SB3Policy(env, model, name=name, frame_stack=frame_stack or 1, deterministic=deterministic)

    def env_kwargs(self, path: Path, resolution: int) -> dict[str, Any] | None:
        """:func:`sb3_env_kwargs` of a ``.zip``; None for a folder."""
        return None if path.is_dir() else sb3_env_kwargs(path, resolution)


SB3_LOADER = SB3Loader()
"""The loader registered as ``sb3``."""

register_policy_loader("sb3", SB3_LOADER)
