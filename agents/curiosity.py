"""Curiosity as a per-step reward in stable-baselines3: a ``VecEnvWrapper`` in the style of ``VecNormalize``.

In ``step_wait`` the wrapper builds one transition per environment (its last ``k`` frames, the action, the new
frame, taken from ``infos[i]["terminal_observation"]`` for environments that just reset), scores it with the
world model, normalises the surprise by the running standard deviation of the discounted intrinsic return (RND's
recipe: the intrinsic return ignores episode ends), and returns ``ext_coef * r_ext + int_coef * r_int``. Both
terms are in ``infos[i]["curiosity"]``. Because the reward is added per step it reaches SB3's returns and
advantages. While ``training`` is True the world model trains on the same transitions through an
:class:`~tdwgym.agents.online.OnlineLearner`.

``action_baseline`` measures each surprise against the surprises that usually follow the same action, with a
running mean ``mean_a`` and standard deviation ``std_a`` per action (exponential moving averages):
``"zscore"`` rewards ``max(0, (error - mean_a) / std_a - 2)``, ``"ratio"`` ``max(0, error / mean_a - 1)``,
``"difference"`` ``max(0, error - mean_a)``. An agent that turns the camera sees every pixel change at every turn;
a pixel model that has not learned ego-motion scores each turn high, and PPO learns to spin or nod. Measured
against what a turn usually costs, a turn is worth nothing unless it shows something unusual, while a push that
sets an object moving stands far above what a push (mostly a no-op) usually costs, and so do the frames after it,
when the object slides on while the agent stands still. The standard score also takes the spread into account:
actions whose error merely varies a lot (the ratio rewards those) pay little. The baseline uses only the agent's
own actions and the model's pixel error: the reward stays self-supervised.

Every setting of the reward is a field of :class:`CuriosityConfig`, whose defaults are ``tdwgym train``'s
(:class:`~tdwgym.agents.training.TrainConfig` is a ``CuriosityConfig`` plus the env, PPO and run settings), so
``CuriosityVecEnv(venv)`` pays what ``tdwgym train`` pays. Do not stack ``VecNormalize`` reward scaling on top: the
intrinsic reward is already normalised.

Longer than 600 lines: one wrapper whose reward (baseline, gate, normalisation) and statistics (save, load) read top to
bottom in algorithm order; split, each part would need the others' state.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from tdwgym.agents.models import (
    MODELS,
    SHIPPED,
    Stream,
    WorldModel,
    load_world_model,
    make_world_model,
    resize_frames,
    resolve_model_path,
    safe_load,
    world_model_from_config,
)
from tdwgym.agents.models.objects import SURPRISE_TERMS
from tdwgym.agents.models.slots import MAX_SLOTS, NUM_FEATURES
from tdwgym.agents.online import OnlineLearner
from tdwgym.util.files import DamagedFileError, read_json, write_atomic

__all__ = [
    "BASELINES",
    "GATES",
    "REWARD_VERSION",
    "VARIANTS",
    "CuriosityConfig",
    "CuriosityVecEnv",
    "action_vector_size",
    "actions_to_vectors",
]

POLICY_OBS: dict[str, tuple[str, ...]] = {"rgb": ("rgb",), "rgbd": ("rgb", "depth")}
"""Values of ``CuriosityVecEnv(policy_obs=...)`` for envs with Dict observations: the keys the policy sees."""

VARIANTS = (*MODELS, "progress")
"""Curiosity variants by name."""

BASELINES = ("none", "ratio", "difference", "zscore")
"""Values of :attr:`CuriosityConfig.action_baseline`."""

GATES = ("none", "still", "push")
"""Values of :attr:`CuriosityConfig.reward_gate`: ``"still"`` pays the surprise only on steps whose action held
the camera still (``info["camera_moved"]`` and ``info["camera_blocked"]`` false), where every change in the frame
is the world's own motion; ``"push"`` only those of them whose action pushed (``info["push"]["attempted"]``): the
surprise at what the agent's own push did."""

REWARD_VERSION = 3
"""Version of the curiosity reward's rules, bumped when a setting keeps its name but pays other steps (2: the
``"still"`` gate leaves out steps whose camera was blocked; 3: the ``objects`` model corrects its guess of the
camera's own motion by what the objects did together, and its reward counts ``wm_surprise``). Measurements record
it, so results of other rules are not mixed (``scripts/sample_efficiency.py``)."""

MAX_LOGGED_ACTIONS = 32
"""``pop_stats`` reports each action's share and mean intrinsic reward for action spaces up to this size."""

BASELINE_WARMUP = 20
"""An action's surprise earns nothing until the action has been taken this many times: before that its running
mean and std are no baseline (after one sample the std is 0, and a standard score would be in the thousands; one
such value inflates the running std of the intrinsic return for the rest of the run and silences the reward)."""

MAX_EXCESS = 10.0
"""Cap of the surprise beyond the baseline (``zscore`` in standard deviations beyond the threshold, ``ratio`` in
multiples of the mean), so that one outlier cannot dominate the running std of the intrinsic return."""


def action_vector_size(space: spaces.Space) -> tuple[int, bool]:
    """Length of the float vector an action becomes, and whether the space is discrete."""
    if isinstance(space, spaces.Discrete):
        return int(space.n), True
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec)), True
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape)), False
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape)), False
    raise TypeError(f"unsupported action space {space}")


def actions_to_vectors(actions: np.ndarray, space: spaces.Space) -> np.ndarray:
    """Batch of actions -> ``(N, A)`` float32 (one-hot for Discrete, concatenated one-hots for MultiDiscrete)."""
    actions = np.asarray(actions)
    n = actions.shape[0]
    if isinstance(space, spaces.Discrete):
        out = np.zeros((n, int(space.n)), dtype=np.float32)
        out[np.arange(n), actions.reshape(n).astype(np.int64) - int(space.start)] = 1.0
        return out
    if isinstance(space, spaces.MultiDiscrete):
        acts = actions.reshape(n, -1).astype(np.int64)
        parts = []
        for j, k in enumerate(space.nvec.reshape(-1)):
            part = np.zeros((n, int(k)), dtype=np.float32)
            part[np.arange(n), acts[:, j]] = 1.0
            parts.append(part)
        return np.concatenate(parts, axis=1)
    return actions.reshape(n, -1).astype(np.float32)


def _find_frame_stack(venv: VecEnv) -> int:
    """``n_stack`` of a ``VecFrameStack`` below ``venv`` in the wrapper chain (1 when there is none)."""
    env: Any = venv
    while env is not None:
        if isinstance(env, VecFrameStack):
            return int(env.stacked_obs.n_stack)
        env = getattr(env, "venv", None)
    return 1


def check_norm_horizon(value: Any, name: str = "norm_horizon") -> int | None:
    """``value`` as a normaliser horizon (an int >= 1, or None for all transitions); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (transitions remembered) or None (all of them), got {value!r}")
    return int(value)


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays as JSON numbers and lists, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class CuriosityConfig:
    """The curiosity reward's settings (CleanRL style: one field, one docstring). The defaults are ``tdwgym train``'s:
    :class:`~tdwgym.agents.training.TrainConfig` is a ``CuriosityConfig`` plus the env, PPO and run settings, and
    ``CuriosityVecEnv(venv)`` reads the same defaults from here."""

    curiosity: str = "pixel"
    """Intrinsic reward: a world-model variant (``"pixel"``, ``"latent"``, ``"recurrent"``, ``"jepa"``, ``"rnd"``,
    ``"icm"``, ``"progress"``) or ``"none"`` (plain PPO; ``tdwgym train`` only)."""
    progress_base: str = "pixel"
    """With ``curiosity="progress"``: the world model whose learning progress is the reward (``"pixel"``,
    ``"objects"``, ...)."""
    world_model: str | None = None
    """A world model to start the curiosity reward from instead of a fresh one: ``"pretrained"`` (the model shipped
    with tdwgym, pretrained offline by ``tdwgym pretrain``) or a ``world_model.pt`` file. It keeps learning online;
    its variant replaces ``curiosity``'s and its frame size ``wm_resolution``."""
    int_coef: float = 1.0
    """Weight of the normalised intrinsic reward (0 trains the world model without rewarding the agent)."""
    ext_coef: float = 1.0
    """Weight of the environment's reward."""
    gamma: float = 0.95
    """Discount of PPO and of the intrinsic return. A push pays at once, so a short horizon suffices, and it let
    PPO learn the push within 30,000 steps on seeds where 0.99 did not (docs/agents.md). The wrapper divides the
    intrinsic reward by the running std of the intrinsic return discounted by it; give PPO the same ``gamma``."""
    int_norm_horizon: int | None = None
    """Transitions the running std that normalises the intrinsic reward remembers (``None``: all of them). The
    world model's error falls by 10-40x early on; remembered for ever, those early returns shrink every later
    reward towards 0 (docs/agents.md)."""
    action_baseline: str = "difference"
    """What of the world model's error is rewarded: ``"difference"`` ``max(0, error - mean_a)`` (the default), the
    error beyond the running mean ``mean_a`` of the errors after the same action: with the ``"push"`` gate a push
    that moves nothing leaves only the usual small error and earns nearly nothing, while a push that sets something
    moving pays, so pushing at nothing stops paying (docs/agents.md); ``"none"`` the error itself; ``"zscore"`` its
    standard score against the running mean and std of the errors after the same action, beyond
    ``zscore_threshold`` std; ``"ratio"`` ``max(0, error / mean_a - 1)``. Against its own action's usual error,
    turning or nodding the camera, which changes every pixel, stops paying by itself: ``"zscore"`` is the choice
    for ``reward_gate="none"``."""
    zscore_threshold: float = 2.0
    """With ``action_baseline="zscore"``: standard scores up to this many std pay nothing."""
    reward_gate: str = "push"
    """Which steps' surprise pays: ``"none"`` every step's; ``"still"`` only the steps whose action held the camera
    still (a no-op, a push), where every change in the frame is the world's own motion (a pushed object), so
    turning, walking, bumping a wall or nodding against the pitch limit never pays; ``"push"`` only those of them
    whose action pushed: the surprise at the agent's own push (docs/agents.md). ``"still"`` and ``"push"`` need the
    step ``info`` of a TDWRoom env (``camera_moved``, ``camera_blocked``, ``push``)."""
    wm_fovea: float | None = 0.5
    """Pixel model (and ``progress`` on it): the surprise counts only the central ``wm_fovea`` fraction of the
    frame's height and width (``None``: the whole frame); the model still learns to predict every pixel. The centre
    is where a push lands; the border is where the camera's own motion leaves most error (docs/agents.md)."""
    context_frames: int | None = None
    """``k``: context frames of each world-model transition (None: the model's default, 2 for the frame-pair
    models and 16 for the models with memory)."""
    wm_surprise: str = "whole"
    """Object models (``objects``, and ``progress`` on it): what the reward's surprise counts
    (:data:`~tdwgym.agents.models.objects.SURPRISE_TERMS`): ``"whole"`` the motion and looks of objects seen before
    and seen whole now, each standardised error capped at 5 std (what known objects did, not what the image border
    or an occluder cut off, docs/agents.md); ``"motion"`` the same, of where those objects are only (image centroid
    and 3D position, not their looks, which change with the view as the camera moves); ``"all"`` everything
    violation of expectation scores, objects coming into view included (which pays turning around); ``"sightings"``
    the same floored, a box cut by an occluder or the image border counted by its exact edges and colour only."""
    wm_width: int = 8
    """Channels of the world model's first conv layer."""
    wm_warp: bool = True
    """Pixel model (and ``progress`` on it): predict the next frame as the last one warped by a learned
    per-action affine transform plus a residual, so the camera's own motion becomes predictable; the surprise
    counts only pixels the warp brings in from inside the last frame."""
    wm_resolution: int | None = 32
    """Side in pixels of the frames the world model sees: observations are area-downsampled to it (``None``: the
    observation's size). 32x32 scores and trains several times faster than 64x64 (BENCHMARKS.md), and a pushed
    object still covers several pixels."""
    wm_capacity: int = 1000
    """Transitions in the world model's loss-prioritised buffer."""
    wm_batch_size: int = 32
    """Transitions per world-model optimiser step."""
    wm_updates_per_transition: float = 0.0625
    """World-model optimiser steps per observed transition."""
    wm_learning_rate: float = 5e-4
    """World-model Adam learning rate."""
    wm_background: bool = True
    """Train the world model in a worker thread on a copy of it, so that training overlaps simulation and PPO;
    the copy that scores transitions takes the trained weights every 8 optimiser steps, lagging by up to 4 such
    hand-overs (about one PPO rollout). Deterministic for a seed like the foreground mode (docs/agents.md)."""

    def __post_init__(self) -> None:
        if self.curiosity not in (*VARIANTS, "none"):
            raise ValueError(f"curiosity must be one of {(*VARIANTS, 'none')}, got {self.curiosity!r}")
        if self.progress_base not in MODELS:
            raise ValueError(f"progress_base must be one of {sorted(MODELS)}, got {self.progress_base!r}")
        if self.world_model is not None:
            if self.curiosity == "none":
                raise ValueError("world_model needs a curiosity reward; curiosity='none' trains plain PPO")
            if not resolve_model_path(self.world_model).is_file():
                raise ValueError(
                    f"world_model {self.world_model!r} is not a file; use a shipped model "
                    f"({', '.join(map(repr, SHIPPED))}) or a world_model.pt path"
                )
        if self.wm_surprise not in SURPRISE_TERMS:
            raise ValueError(f"wm_surprise must be one of {SURPRISE_TERMS}, got {self.wm_surprise!r}")
        if self.action_baseline not in BASELINES:
            raise ValueError(f"action_baseline must be one of {BASELINES}, got {self.action_baseline!r}")
        if self.reward_gate not in GATES:
            raise ValueError(f"reward_gate must be one of {GATES}, got {self.reward_gate!r}")
        if not (np.isfinite(self.zscore_threshold) and self.zscore_threshold >= 0):
            raise ValueError(f"zscore_threshold must be a finite number >= 0, got {self.zscore_threshold!r}")
        check_norm_horizon(self.int_norm_horizon, "int_norm_horizon")
        if self.wm_resolution is not None and self.wm_resolution < 8:
            raise ValueError(
                f"wm_resolution must be None (the observation's size) or at least 8 pixels, got {self.wm_resolution!r}"
            )
        if self.wm_fovea is not None and not (isinstance(self.wm_fovea, (int, float)) and 0 < self.wm_fovea <= 1):
            raise ValueError(f"wm_fovea must be None (the whole frame) or a fraction in (0, 1], got {self.wm_fovea!r}")

    @classmethod
    def of(cls, config: CuriosityConfig) -> CuriosityConfig:
        """The curiosity settings of a config that extends this one (a :class:`~tdwgym.agents.training.TrainConfig`)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    def model_kwargs(self) -> dict[str, Any]:
        """Arguments of the world model these settings build (:func:`~tdwgym.agents.models.make_world_model`).
        A model of object slots takes none of the pixel models' (``wm_width``, ``wm_warp``, ``wm_fovea``)."""
        progress = {"progress_base": self.progress_base} if self.curiosity == "progress" else {}
        if self.passes():
            return progress
        kwargs: dict[str, Any] = {"width": self.wm_width, **progress}
        pixel = self.curiosity == "pixel" or (self.curiosity == "progress" and self.progress_base == "pixel")
        if self.wm_warp and pixel:
            kwargs["warp"] = True
        if self.wm_fovea is not None and pixel:
            kwargs["fovea"] = self.wm_fovea
        return kwargs

    def passes(self) -> tuple[str, ...]:
        """The render passes beside RGB that the configured world model reads (``("segmentation", "depth")`` for
        the ``objects`` model, none for pixel models): an env for it renders them (``obs_mode="rgbd_seg"``)."""
        if self.curiosity == "none":
            return ()
        name = self.progress_base if self.curiosity == "progress" else self.curiosity
        if self.world_model is not None:
            state = safe_load(resolve_model_path(self.world_model))
            config = state.get("model_config", {}) if isinstance(state, dict) else {}
            name = config.get("base", {}).get("name") if config.get("name") == "progress" else config.get("name")
        return tuple(p for p in getattr(MODELS.get(name), "passes", ("rgb",)) if p != "rgb")

    def learner_kwargs(self) -> dict[str, Any]:
        """Arguments of the :class:`~tdwgym.agents.online.OnlineLearner` that trains the world model."""
        return {
            "capacity": self.wm_capacity,
            "batch_size": self.wm_batch_size,
            "updates_per_transition": self.wm_updates_per_transition,
            "learning_rate": self.wm_learning_rate,
            "background": self.wm_background,
        }


def read_statistics(path: str | os.PathLike) -> dict[str, Any]:
    """Statistics written by :meth:`CuriosityVecEnv.save` (JSON).

    Raises:
        ValueError: The file is damaged; the message names it.
    """
    try:
        return read_json(path)
    except DamagedFileError as exc:
        raise ValueError(f"curiosity statistics: {exc}") from None


class CuriosityVecEnv(VecEnvWrapper):
    """Adds a world model's normalised prediction error to the reward, per step.

    Observations must be uint8 images: ``(H, W, C)`` as SB3 VecEnvs hold them, or ``(C, H, W)`` below a
    ``VecTransposeImage``. Below a ``VecFrameStack`` only the newest frame of the stack is used (the wrapper keeps
    its own ``k``-frame history). Actions may be Discrete, MultiDiscrete, MultiBinary or Box.

    ``CuriosityVecEnv(venv)`` pays what ``tdwgym train`` pays (:class:`CuriosityConfig`'s defaults); change a
    setting by name (``CuriosityVecEnv(venv, reward_gate="none")``) or pass a whole ``config``.

    Args:
        venv: The vectorized environment.
        variant: A world-model variant by name (replaces ``config.curiosity``), or a ready :class:`WorldModel`
            (it keeps learning; its frame size replaces ``wm_resolution``). None: ``config.curiosity``, or
            ``config.world_model`` when that is set.
        config: The reward's settings (default: ``CuriosityConfig()``, ``tdwgym train``'s); a
            :class:`~tdwgym.agents.training.TrainConfig` gives its curiosity settings.
        training: Whether to train the world model and update the normalisation statistics.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ...
        seed: Seed of the world model's initial weights (when ``variant`` is a name) and of the learner's buffer
            sampler.
        frame_channels: Channels of one frame; ``None`` infers it (observation channels / ``n_stack`` of a
            ``VecFrameStack`` found below).
        normalize: Whether to divide the intrinsic reward by the std of the intrinsic return.
        clip_reward: Clip of the normalised intrinsic reward (``None`` disables it).
        baseline_rate: Rate of the exponential moving average of the per-action means (the first ``1 / rate``
            observations of an action are averaged plainly).
        policy_obs: For envs with Dict observations (``obs_mode="rgbd_seg"``, what the ``objects`` model reads): the
            keys the policy sees, ``"rgb"`` (the RGB image alone) or ``"rgbd"`` (RGB and depth); the world model
            reads the passes it needs.
        model_kwargs: World-model arguments over the config's (``width``, ``feature_dim``, ``progress_base``, ...).
        learner_kwargs: :class:`OnlineLearner` arguments over the config's (``capacity``, ``batch_size``,
            ``updates_per_transition``, ``learning_rate``, ``background``, ...).
        **settings: :class:`CuriosityConfig` fields over ``config``'s (``int_coef=0.5``, ``reward_gate="none"``).

    The baseline: with ``action_baseline="zscore"`` the reward is ``max(0, (surprise - mean_a) / std_a -
    zscore_threshold)``, with ``"ratio"`` ``max(0, surprise / mean_a - 1)``, with ``"difference"``
    ``max(0, surprise - mean_a)``, where ``mean_a`` and ``std_a`` are the running mean and std of the surprise after
    the action taken (one per action of a Discrete or MultiDiscrete space; one shared for Box and MultiBinary). The
    gate: ``"still"`` pays only the steps whose action held the camera still (``info["camera_moved"]`` false, and
    ``info["camera_blocked"]`` false when the env reports it), ``"push"`` only those of them whose action pushed
    (``info["push"]["attempted"]``); the world model still learns from every transition. The intrinsic return's
    running variance remembers ``int_norm_horizon`` transitions (its count is capped there, so older returns fade
    with weight ``1 - 1/horizon`` per batch-sized step; ``None`` remembers all, as SB3's ``VecNormalize``).
    """

    def __init__(
        self,
        venv: VecEnv,
        variant: str | WorldModel | None = None,
        config: CuriosityConfig | None = None,
        *,
        training: bool = True,
        device: str | torch.device = "auto",
        seed: int | None = None,
        frame_channels: int | None = None,
        normalize: bool = True,
        clip_reward: float | None = 10.0,
        baseline_rate: float = 0.01,
        model_kwargs: dict | None = None,
        learner_kwargs: dict | None = None,
        policy_obs: str = "rgb",
        **settings: Any,
    ) -> None:
        config = CuriosityConfig.of(config) if config is not None else CuriosityConfig()
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(CuriosityConfig)})
        if unknown:
            names = ", ".join(f.name for f in dataclasses.fields(CuriosityConfig))
            raise TypeError(f"CuriosityVecEnv got unknown settings {unknown}; CuriosityConfig's fields are {names}")
        if isinstance(variant, str):
            settings["curiosity"] = variant
        config = dataclasses.replace(config, **settings)
        if variant is None and config.world_model is not None:
            variant = load_world_model(config.world_model, device=device).train()
        if isinstance(variant, WorldModel):
            config = dataclasses.replace(config, curiosity=variant.name)
        elif config.curiosity not in VARIANTS:
            raise ValueError(f"unknown curiosity variant {config.curiosity!r}; choose from {VARIANTS}")
        self.config = config
        """The reward's settings (:class:`CuriosityConfig`)."""

        space = venv.observation_space
        # envs with several passes (obs_mode "rgbd_seg"): the world model reads what it needs, the policy sees
        # only ``policy_obs`` (RGB, or RGB and depth)
        self.dict_obs = isinstance(space, spaces.Dict)
        self.policy_keys: tuple[str, ...] = ()
        policy_space = space
        if self.dict_obs:
            if policy_obs not in POLICY_OBS:
                raise ValueError(f"policy_obs must be one of {list(POLICY_OBS)}, got {policy_obs!r}")
            self.policy_keys = POLICY_OBS[policy_obs]
            missing = [k for k in self.policy_keys if k not in space.spaces]
            if missing:
                raise TypeError(f"CuriosityVecEnv(policy_obs={policy_obs!r}) needs a {missing[0]!r} key, got {space}")
            policy_space = (
                space.spaces["rgb"]
                if self.policy_keys == ("rgb",)
                else spaces.Dict({k: space.spaces[k] for k in self.policy_keys})
            )
            space = space.spaces["rgb"]
        super().__init__(venv, observation_space=policy_space)
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8):
            raise TypeError(f"CuriosityVecEnv needs uint8 image observations (or a Dict with 'rgb'), got {space}")
        self.channels_first = bool(is_image_space_channels_first(space))
        total_c = space.shape[0] if self.channels_first else space.shape[-1]
        if frame_channels is None:
            frame_channels = total_c // _find_frame_stack(venv)
        if total_c % frame_channels:
            raise ValueError(f"{total_c} observation channels are not a multiple of frame_channels={frame_channels}")
        self.frame_channels = int(frame_channels)
        h, w = space.shape[1:] if self.channels_first else space.shape[:2]
        if isinstance(variant, WorldModel):
            h, w = variant.resolution
        slot_model = not isinstance(variant, WorldModel) and "segmentation" in config.passes()
        if not isinstance(variant, WorldModel) and config.wm_resolution is not None and not slot_model:
            h = w = config.wm_resolution
        self.frame_shape: tuple[int, ...] = (self.frame_channels, int(h), int(w))
        if isinstance(variant, WorldModel):
            self.frame_shape = tuple(variant.frame_shape)
        if slot_model:
            # a model of object slots: its frames are slot tables read from segmentation and depth at this size
            self.frame_shape = (MAX_SLOTS, NUM_FEATURES)
        self.action_dim, self.discrete_actions = action_vector_size(venv.action_space)

        self.variant = config.curiosity
        self.int_coef, self.ext_coef, self.gamma = float(config.int_coef), float(config.ext_coef), float(config.gamma)
        self.training, self.normalize, self.clip_reward = training, normalize, clip_reward
        self.norm_horizon = config.int_norm_horizon
        base_kwargs = {**config.model_kwargs(), **({"resolution": int(h)} if slot_model else {})}
        self.model_kwargs = {**base_kwargs, **(model_kwargs or {})}
        self.learner_kwargs = {**config.learner_kwargs(), **(learner_kwargs or {})}
        if isinstance(variant, WorldModel):
            model = variant
        else:
            # with a seed the model's initial weights are a function of it, whatever torch drew before
            with torch.random.fork_rng(devices=[], enabled=seed is not None):
                if seed is not None:
                    torch.manual_seed(seed)
                model = make_world_model(
                    config.curiosity,
                    self.frame_shape,
                    self.action_dim,
                    config.context_frames,
                    self.discrete_actions,
                    device=device,
                    **self.model_kwargs,
                )
        for part in (model, getattr(model, "base", None), getattr(model, "lagged", None)):
            if part is not None and hasattr(part, "surprise_terms"):  # an object model: what the reward counts
                part.surprise_terms = config.wm_surprise
        self.context_frames = model.context_frames
        needs = [p for p in model.passes if p != "rgb"]
        have = set(venv.observation_space.spaces) if self.dict_obs else {"rgb"}
        if any(p not in have for p in needs):
            raise TypeError(
                f"the {model.name!r} world model reads the {needs} passes: make the envs with obs_mode='rgbd_seg' "
                f"(observations have {sorted(have)})"
            )
        self.learner = OnlineLearner(model, seed=seed, **self.learner_kwargs)
        self.action_baseline, self.baseline_rate = config.action_baseline, float(baseline_rate)
        self.zscore_threshold = float(config.zscore_threshold)
        self.reward_gate = config.reward_gate
        n_keys = 1
        if isinstance(venv.action_space, spaces.Discrete):
            n_keys = int(venv.action_space.n)
        elif isinstance(venv.action_space, spaces.MultiDiscrete):
            n_keys = int(np.prod(venv.action_space.nvec))
        self.baseline_mean = np.zeros(n_keys, dtype=np.float64)
        self.baseline_var = np.zeros(n_keys, dtype=np.float64)
        self.baseline_count = np.zeros(n_keys, dtype=np.int64)

        self.int_ret_rms = RunningMeanStd(shape=())
        self.int_returns = np.zeros(self.num_envs, dtype=np.float64)
        self.stream: Stream | None = None
        """Each env's context and the world model's memory of its episode (made at :meth:`reset`)."""
        self.actions: np.ndarray | None = None
        self._prepared: object | None = None
        self._action_vectors: torch.Tensor | None = None
        self.num_steps = 0
        self._stats: dict[str, deque] = {k: deque(maxlen=10_000) for k in ("raw", "excess", "norm")}
        self._action_count = np.zeros(n_keys, dtype=np.int64)
        self._action_reward = np.zeros(n_keys, dtype=np.float64)
        self.old_obs: np.ndarray | None = None

    # ---------------------------------------------------------------------------------------------- frames

    @property
    def world_model(self) -> WorldModel:
        """The world model being trained."""
        return self.learner.model

    def frames(self, obs: Any) -> np.ndarray:
        """The world model's frame of each observation in a batch: for pixel models the newest frame ``(N, C, H,
        W)`` uint8 at the model's resolution, for models of other passes what they read from them
        (:meth:`~tdwgym.agents.models.WorldModel.frames_from`)."""
        if self.dict_obs:
            model = self.world_model
            extra = {k: np.asarray(obs[k])[..., 0] for k in model.passes if k != "rgb"}
            if not extra:
                return model.frames_from(obs["rgb"]).numpy()
            return model.frames_from(obs["rgb"], **extra).numpy()
        c = self.frame_channels
        if self.channels_first:
            out = np.ascontiguousarray(obs[:, -c:])
        else:
            out = np.ascontiguousarray(obs[..., -c:].transpose(0, 3, 1, 2))
        return resize_frames(torch.from_numpy(out), self.frame_shape[1:]).numpy()

    # ----------------------------------------------------------------------------------------------- VecEnv API

    def policy_obs(self, obs: Any) -> Any:
        """What the policy sees of an observation batch (the ``policy_obs`` keys of Dict observations)."""
        if not self.dict_obs:
            return obs
        if self.policy_keys == ("rgb",):
            return obs["rgb"]
        return {k: obs[k] for k in self.policy_keys}

    def reset(self) -> Any:  # noqa: D102
        obs = self.venv.reset()
        self.stream = Stream(self.world_model, torch.from_numpy(self.frames(obs)))
        self.int_returns[:] = 0.0
        self.old_obs = obs
        return self.policy_obs(obs)

    def close(self) -> None:
        """Stop the world model's background trainer (if any), then close the environments."""
        try:
            self.learner.close()
        finally:
            self.venv.close()

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102
        self.actions = np.asarray(actions)
        self.venv.step_async(actions)
        # The updates earned by the last transitions start here, between sending the actions and waiting for the
        # results: while the environments step in their own processes (SubprocVecEnv), or in the learner's worker
        # thread with ``learner_kwargs={"background": True}``.
        self.learner.run_due_updates()
        # ... and the world model predicts the next frames now, while the environments compute them; step_wait
        # only compares (the scorer's weights do not change in between)
        if self.stream is None:
            raise RuntimeError("CuriosityVecEnv.step_async() before reset()")
        self._action_vectors = torch.from_numpy(actions_to_vectors(self.actions, self.action_space))
        self._prepared = self.stream.prepare(self._action_vectors)

    def step_wait(self) -> VecEnvStepReturn:
        """Step, score the transitions, train the model, and return the mixed reward."""
        obs, rews, dones, infos = self.venv.step_wait()
        next_frames = self.frames(obs)
        done_idx = np.flatnonzero(dones)
        for i in done_idx:
            terminal = infos[i].get("terminal_observation")
            if terminal is not None:
                if self.dict_obs:
                    next_frames[i] = self.frames({k: np.asarray(v)[None] for k, v in terminal.items()})[0]
                    infos[i]["terminal_observation"] = self.policy_obs(terminal)
                else:
                    next_frames[i] = self.frames(np.asarray(terminal)[None])[0]
        assert self.stream is not None
        batch = self.stream.transitions(self._action_vectors, torch.from_numpy(next_frames.copy()))
        prepared, self._prepared = self._prepared, None
        raw = self.learner.observe(batch, train=self.training, update=False, prepared=prepared).astype(np.float64)
        raw = np.nan_to_num(np.maximum(raw, 0.0), nan=0.0, posinf=0.0)
        excess = self.against_baseline(raw, self.actions) if self.action_baseline != "none" else raw
        if self.reward_gate in ("still", "push"):
            excess = np.where(self.camera_not_still(infos), 0.0, excess)
        if self.reward_gate == "push":
            excess = np.where(self.pushed(infos), excess, 0.0)
        r_int = self.normalize_intrinsic(excess)

        # The new frame joins each env's context and memory; envs that reset start over from their first frame.
        self.stream.advance(prepared, self._action_vectors, batch.next_frame)
        if len(done_idx):
            firsts = {k: v[done_idx] for k, v in obs.items()} if self.dict_obs else obs[done_idx]
            self.stream.restart(done_idx, torch.from_numpy(self.frames(firsts)))

        rews = np.asarray(rews, dtype=np.float32)
        total = (self.ext_coef * rews + self.int_coef * r_int).astype(np.float32)
        for i, info in enumerate(infos):
            info["curiosity"] = {
                "r_ext": float(rews[i]),
                "r_int": float(r_int[i]),
                "r_int_raw": float(raw[i]),
                "r_int_excess": float(excess[i]),
            }
        self._stats["raw"].extend(raw.tolist())
        self._stats["excess"].extend(excess.tolist())
        self._stats["norm"].extend(r_int.tolist())
        keys = self.action_keys(self.actions)
        np.add.at(self._action_count, keys, 1)
        np.add.at(self._action_reward, keys, r_int)
        self.num_steps += self.num_envs
        self.old_obs = obs
        return self.policy_obs(obs), total, dones, infos

    @staticmethod
    def camera_not_still(infos: list[dict] | tuple[dict, ...]) -> np.ndarray:
        """Whether each env's action did not hold the camera still (``reward_gate="still"``): ``info["camera_moved"]``
        or ``info["camera_blocked"]`` (false for envs that do not report it); a clear error for envs without
        ``camera_moved``."""
        try:
            return np.array([bool(info["camera_moved"]) or bool(info.get("camera_blocked", False)) for info in infos])
        except KeyError:
            raise ValueError(
                'reward_gate="still" needs envs whose step info has "camera_moved" (every TDWRoom env reports '
                'it); use reward_gate="none" for other envs'
            ) from None

    @staticmethod
    def pushed(infos: list[dict] | tuple[dict, ...]) -> np.ndarray:
        """Whether each env's action pushed (``info["push"]["attempted"]``; ``reward_gate="push"``); a clear error
        for envs without it."""
        try:
            return np.array([bool(info["push"]["attempted"]) for info in infos])
        except (KeyError, TypeError):
            raise ValueError(
                'reward_gate="push" needs envs whose step info has "push" with "attempted" (every TDWRoom env '
                'reports it); use reward_gate="still" or "none" for other envs'
            ) from None

    def action_keys(self, actions: np.ndarray) -> np.ndarray:
        """Index of each action's running mean: the action of a Discrete space, the flat index of a
        MultiDiscrete one, 0 for other spaces."""
        space = self.action_space
        actions = np.asarray(actions)
        if isinstance(space, spaces.Discrete):
            return actions.reshape(-1).astype(np.int64) - int(space.start)
        if isinstance(space, spaces.MultiDiscrete):
            acts = actions.reshape(actions.shape[0], -1).astype(np.int64)
            return np.ravel_multi_index(tuple(acts.T), tuple(space.nvec.reshape(-1)))
        return np.zeros(len(actions), dtype=np.int64)

    def against_baseline(self, raw: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The surprise beyond what each action usually brings (``action_baseline``'s formula); updates the
        per-action running mean and variance with ``raw`` while training."""
        keys = self.action_keys(actions)
        mean = self.baseline_mean[keys]
        if self.action_baseline == "ratio":
            excess = np.maximum(raw / (mean + 1e-8) - 1.0, 0.0)
        elif self.action_baseline == "zscore":
            std = np.sqrt(self.baseline_var[keys]) + 1e-3 * mean + 1e-8
            excess = np.maximum((raw - mean) / std - self.zscore_threshold, 0.0)
        else:
            excess = np.maximum(raw - mean, 0.0)
        # an action seen fewer than BASELINE_WARMUP times has no baseline yet: no reward
        excess = np.where(self.baseline_count[keys] >= BASELINE_WARMUP, excess, 0.0)
        if self.action_baseline in ("zscore", "ratio"):
            excess = np.minimum(excess, MAX_EXCESS)
        if self.training:
            for key, value in zip(keys, raw, strict=True):
                self.baseline_count[key] += 1
                rate = max(self.baseline_rate, 1.0 / self.baseline_count[key])
                delta = value - self.baseline_mean[key]
                self.baseline_mean[key] += rate * delta
                self.baseline_var[key] = (1.0 - rate) * (self.baseline_var[key] + rate * delta * delta)
        return excess

    def normalize_intrinsic(self, raw: np.ndarray) -> np.ndarray:
        """Divide by the running std of the discounted intrinsic return (updated while training); clip."""
        if not self.normalize:
            return raw
        if self.training:
            self.int_returns = self.int_returns * self.gamma + raw
            self.int_ret_rms.update(self.int_returns)
            if self.norm_horizon is not None:
                self.int_ret_rms.count = min(self.int_ret_rms.count, float(self.norm_horizon))
        r = raw / np.sqrt(self.int_ret_rms.var + 1e-8)
        if self.clip_reward is not None:
            r = np.clip(r, 0.0, self.clip_reward)
        return r

    # ------------------------------------------------------------------------------------------------ logging

    def pop_stats(self) -> dict[str, float]:
        """Means since the last call, under ``curiosity/`` and ``world_model/`` (empties the accumulators).

        For Discrete and small MultiDiscrete action spaces also ``curiosity/action_share/<i>`` (how often action
        ``i`` was taken) and ``curiosity/reward_by_action/<i>`` (its mean normalised intrinsic reward): what the
        agent is being paid for.
        """
        out: dict[str, float] = {}
        if self._stats["raw"]:
            raw = np.asarray(self._stats["raw"])
            out["curiosity/intrinsic_reward_raw"] = float(raw.mean())
            out["curiosity/intrinsic_reward_excess"] = float(np.mean(self._stats["excess"]))
            out["curiosity/intrinsic_reward"] = float(np.mean(self._stats["norm"]))
            out["curiosity/intrinsic_return_std"] = float(np.sqrt(self.int_ret_rms.var))
        total = self._action_count.sum()
        if total and len(self._action_count) <= MAX_LOGGED_ACTIONS:
            for key in np.flatnonzero(self._action_count):
                out[f"curiosity/action_share/{key}"] = float(self._action_count[key] / total)
                out[f"curiosity/reward_by_action/{key}"] = float(self._action_reward[key] / self._action_count[key])
        self._action_count[:] = 0
        self._action_reward[:] = 0.0
        for v in self._stats.values():
            v.clear()
        lr = self.learner
        out["world_model/updates"] = float(lr.updates)
        out["world_model/buffer_size"] = float(len(lr.buffer))
        out["world_model/train_time_s"] = float(lr.train_time_s)
        for k, v in lr.last_metrics.items():
            out[f"world_model/{k}"] = float(v)
        return out

    # ------------------------------------------------------------------------------------------- save / load

    def settings(self) -> dict[str, Any]:
        """What the wrapper was built with, in full: the :class:`CuriosityConfig`, the world model's and the
        learner's arguments as used, and the constructor's other settings (no statistics, no weights)."""
        return {
            "config": dataclasses.asdict(self.config),
            "frame_channels": self.frame_channels,
            "frame_shape": list(self.frame_shape),
            "context_frames": self.context_frames,
            "normalize": self.normalize,
            "clip_reward": self.clip_reward,
            "baseline_rate": self.baseline_rate,
            "model_kwargs": dict(self.model_kwargs),
            "learner_kwargs": dict(self.learner_kwargs),
        }

    def get_statistics(self) -> dict[str, Any]:
        """Normalisation statistics, counters and :meth:`settings` (no model weights)."""
        return {
            "settings": self.settings(),
            "baseline_mean": self.baseline_mean.copy(),
            "baseline_var": self.baseline_var.copy(),
            "baseline_count": self.baseline_count.copy(),
            "int_ret_rms": {
                "mean": self.int_ret_rms.mean,
                "var": self.int_ret_rms.var,
                "count": self.int_ret_rms.count,
            },
            "int_returns": self.int_returns.copy(),
            "num_steps": self.num_steps,
        }

    def set_statistics(self, stats: dict[str, Any]) -> None:
        """Restore :meth:`get_statistics` output (normalisation and counters)."""
        rms = stats["int_ret_rms"]
        self.int_ret_rms.mean, self.int_ret_rms.var, self.int_ret_rms.count = rms["mean"], rms["var"], rms["count"]
        if len(stats["int_returns"]) == self.num_envs:
            self.int_returns = np.array(stats["int_returns"], dtype=np.float64)
        self.num_steps = int(stats["num_steps"])
        if len(stats["baseline_mean"]) == len(self.baseline_mean):
            self.baseline_mean = np.array(stats["baseline_mean"], dtype=np.float64)
            self.baseline_count = np.array(stats["baseline_count"], dtype=np.int64)
            self.baseline_var = np.array(stats["baseline_var"], dtype=np.float64)

    def save(self, save_path: str | os.PathLike) -> None:
        """Save the statistics as JSON (atomic). The world model is saved by :meth:`save_world_model`."""
        write_atomic(save_path, json.dumps(_plain(self.get_statistics())))

    def load_statistics(self, load_path: str | os.PathLike) -> None:
        """Restore statistics saved by :meth:`save` into this wrapper."""
        self.set_statistics(read_statistics(load_path))

    def save_world_model(self, path: str | os.PathLike) -> None:
        """Checkpoint the world model, its optimiser and buffer."""
        self.learner.save(path)

    def load_world_model(self, path: str | os.PathLike) -> None:
        """Restore a world-model checkpoint."""
        self.learner.load(path)

    @staticmethod
    def load(
        load_path: str | os.PathLike,
        venv: VecEnv,
        world_model_path: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        training: bool = True,
    ) -> CuriosityVecEnv:
        """Rebuild a wrapper around ``venv`` from saved statistics (and optionally a world-model checkpoint).

        Args:
            load_path: File written by :meth:`save`.
            venv: The environment to wrap.
            world_model_path: File written by :meth:`save_world_model`; ``None`` starts a fresh model.
            device: Device of the world model.
            training: Training flag of the new wrapper.

        Returns:
            The restored wrapper.

        Raises:
            ValueError: The file is damaged or not curiosity statistics; the message names it.
        """
        stats = read_statistics(load_path)
        try:
            saved = stats["settings"]
            config = CuriosityConfig(**saved["config"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{load_path} holds no curiosity statistics of this tdwgym ({exc!r} missing)") from None
        variant: WorldModel | None = None
        if world_model_path is not None:
            state = safe_load(world_model_path)
            variant = world_model_from_config(state["model_config"], device=device)
            config = dataclasses.replace(config, world_model=None)
        wrapper = CuriosityVecEnv(
            venv,
            variant,
            config,
            training=training,
            device=device,
            frame_channels=saved["frame_channels"],
            normalize=saved["normalize"],
            clip_reward=saved["clip_reward"],
            baseline_rate=saved["baseline_rate"],
            model_kwargs=saved["model_kwargs"],
            learner_kwargs=saved["learner_kwargs"],
        )
        wrapper.set_statistics(stats)
        if world_model_path is not None:
            wrapper.load_world_model(world_model_path)
        return wrapper
