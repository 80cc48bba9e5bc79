"""``tdwgym eval``: did the world model learn physics or memorise cases?

:func:`evaluate` loads a world model (from a training run folder or a checkpoint file) and writes ``report.json``,
``report.md`` and PNG plots with four sections:

1. **Prediction quality** on held-out episodes of ``test_id`` and ``test_ood``: MSE, MAE (summed over pixels per
   frame), PSNR and SSIM of 1-step and ``horizon``-step predictions (the model rolled forward on its own
   predictions with the recorded actions), always beside a copy-last-frame and a constant-velocity baseline
   (``x[t+1] = clip(2 x[t] - x[t-1])``). Models that predict features only (latent, RND, ICM) have no pixel
   prediction: their pixel metrics are marked not applicable.
2. **Violation of expectation**: matched possible/impossible clips of each impossible kind
   (:func:`tdwgym.envs.impossible.make_pairs`: same seed, still camera, no-op actions); surprise = the model's
   per-step prediction error, aggregated over the clip by mean and by max; per kind the pairwise accuracy
   (impossible more surprising than its twin) and AUROC.
3. **Physical-law probes** after Kang et al. 2024: for uniform-motion, collision and parabola clips the target
   object's image position is parsed by a colour mask from the model's open-loop predicted frames and from the
   true frames (the measurement floor); velocity error against the projected ground truth, in pixels per frame,
   separately for test_id and test_ood and per held-out factor.
4. **Exploration** of the run's agent (and of a random policy): pushes that moved an object, objects seen,
   floor-area coverage of the camera.

All metrics are the pure functions of :mod:`tdwgym.agents.metrics`. Every held-out episode of every section has a
number and seeds that depend on it only: :func:`evaluate_episodes` evaluates any subset of them (raw results),
:func:`merge_reports` builds the report from the parts, and :func:`evaluate` is the two in one process
(``tdwgym eval --ray`` spreads the episodes over a Ray cluster: :func:`tdwgym.agents.distributed.evaluate_on_ray`).

    tdwgym eval --run runs/curiosity                # report in runs/curiosity/eval/
    tdwgym eval --model world_model.pt --quick --out /tmp/eval
    tdwgym eval --run runs/curiosity --ray          # episodes as Ray tasks (pip install 'tdwgym[ray]')
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tdwgym.agents import metrics as M
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.external import ExternalModel, is_external_spec, load_external
from tdwgym.agents.models import (
    PRETRAINED,
    PixelOutput,
    Stream,
    WorldModel,
    load_world_model,
    resize_frames,
    resolve_model_path,
)
from tdwgym.agents.rundir import RunDir
from tdwgym.envs.impossible import make_pairs

import tdwgym  # noqa: F401 - registers the ids

__all__ = [
    "EvalEpisode",
    "EvalPlan",
    "EvalSettings",
    "LoadedRun",
    "ModelStepper",
    "count_episodes",
    "evaluate",
    "evaluate_episodes",
    "export_eval_sets",
    "frame_surprise",
    "load_run",
    "load_world_model",
    "merge_reports",
    "pixel_predictor",
    "voe_metrics",
]

PROBE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "uniform_motion": ("uniform", "occlusion", "roll", "slide"),
    "collision": ("collision",),
    "parabola": ("parabola", "projectile", "gravity", "throw", "ballistic", "launch"),
}
"""Probe kind -> words of env ids whose clips serve it (first registered match wins)."""

BASELINES = ("copy_last", "constant_velocity")
"""Pixel-space baselines reported beside every model."""

NOT_APPLICABLE = "n/a: the model predicts features, not pixels"

SHARED_KWARGS = ("level", "substeps", "backend", "backend_kwargs", "move_step", "turn_step", "pitch_step")
"""Env arguments of a run that carry over to the other scenarios' probe clips."""


# ------------------------------------------------------------------------------------------------- loading


@dataclass
class LoadedRun:
    """A world model and what came with it.

    Attributes:
        model: The world model (eval mode).
        model_path: Its checkpoint file.
        run_dir: The run folder, when it came from one.
        agent_path: The run's latest ``agent.zip``, if any.
        env_id: The env the model was trained on (``config.json``), or None.
        env_kwargs: The env's ``gym.make`` arguments from the run.
        frame_stack: Frames the agent stacks.
    """

    model: WorldModel
    model_path: Path
    run_dir: Path | None = None
    agent_path: Path | None = None
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    frame_stack: int = 1


def load_run(
    run_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> LoadedRun:
    """Find and load a world model from a run folder or a checkpoint file.

    A run folder (``tdwgym train``'s layout) holds ``config.json`` and ``checkpoints/latest.json`` naming a
    checkpoint folder with ``world_model.pt`` (and ``agent.zip``); a ``world_model.pt`` directly in the folder
    also counts.

    Raises:
        FileNotFoundError: The folder or file does not exist, or the folder holds no world model.
        ValueError: Neither or both of ``run_dir`` and ``model_path`` given, or a file that is no checkpoint.
    """
    if (run_dir is None) == (model_path is None):
        raise ValueError("pass exactly one of run_dir (a training run folder) and model_path (a world_model.pt)")
    if model_path is not None and is_external_spec(model_path):
        return LoadedRun(load_external(str(model_path)), Path(str(model_path).rsplit(":", 1)[0]))
    if model_path is not None:
        path = resolve_model_path(model_path)
        if path.is_dir():
            return load_run(run_dir=path, device=device)
        return LoadedRun(load_world_model(path, device), path)
    run = Path(run_dir)  # type: ignore[arg-type]
    if not run.exists():
        raise FileNotFoundError(f"run directory {run} does not exist")
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} is not a folder (pass a checkpoint file with --model)")
    ckpt = RunDir(run).latest_checkpoint()  # a damaged latest.json: the newest complete checkpoint, with a warning
    candidates = ([ckpt / "world_model.pt"] if ckpt is not None else []) + [run / "world_model.pt"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f"run directory {run} holds no world model: expected checkpoints/latest.json naming a checkpoint "
            "folder with world_model.pt (written by `tdwgym train` with a curiosity variant), or world_model.pt "
            "in the folder"
        )
    cfg = RunDir(run).read_config()
    agent = next((c for c in ([ckpt / "agent.zip"] if ckpt else []) + [run / "agent.zip"] if c.is_file()), None)
    return LoadedRun(
        load_world_model(found, device),
        found,
        run,
        agent,
        cfg.get("env_id"),
        dict(cfg.get("env_kwargs") or {}),
        int(cfg.get("frame_stack", 1) or 1),
    )


def pixel_predictor(model: WorldModel) -> WorldModel | None:
    """The model inside ``model`` that predicts frames (itself, or the base of a learning-progress wrapper): a
    :class:`~tdwgym.agents.models.PixelOutput` model such as ``pixel`` or ``recurrent``; None for feature models."""
    if isinstance(model, PixelOutput) or (isinstance(model, ExternalModel) and model.predicts):
        return model
    base = getattr(model, "base", None)
    return base if isinstance(base, PixelOutput) else None


def _chw(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8).transpose(2, 0, 1))


class ModelStepper:
    """Steps a world model along an episode: surprise and (pixel models) the predicted frame at every step.

    A :class:`~tdwgym.agents.models.Stream` carries the model's context and memory, as in the curiosity wrapper:
    the first frame fills the ``k``-frame context, and a model with memory keeps it for the whole episode.
    Observations of another size than the model's frames are area-resized to them
    (:func:`~tdwgym.agents.models.resize_frames`), as in training; :attr:`seen` is the latest observation as the
    model saw it.
    """

    def __init__(self, model: WorldModel) -> None:
        self.model = model.eval()
        self.stream: Stream | None = None
        self._seen: np.ndarray | None = None

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` uint8 at the model's size."""
        return resize_frames(torch.from_numpy(np.ascontiguousarray(_chw(obs))), self.model.frame_shape[1:]).numpy()

    @property
    def seen(self) -> np.ndarray:
        """The latest observation (of :meth:`reset` or :meth:`step`) at the model's frame size, ``(h, w, 3)``."""
        assert self._seen is not None, "reset() first"
        return self._seen.transpose(1, 2, 0)

    def reset(self, obs: np.ndarray) -> None:
        """Start an episode at ``obs`` (``(H, W, 3)`` uint8)."""
        self._seen = self._frame(obs)
        self.stream = Stream(self.model, torch.from_numpy(self._seen)[None])

    @torch.no_grad()
    def step(self, action: Any, obs: np.ndarray, action_space: gym.Space) -> tuple[float, np.ndarray | None]:
        """Score the transition to ``obs`` after ``action``.

        Returns:
            The surprise and the predicted frame (``(H, W, 3)`` floats in [0, 1], or None for feature models).
        """
        if self.stream is None:
            raise RuntimeError("ModelStepper.step() before reset()")
        act = torch.from_numpy(actions_to_vectors(np.asarray([action]), action_space))
        frame = self._frame(obs)
        # one forward pass gives both the surprise and the frame
        surprise, _, predicted = self.stream.step(act, torch.from_numpy(frame)[None])
        self._seen = frame
        pred = None if predicted is None else predicted.clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        return float(surprise[0]), pred


# -------------------------------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One recorded clip: ``T`` frames and the ``T - 1`` actions between them."""

    frames: np.ndarray
    """``(T, H, W, 3)`` uint8."""
    segmentation: np.ndarray
    """``(T, H, W)`` int32 object ids."""
    actions: np.ndarray
    """``(T - 1, A)`` float32 action vectors (one-hot for discrete actions)."""
    infos: list[dict[str, Any]]
    """``T`` infos, the reset's first."""
    labels: dict[str, Any]
    """The scene's labels."""
    fov: float
    """Vertical field of view of the camera in degrees."""
    room: tuple[float, float]
    """Room (width, length) in metres."""


def _noop(space: gym.Space) -> Any:
    return 0 if isinstance(space, gym.spaces.Discrete) else np.zeros(space.shape, dtype=space.dtype)


def run_episode(env: gym.Env, steps: int, seed: int, act: Callable[[Any], Any] | None = None) -> Episode:
    """Reset ``env`` (obs_mode ``rgb_seg``) with ``seed`` and run ``steps`` steps of ``act`` (default: no-ops)."""
    obs, info = env.reset(seed=seed)
    frames, segs, actions, infos = [obs["rgb"]], [obs["segmentation"]], [], [info]
    for _ in range(steps):
        action = act(obs["rgb"]) if act is not None else _noop(env.action_space)
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs["rgb"])
        segs.append(obs["segmentation"])
        actions.append(action)
        infos.append(info)
        if terminated or truncated:
            break
    scene = env.unwrapped.scene
    vecs = actions_to_vectors(np.asarray(actions), env.action_space) if actions else np.zeros((0, 1), np.float32)
    return Episode(
        np.stack(frames),
        np.stack(segs),
        vecs,
        infos,
        dict(scene.labels),
        float(scene.camera.fov),
        (float(scene.room.width), float(scene.room.length)),
    )


@torch.no_grad()
def clips_surprise(model: WorldModel, frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The model's surprise of every transition of ``N`` clips of equal length, stepped side by side through a
    :class:`~tdwgym.agents.models.Stream` (models with memory carry it through each whole clip).

    Args:
        model: The world model.
        frames: ``(N, T, H, W, 3)`` uint8.
        actions: ``(N, T - 1, A)`` float32 action vectors (:func:`tdwgym.agents.curiosity.actions_to_vectors`).

    Returns:
        ``(N, T - 1)``: entry ``t`` is the surprise of frame ``t + 1``.
    """
    if isinstance(model, ExternalModel):
        return np.stack([model.clip_scores(clip) for clip in frames])
    chw = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3)))
    acts = torch.from_numpy(np.asarray(actions, dtype=np.float32))
    n, t = chw.shape[:2]
    if t < 2:
        return np.zeros((n, 0))
    stream = Stream(model, chw[:, 0])
    out = [stream.step(acts[:, i], chw[:, i + 1])[0].float().cpu().numpy() for i in range(t - 1)]
    return np.stack(out, axis=1)


def frame_surprise(model: WorldModel, frames: np.ndarray, actions: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """The model's surprise of every transition of one clip (``T - 1`` values): :func:`clips_surprise` of one.

    Args:
        model: The world model.
        frames: ``(T, H, W, 3)`` uint8.
        actions: ``(T - 1, A)`` float32 action vectors (:func:`tdwgym.agents.curiosity.actions_to_vectors`).
        batch_size: Unused (kept for callers of earlier releases).
    """
    return clips_surprise(model, frames[None], np.asarray(actions)[None])[0]


def episode_surprise(model: WorldModel, ep: Episode, batch_size: int = 128) -> np.ndarray:
    """The model's surprise of every transition of ``ep`` (``T - 1`` values)."""
    return frame_surprise(model, ep.frames, ep.actions, batch_size)


@torch.no_grad()
def rollout_predictions(model: WorldModel, ep: Episode, starts: Sequence[int], horizon: int) -> np.ndarray:
    """Open-loop predictions: the model steps along the true frames up to each start frame (building its context
    and memory), then rolls ``horizon`` frames on its own (clamped) predictions with the episode's actions.

    Args:
        model: A model that predicts frames (:func:`pixel_predictor`).

    Returns:
        ``(len(starts), horizon, H, W, 3)`` floats in [0, 1].
    """
    if isinstance(model, ExternalModel):
        k = model.context_frames
        return np.stack([model.rollout(ep.frames[max(0, t - k + 1) : t + 1], horizon) for t in starts])
    chw = torch.from_numpy(np.ascontiguousarray(ep.frames.transpose(0, 3, 1, 2))).float().div_(255.0)
    acts = torch.from_numpy(np.asarray(ep.actions, dtype=np.float32))
    stream = Stream(model, chw[:1])
    snapshots = {}
    for t in range(max(starts) + 1):
        if t in starts:
            snapshots[t] = stream.select([0])
        if t < max(starts):
            stream.advance(stream.prepare(acts[t : t + 1]), acts[t : t + 1], chw[t + 1 : t + 2])
    rolling = Stream.stack([snapshots[t] for t in starts])
    steps = torch.stack([acts[t : t + horizon] for t in starts])
    preds = []
    for h in range(horizon):
        prepared = rolling.prepare(steps[:, h])
        pred = model.predicted_frame(prepared).clamp(0.0, 1.0)  # type: ignore[union-attr]
        preds.append(pred.cpu())
        rolling.advance(prepared, steps[:, h], pred)
    return torch.stack(preds, dim=1).permute(0, 1, 3, 4, 2).numpy()


def _frame_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    return {"mse": M.mse(pred, true), "mae": M.mae(pred, true), "psnr": M.psnr(pred, true), "ssim": M.ssim(pred, true)}


# -------------------------------------------------------------------------------------------------- settings


@dataclass
class EvalSettings:
    """Sizes of the evaluation (defaults: a couple of minutes on 2 CPU cores for a 64x64 model)."""

    episodes: int = 6
    """Held-out episodes per split for prediction quality."""
    frames: int = 32
    """Steps per prediction episode."""
    horizon: int = 8
    """Steps of the multi-step prediction."""
    policy: str = "random"
    """Who acts in the prediction episodes: a built-in policy name (random, static, orbit)."""
    voe_pairs: int = 24
    """Matched possible/impossible pairs per impossible kind (24: one pair moves an accuracy by at most 0.05)."""
    voe_post_frames: int = 30
    """Frames after the impossible event in every VoE clip."""
    voe_kinds: list[str] | None = None
    """Impossible kinds to test (default: all the env supports)."""
    probe_clips: int = 6
    """Clips per probe kind and split."""
    probe_frames: int = 20
    """Frames per probe clip (the first ``k`` are context, the rest predicted open-loop)."""
    exploration_episodes: int = 2
    """Episodes per policy for the exploration metrics."""
    exploration_steps: int = 150
    """Steps per exploration episode."""
    seed: int = 10_000
    """First seed of the held-out episodes (training uses small seeds)."""

    @classmethod
    def quick(cls) -> EvalSettings:
        """A tiny setting for tests and smoke runs (seconds)."""
        return cls(
            episodes=1,
            frames=8,
            horizon=3,
            voe_pairs=2,
            voe_post_frames=4,
            voe_kinds=["vanish", "teleport"],
            probe_clips=1,
            probe_frames=6,
            exploration_episodes=1,
            exploration_steps=10,
        )


# -------------------------------------------------------------------------------------------------- sections


SECTIONS: dict[str, str] = {
    "prediction": "prediction quality",
    "voe": "violation of expectation",
    "probes": "physical-law probes",
    "exploration": "exploration",
}
"""The report's sections in order -> their titles in progress lines."""

SPLITS = ("test_id", "test_ood")
"""Held-out splits of the prediction and probe sections."""

PROBE_CONTEXT = 4
"""At most this many true frames start a probe clip (a model's ``k`` when smaller); the rest it predicts
open-loop. Models with memory build it from these frames."""

PROBE_TOLERANCE = 0.15
"""Colour distance (on [0, 1] RGB) within which a pixel counts as the probe's target object."""


@dataclass(frozen=True)
class EvalEpisode:
    """One held-out episode of the evaluation: what an index of :func:`count_episodes` stands for."""

    index: int
    """Its number, ``0 .. count_episodes() - 1``."""
    section: str
    """``prediction``, ``voe``, ``probes`` or ``exploration`` (:data:`SECTIONS`)."""
    group: tuple[str, ...]
    """What its section aggregates it under: ``(split,)``, ``(kind,)``, ``(probe kind, env id, split)`` or
    ``(policy,)``."""
    seed: int
    """Its reset seed: a function of the settings and its place in its group only."""


@dataclass
class EvalPlan:
    """What :func:`evaluate`'s arguments resolve to: the model, the settings and the numbered episodes.

    Every seam (:func:`count_episodes`, :func:`evaluate_episodes`, :func:`merge_reports`) builds the same plan
    from the same arguments, on whichever machine it runs.
    """

    loaded: LoadedRun
    """The world model (and the run's agent)."""
    settings: EvalSettings
    """Sizes of the evaluation, overrides applied."""
    env_id: str
    """The env of the prediction, VoE and exploration sections."""
    env_kwargs: dict[str, Any]
    """The run's env arguments (when ``env_id`` is the run's env)."""
    out_dir: Path
    """Where the report goes."""
    device: torch.device
    """Torch device of the model."""
    voe_kinds: list[str]
    """Impossible kinds of the VoE section (those of the settings the env supports)."""
    action_space: gym.Space
    """The env's action space (the VoE clips' actions are encoded for the model with it)."""
    probe_envs: dict[str, str]
    """Probe kind -> env id."""
    episodes: list[EvalEpisode]
    """All held-out episodes, numbered."""


def _env_kwargs(env_kwargs: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in env_kwargs.items() if k not in ("obs_mode", "render_mode", *drop)}


def _make_env(env_id: str, model: WorldModel, env_kwargs: dict[str, Any], **extra: Any) -> gym.Env:
    kwargs = _env_kwargs(env_kwargs)
    kwargs.update(resolution=tuple(model.frame_shape[1:]), obs_mode="rgb_seg", **extra)
    return gym.make(env_id, **kwargs)


def _mean(values: Sequence[float] | np.ndarray) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def _plan(
    run_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    env_id: str | None = None,
    episodes: int | None = None,
    frames: int | None = None,
    out: str | os.PathLike | None = None,
    quick: bool = False,
    settings: EvalSettings | None = None,
    probe_envs: dict[str, str] | None = None,
    device: str = "auto",
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    loaded: LoadedRun | None = None,
) -> EvalPlan:
    """Resolve :func:`evaluate`'s arguments (see there) into an :class:`EvalPlan`; loads the model (unless
    ``loaded`` is given)."""
    dev = resolve_device(device)
    loaded = loaded or load_run(run_dir=run_dir, model_path=model_path, device=dev)
    s = copy.deepcopy(settings) if settings is not None else (EvalSettings.quick() if quick else EvalSettings())
    if episodes is not None:
        s.episodes = int(episodes)
    if frames is not None:
        s.frames = int(frames)
    env_id = env_id or loaded.env_id or "TDWRoom-Occlusion-v0"
    if env_id not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}; registered tdwgym ids: {sorted(tdwgym.ENV_IDS)}")
    env_kwargs = {**(loaded.env_kwargs if env_id == loaded.env_id else {}), **(env_kwargs or {})}
    if out is not None:
        out_dir = Path(out)
    elif loaded.run_dir is None and (loaded.model_path == PRETRAINED or isinstance(loaded.model, ExternalModel)):
        out_dir = Path("runs") / f"eval-{'pretrained' if loaded.model_path == PRETRAINED else loaded.model_path.stem}"
    else:
        out_dir = (loaded.run_dir or loaded.model_path.parent) / "eval"
    env = gym.make(env_id, **{**_env_kwargs(env_kwargs, "split"), "resolution": 8})
    supported = tuple(getattr(env.unwrapped, "SUPPORTED_IMPOSSIBLE", ()))
    action_space = env.action_space
    env.close()
    voe_kinds = [k for k in (s.voe_kinds or supported) if k in supported]
    envs = dict(probe_envs) if probe_envs is not None else _probe_envs(None)
    policies = ["random"] + (["agent"] if loaded.agent_path is not None else [])

    eps: list[EvalEpisode] = []

    def add(section: str, group: tuple[str, ...], seed: int) -> None:
        eps.append(EvalEpisode(len(eps), section, group, seed))

    for si, split in enumerate(SPLITS):
        for e in range(s.episodes):
            add("prediction", (split,), s.seed + 1000 * si + e)
    for ki, kind in enumerate(voe_kinds):
        for i in range(s.voe_pairs):
            add("voe", (kind,), s.seed + 50_000 + 1000 * ki + i)
    for kind, probe_env in envs.items():
        for si, split in enumerate(SPLITS):
            for c in range(s.probe_clips):
                add("probes", (kind, probe_env, split), s.seed + 70_000 + 1000 * si + c)
    for name in policies:
        for e in range(s.exploration_episodes):
            add("exploration", (name,), s.seed + 90_000 + e)
    return EvalPlan(loaded, s, env_id, env_kwargs, out_dir, dev, voe_kinds, action_space, envs, eps)


def _predict_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, Any]:
    """One prediction episode: per-step surprise, and per predictor/metric the ``(starts, horizon)`` errors."""
    from tdwgym.policies import load_policy

    s, model = plan.settings, plan.loaded.model
    pixel = pixel_predictor(model)
    (split,) = ep_.group
    with contextlib.closing(_make_env(plan.env_id, model, plan.env_kwargs, split=split)) as env:
        ep = run_episode(env, s.frames, ep_.seed, load_policy(s.policy, env, ep_.seed))
    out: dict[str, Any] = {"surprise": episode_surprise(model, ep), "1-step": {}, "multi-step": {}}
    t_last = len(ep.frames) - 1
    true = M.as_unit_float(ep.frames)
    starts1 = list(range(1, t_last))
    startsh = list(range(1, t_last - s.horizon + 1))
    for starts, horizon, store in ((starts1, 1, out["1-step"]), (startsh, s.horizon, out["multi-step"])):
        if not starts:
            continue
        targets = np.stack([true[t + 1 : t + 1 + horizon] for t in starts])
        preds = {
            "copy_last": np.stack([M.copy_last_rollout(true[t - 1 : t + 1], horizon) for t in starts]),
            "constant_velocity": np.stack([M.constant_velocity_rollout(true[t - 1 : t + 1], horizon) for t in starts]),
        }
        if pixel is not None:
            preds["model"] = rollout_predictions(pixel, ep, starts, horizon)
        for name, pred in preds.items():
            for metric, vals in _frame_metrics(pred, targets).items():
                store[f"{name}/{metric}"] = vals
    return out


def _prediction_summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 1: 1-step and multi-step prediction quality per split, model beside the baselines."""
    s = plan.settings
    pixel = pixel_predictor(plan.loaded.model)
    out: dict[str, Any] = {
        "horizon": s.horizon,
        "policy": s.policy,
        "episodes": s.episodes,
        "frames": s.frames,
        "pixel_model": pixel is not None,
    }
    if pixel is None:
        out["note"] = NOT_APPLICABLE
    for split in SPLITS:
        results = [r for ep, r in done if ep.group == (split,)]
        surprise = [float(v) for r in results for v in r["surprise"]]
        res: dict[str, Any] = {"surprise_mean": _mean(surprise)}
        for label, part in (("1-step", "1-step"), (f"{s.horizon}-step", "multi-step")):
            store: dict[str, list[np.ndarray]] = defaultdict(list)
            for r in results:
                for key, vals in r[part].items():
                    store[key].append(vals)
            table: dict[str, Any] = {}
            curve: dict[str, Any] = {}
            for key, chunks in store.items():
                name, metric = key.split("/")
                arr = np.concatenate(chunks, axis=0)  # (n, horizon)
                table.setdefault(name, {})[metric] = _mean(arr)
                if label != "1-step":
                    curve.setdefault(name, {})[metric] = [float(v) for v in arr.mean(axis=0)]
                table[name]["n"] = int(arr.shape[0])
            if pixel is None:
                table["model"] = NOT_APPLICABLE
            res[label] = table
            if curve:
                res[f"{label} curve"] = curve
        out[split] = res
    return out


def _baseline_surprise(frames: np.ndarray, name: str) -> np.ndarray:
    """Per-step 1-step MSE of a pixel baseline (its "surprise") along ``(T, H, W, 3)`` uint8 frames."""
    true = M.as_unit_float(frames)
    errs = []
    for t in range(len(true) - 1):
        ctx = true[max(t - 1, 0) : t + 1]
        pred = M.copy_last_rollout(ctx, 1) if name == "copy_last" else M.constant_velocity_rollout(ctx, 1)
        errs.append(float(M.mse(pred[0], true[t + 1])))
    return np.asarray(errs)


VOE_HEADLINE = "mean"
"""The aggregation of the headline VoE figures, declared before measuring on the evaluation seeds: chosen on the
development seeds 90000-90011 (Occlusion levels 0 and 1, the pretrained model), where the mean was at least as
accurate as the max on every kind (docs/world_models.md). Both are reported."""

VOE_REDRAWS = 4
"""Seeds tried after the first when a pair's twins never differ visibly (then the next seed is drawn)."""


def _draw_pair(plan: EvalPlan, ep: EvalEpisode) -> tuple[Any, int]:
    """The matched pair of a VoE episode and how many seeds were re-drawn (the pair is None if none differed)."""
    (kind,) = ep.group
    for redraw in range(VOE_REDRAWS + 1):
        found = make_pairs(
            plan.env_id,
            ep.seed + 100_003 * redraw,
            kinds=kind,
            camera="static",
            resolution=tuple(plan.loaded.model.frame_shape[1:]),
            post_frames=plan.settings.voe_post_frames,
            **{**_env_kwargs(plan.env_kwargs, "resolution"), "split": "test_id"},
        )
        if found:
            return found[0], redraw
    return None, VOE_REDRAWS


def _probe_clip(plan: EvalPlan, ep_: EvalEpisode) -> Episode:
    """The clip of a probe episode (the run's env settings apply to its own env; other scenarios get only the
    shared base-class ones)."""
    _, env_id, split = ep_.group
    env_kwargs = plan.env_kwargs
    kw = env_kwargs if env_id == plan.env_id else {n: v for n, v in env_kwargs.items() if n in SHARED_KWARGS}
    with contextlib.closing(_make_env(env_id, plan.loaded.model, kw, split=split)) as env:
        return run_episode(env, plan.settings.probe_frames - 1, ep_.seed)


def _voe_episode(plan: EvalPlan, ep: EvalEpisode) -> dict[str, Any]:
    """One matched pair (:func:`tdwgym.envs.impossible.make_pairs`, still camera, test_id scene, running
    ``voe_post_frames`` steps past the event, extended or re-drawn until the twins differ visibly): each scorer's
    per-step surprise of (possible, impossible) from the event frame on, and how the pair was drawn."""
    model = plan.loaded.model
    pair, redraw = _draw_pair(plan, ep)
    if pair is None:
        return {"skipped": f"no seed of {VOE_REDRAWS + 1} gave twins that differ visibly"}
    actions = actions_to_vectors(np.asarray(pair.actions), plan.action_space)  # no-ops: the camera stands still
    # the model sees whole clips (its memory needs what came before); the twins are compared from the event frame
    # on (entry t is the surprise of frame t + 1), where they can differ
    window = slice(max(pair.event_frame - 1, 0), None)
    both = clips_surprise(model, np.stack([pair.possible, pair.impossible]), np.stack([actions, actions]))
    out: dict[str, Any] = {
        "seed": pair.seed,
        "event_frame": pair.event_frame,
        "extended": pair.extended,
        "redrawn": redraw,
        "model": (both[0][window], both[1][window]),
    }
    for b in BASELINES:
        out[b] = (_baseline_surprise(pair.possible, b)[window], _baseline_surprise(pair.impossible, b)[window])
    return out


def bootstrap_ci(
    impossible: Sequence[float], possible: Sequence[float], n: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """Bootstrap confidence intervals (pairs resampled with replacement) of pairwise accuracy and AUROC."""
    imp, pos = np.asarray(impossible, dtype=np.float64), np.asarray(possible, dtype=np.float64)
    rng = np.random.default_rng(seed)
    accs, aucs = [], []
    for _ in range(n):
        idx = rng.integers(0, len(imp), len(imp))
        accs.append(M.pairwise_accuracy(imp[idx], pos[idx]))
        aucs.append(M.auroc(imp[idx], pos[idx]))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {
        "pairwise_accuracy_ci": [float(v) for v in np.percentile(accs, q)],
        "auroc_ci": [float(v) for v in np.percentile(aucs, q)],
    }


def voe_metrics(per_step: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """VoE metrics of matched pairs from their per-step surprise (over the window where the twins can differ).

    Args:
        per_step: One ``(possible, impossible)`` pair of per-step surprise arrays per matched pair.

    Returns:
        For ``"mean"`` and ``"max"`` aggregation over time: ``pairwise_accuracy``, ``auroc`` (impossible clips
        as positives), their 95 % bootstrap intervals, and the mean clip surprise of each side.
    """
    out: dict[str, dict[str, Any]] = {}
    for how in ("mean", "max"):
        pos = [M.aggregate_surprise(p, how) for p, _ in per_step]
        imp = [M.aggregate_surprise(i, how) for _, i in per_step]
        out[how] = {
            "pairwise_accuracy": M.pairwise_accuracy(imp, pos),
            "auroc": M.auroc(imp, pos),
            **bootstrap_ci(imp, pos),
            "surprise_possible": _mean(pos),
            "surprise_impossible": _mean(imp),
        }
    return out


def _voe_summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 2: violation of expectation per impossible kind (pairwise accuracy, AUROC and their bootstrap
    intervals, by mean and by max over the window from the event frame on; the headline is
    :data:`VOE_HEADLINE`)."""
    out: dict[str, Any] = {
        "env_id": plan.env_id,
        "level": plan.env_kwargs.get("level", 0),
        "pairs_per_kind": plan.settings.voe_pairs,
        "headline": VOE_HEADLINE,
        "window": "from the event frame to the end of the clip",
        "kinds": {},
    }
    if not plan.voe_kinds:
        out["note"] = f"{plan.env_id} stages no impossible events (SUPPORTED_IMPOSSIBLE is empty)"
        return out
    all_pairs: dict[str, list] = defaultdict(list)
    drawn = observable = 0
    for kind in plan.voe_kinds:
        results = [r for ep, r in done if ep.group == (kind,)]
        pairs = [r for r in results if "skipped" not in r]
        first = sum(1 for r in pairs if r["extended"] == 0 and r["redrawn"] == 0)
        drawn, observable = drawn + len(results), observable + first
        res: dict[str, Any] = {
            "n_pairs": len(pairs),
            "observable_fraction": first / len(results) if results else None,
            "extended": sum(1 for r in pairs if r["extended"]),
            "redrawn": sum(1 for r in pairs if r["redrawn"]),
            "skipped": len(results) - len(pairs),
        }
        if pairs:
            for name in ("model", *BASELINES):
                per_step = [r[name] for r in pairs]
                res[name] = voe_metrics(per_step)
                all_pairs[name] += per_step
        out["kinds"][kind] = res
    out["observable_fraction"] = observable / drawn if drawn else None
    out["all"] = {name: voe_metrics(per_step) for name, per_step in all_pairs.items()}
    return out


def _probe_envs(preferred: str | None) -> dict[str, str]:
    ids = sorted(tdwgym.ENV_IDS)
    found = {}
    for kind, words in PROBE_KEYWORDS.items():
        for word in words:
            match = next((i for i in ids if word in i.lower()), None)
            if match:
                found[kind] = match
                break
    return found


def _factor_keys(labels: dict[str, Any]) -> list[str]:
    """Held-out factor keys of a test_ood scene: ``"speed:high"``, ``"size:low"``, ``"shape+color combination"``."""
    bands = labels.get("factor_bands") or {}
    factors = labels.get("ood_factors") or []
    keys = [f"{f}:{bands.get(f, 'held_out')}" for f in factors if bands.get(f) != "combination"]
    combo = [f for f in factors if bands.get(f) == "combination"]
    if combo or labels.get("ood_combination"):
        keys.append("+".join(combo) + " combination" if combo else "combination")
    return keys or ["(none)"]


def _probe_targets(ep: Episode) -> list[int]:
    """Object ids to track, best first: the parabola arcs of a gravity scene, the labelled event object, the rest."""
    ids = sorted(int(i) for i in ep.infos[0].get("objects", {}))
    motions = ep.labels.get("motions") or []
    first = [i + 1 for i, m in enumerate(motions) if m == "arc"] + [int(ep.labels.get("event_object", 1))]
    return list(dict.fromkeys([i for i in first if i in ids] + ids))


def _object_colour(ep: Episode, oid: int, t: int) -> np.ndarray | None:
    mask = ep.segmentation[t] == oid
    if mask.sum() < 2:
        return None
    return M.as_unit_float(ep.frames[t])[mask].mean(axis=0)


def _probe_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, Any]:
    """One probe clip: velocity errors of the target parsed from the model's predictions, the true frames (the
    floor) and a frozen last frame, against the projected ground truth; or why it was skipped."""
    model = plan.loaded.model
    pixel = pixel_predictor(model)
    _, env_id, split = ep_.group
    k = min(model.context_frames, PROBE_CONTEXT)
    h, w = model.frame_shape[1:]
    ep = _probe_clip(plan, ep_)
    oid, colour = next(
        ((o, c) for o in _probe_targets(ep) if (c := _object_colour(ep, o, k - 1)) is not None),
        (None, None),
    )
    if colour is None or oid is None:
        return {"skipped": "target not visible in the context frames"}
    gt = np.stack(
        [
            M.project_points(
                i["objects"][oid]["position"],
                i["camera"]["position"],
                i["camera"]["yaw"],
                i["camera"]["pitch"],
                ep.fov,
                w,
                h,
            )
            for i in ep.infos
        ]
    )
    window = slice(k, len(ep.frames))
    true_pos = M.color_mask_positions(ep.frames, colour, PROBE_TOLERANCE)
    row = {
        "seed": ep_.seed,
        "factors": _factor_keys(ep.labels),
        "floor": M.velocity_error(true_pos[window], gt[window]),
    }
    horizon = len(ep.frames) - k
    if horizon >= 2:
        ctx = M.as_unit_float(ep.frames[:k])
        row["copy_last"] = M.velocity_error(
            M.color_mask_positions(M.copy_last_rollout(ctx, horizon), colour, PROBE_TOLERANCE), gt[window]
        )
        if pixel is not None:
            pred = rollout_predictions(pixel, ep, [k - 1], horizon)[0]
            row["model"] = M.velocity_error(M.color_mask_positions(pred, colour, PROBE_TOLERANCE), gt[window])
    return row


def _probe_summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 3: velocity error of objects parsed from predicted frames vs true frames (the floor)."""
    s = plan.settings
    pixel = pixel_predictor(plan.loaded.model)
    out: dict[str, Any] = {
        "unit": "pixels per frame",
        "frames": s.probe_frames,
        "clips": s.probe_clips,
        "probe_envs": plan.probe_envs,
        "kinds": {},
    }
    missing = [k for k in PROBE_KEYWORDS if k not in plan.probe_envs]
    if missing:
        out["missing_kinds"] = {k: "no registered env provides these clips" for k in missing}
    if pixel is None:
        out["note"] = NOT_APPLICABLE + " (only the parser's floor is reported)"
    for kind, env_id in plan.probe_envs.items():
        kind_out: dict[str, Any] = {"env_id": env_id}
        for split in SPLITS:
            rows = [r for ep, r in done if ep.group == (kind, env_id, split)]
            valid = [r for r in rows if "floor" in r]
            summary: dict[str, Any] = {"n": len(valid), "skipped": len(rows) - len(valid)}
            for name in ("model", "floor", "copy_last"):
                if any(name in r for r in valid):
                    summary[name] = _mean([r.get(name, np.nan) for r in valid])
                    summary[f"{name}_parsed"] = int(sum(np.isfinite(r.get(name, np.nan)) for r in valid))
            if pixel is None:
                summary["model"] = NOT_APPLICABLE
            if split == "test_ood":
                by: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
                for r in valid:
                    for key in r["factors"]:
                        for name in ("model", "floor", "copy_last"):
                            if name in r:
                                by[key][name].append(r[name])
                summary["by_factor"] = {
                    key: {name: _mean(v) for name, v in d.items()} | {"n": len(d["floor"])}
                    for key, d in sorted(by.items())
                }
            kind_out[split] = summary
        out["kinds"][kind] = kind_out
    return out


def _exploration_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, float]:
    """One exploration episode of a policy: pushes, objects seen, floor coverage."""
    from tdwgym.policies import load_policy

    loaded, s = plan.loaded, plan.settings
    (name,) = ep_.group
    # the agent acts at the resolution it was trained at (the world model plays no part in this section)
    kwargs = {**_env_kwargs(plan.env_kwargs), "obs_mode": "rgb_seg", "split": "test_id"}
    with contextlib.closing(gym.make(plan.env_id, **kwargs)) as env:
        if name == "agent":
            spec, frame_stack, device = str(loaded.agent_path), loaded.frame_stack, str(plan.device)
            pol = load_policy(spec, env, ep_.seed, frame_stack=frame_stack, device=device)
        else:
            pol = load_policy(name, env, ep_.seed)
        ep = run_episode(env, s.exploration_steps, ep_.seed, pol)
    row = M.exploration_counts(ep.infos[1:])
    row["objects_total"] = float(len(ep.infos[0].get("objects", {})))
    poses = [(i["camera"]["position"], i["camera"]["yaw"], i["camera"]["pitch"]) for i in ep.infos]
    row["floor_coverage"] = M.floor_coverage(poses, ep.room, ep.fov, aspect=ep.frames.shape[2] / ep.frames.shape[1])
    return row


def _exploration_summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 4: pushes that moved an object, objects seen, floor coverage; the run's agent beside random."""
    s = plan.settings
    out: dict[str, Any] = {"episodes": s.exploration_episodes, "steps": s.exploration_steps, "policies": {}}
    for name in dict.fromkeys(ep.group[0] for ep, _ in done):
        rows = [r for ep, r in done if ep.group == (name,)]
        agg = {key: _mean([r[key] for r in rows]) for key in rows[0]}
        agg["pushes_moved_per_1k"] = 1000.0 * (agg["pushes_moved"] or 0.0) / max(agg["steps"] or 1.0, 1.0)
        out["policies"][name] = agg
    if plan.loaded.agent_path is None:
        out["note"] = "no agent in the run: the random policy only"
    return out


_RUN_EPISODE: dict[str, Callable[[EvalPlan, EvalEpisode], Any]] = {
    "prediction": _predict_episode,
    "voe": _voe_episode,
    "probes": _probe_episode,
    "exploration": _exploration_episode,
}
_SUMMARY: dict[str, Callable[[EvalPlan, list[tuple[EvalEpisode, Any]]], dict[str, Any]]] = {
    "prediction": _prediction_summary,
    "voe": _voe_summary,
    "probes": _probe_summary,
    "exploration": _exploration_summary,
}


# ---------------------------------------------------------------------------------------------------- report


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def write_markdown(report: dict[str, Any], path: Path, plots: dict[str, str]) -> Path:
    """``report.md``: the report's tables and plots."""
    meta = report["meta"]
    lines = [
        f"# World-model evaluation: {meta['model']}",
        "",
        f"env `{meta['env_id']}`, model `{meta['model_name']}` (frames {meta['frame_shape']}, "
        f"k={meta['context_frames']}), {meta['wall_time_s']:.0f} s on {meta['device']}.",
        "",
    ]
    pred = report["prediction"]
    lines += [
        "## 1. Prediction quality",
        "",
        f"{pred['episodes']} held-out episodes of {pred['frames']} steps per split, policy `{pred['policy']}`. "
        "MSE and MAE are summed over the pixels of a frame ([0, 1] images); the multi-step row averages "
        f"the {pred['horizon']} predicted frames (the model rolled on its own predictions).",
        "",
    ]
    if not pred["pixel_model"]:
        lines += [f"**Model pixel metrics: {NOT_APPLICABLE}.** Baselines shown for reference.", ""]
    lines += ["| split | horizon | predictor | MSE | MAE | PSNR (dB) | SSIM |", "|---|---|---|---|---|---|---|"]
    for split in ("test_id", "test_ood"):
        for label in ("1-step", f"{pred['horizon']}-step"):
            for name in ("model", *BASELINES):
                row = pred.get(split, {}).get(label, {}).get(name)
                if row is None:
                    continue
                if isinstance(row, str):
                    lines.append(f"| {split} | {label} | {name} | n/a | n/a | n/a | n/a |")
                    continue
                lines.append(
                    f"| {split} | {label} | {name} | {_fmt(row.get('mse'))} | {_fmt(row.get('mae'))} | "
                    f"{_fmt(row.get('psnr'))} | {_fmt(row.get('ssim'))} |"
                )
    if "prediction" in plots:
        lines += ["", f"![prediction error by horizon]({plots['prediction']})"]
    voe = report["voe"]
    lines += ["", "## 2. Violation of expectation", ""]
    if voe.get("note"):
        lines += [voe["note"], ""]
    else:
        head = voe.get("headline", "mean")
        other = "mean" if head == "max" else "max"
        obs = voe.get("observable_fraction")
        lines += [
            f"{voe['pairs_per_kind']} matched possible/impossible pairs per kind (`{voe['env_id']}` level "
            f"{voe.get('level', 0)}, still camera, test_id scenes). The model sees each whole clip; surprise is "
            f"compared {voe.get('window', 'over the clip')}, aggregated by **{head}** (the headline, declared "
            f"before measuring) and by {other}. Pairwise accuracy is the fraction of pairs whose impossible clip "
            "is more surprising (ties count 1/2; chance 0.5), with a 95 % bootstrap interval. Pairs whose twins "
            "did not yet differ visibly were extended or re-drawn: "
            + (f"{obs:.0%} of the pairs drawn were observable as drawn." if obs is not None else ""),
            "",
            f"| kind | scorer | acc ({head}) | 95 % CI | AUROC ({head}) | 95 % CI | acc ({other}) | AUROC ({other}) |",
            "|---|---|---|---|---|---|---|---|",
        ]

        def ci(r: dict[str, Any], key: str) -> str:
            lo, hi = r.get(f"{key}_ci") or (None, None)
            return "" if lo is None else f"{lo:.2f}-{hi:.2f}"

        for kind, res in {**voe["kinds"], "all": voe["all"]}.items():
            for name in ("model", *BASELINES):
                r = res.get(name)
                if r is None:
                    continue
                h, o = r[head], r[other]
                lines.append(
                    f"| {kind} | {name} | {_fmt(h['pairwise_accuracy'], 3)} | {ci(h, 'pairwise_accuracy')} | "
                    f"{_fmt(h['auroc'], 3)} | {ci(h, 'auroc')} | {_fmt(o['pairwise_accuracy'], 3)} | "
                    f"{_fmt(o['auroc'], 3)} |"
                )
        if "voe" in plots:
            lines += ["", f"![VoE]({plots['voe']})"]
    probes = report["probes"]
    lines += [
        "",
        "## 3. Physical-law probes (Kang et al. 2024)",
        "",
        f"Velocity error in {probes['unit']} of the target object, parsed by a colour mask from the model's "
        "open-loop predictions (`model`), from the true frames (`floor`: the parser's own error) and from a "
        "frozen last frame (`copy_last`), against the projected ground truth. A clip whose predicted frames "
        "never show the object's colour has no model velocity (see `parsed`).",
        "",
    ]
    if probes.get("note"):
        lines += [probes["note"], ""]
    if probes.get("missing_kinds"):
        lines += ["Not measured (no env provides the clips): " + ", ".join(probes["missing_kinds"]) + ".", ""]
    lines += ["| kind | split | factor | n | model | floor | copy_last |", "|---|---|---|---|---|---|---|"]
    for kind, res in probes["kinds"].items():
        for split in ("test_id", "test_ood"):
            r = res.get(split, {})
            model_cell = _fmt(r.get("model"), 3)
            if "model_parsed" in r:
                model_cell += f" ({r['model_parsed']}/{r.get('n', 0)} parsed)"
            lines.append(
                f"| {kind} | {split} | all | {r.get('n', 0)} | {model_cell} | "
                f"{_fmt(r.get('floor'), 3)} | {_fmt(r.get('copy_last'), 3)} |"
            )
            for key, b in (r.get("by_factor") or {}).items():
                lines.append(
                    f"| {kind} | {split} | {key} | {b.get('n', 0)} | {_fmt(b.get('model'), 3)} | "
                    f"{_fmt(b.get('floor'), 3)} | {_fmt(b.get('copy_last'), 3)} |"
                )
    if "probes" in plots:
        lines += ["", f"![probes]({plots['probes']})"]
    ex = report["exploration"]
    lines += [
        "",
        "## 4. Exploration",
        "",
        f"{ex['episodes']} episode(s) of {ex['steps']} steps per policy (test_id scenes).",
        "",
        "| policy | pushes moved / 1k steps | pushes hit | objects seen / total | frames with object | "
        "floor coverage |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in ex["policies"].items():
        lines.append(
            f"| {name} | {_fmt(r['pushes_moved_per_1k'], 3)} | {_fmt(r['pushes_hit'], 3)} | "
            f"{_fmt(r['objects_seen'], 3)} / {_fmt(r['objects_total'], 3)} | "
            f"{_fmt(r['frames_with_object'], 3)} | {_fmt(r['floor_coverage'], 3)} |"
        )
    if ex.get("note"):
        lines += ["", ex["note"]]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG plots next to the report; returns section -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    pred = report["prediction"]
    label = f"{pred['horizon']}-step curve"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, split in zip(axes, ("test_id", "test_ood"), strict=True):
        for name, curve in pred.get(split, {}).get(label, {}).items():
            ax.plot(range(1, len(curve["mse"]) + 1), curve["mse"], marker="o", label=name)
        ax.set_title(split)
        ax.set_xlabel("prediction step")
        ax.set_ylabel("MSE (summed over pixels)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "prediction.png", dpi=90)
    plt.close(fig)
    plots["prediction"] = "prediction.png"

    voe = report["voe"]
    if voe.get("kinds"):
        kinds = list(voe["kinds"])
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(kinds) + 2), 3.4))
        names = ("model", *BASELINES)
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            head = voe.get("headline", "mean")
            vals = [voe["kinds"][kd].get(name, {}).get(head, {}).get("pairwise_accuracy", np.nan) for kd in kinds]
            ax.bar(np.arange(len(kinds)) + j * width, [np.nan if v is None else v for v in vals], width, label=name)
        ax.axhline(0.5, color="grey", ls="--", lw=1)
        ax.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds, rotation=20)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"pairwise accuracy ({voe.get('headline', 'mean')} surprise)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "voe.png", dpi=90)
        plt.close(fig)
        plots["voe"] = "voe.png"

    probes = report["probes"]
    if probes.get("kinds"):
        labels, series = [], defaultdict(list)
        for kind, res in probes["kinds"].items():
            for split in ("test_id", "test_ood"):
                labels.append(f"{kind}\n{split}")
                for name in ("model", "floor", "copy_last"):
                    v = res.get(split, {}).get(name)
                    series[name].append(np.nan if v is None or isinstance(v, str) else v)
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels) + 2), 3.4))
        width = 0.8 / 3
        for j, (name, vals) in enumerate(series.items()):
            ax.bar(np.arange(len(labels)) + j * width, vals, width, label=name)
        ax.set_xticks(np.arange(len(labels)) + width, labels, fontsize=8)
        ax.set_ylabel("velocity error (px/frame)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "probes.png", dpi=90)
        plt.close(fig)
        plots["probes"] = "probes.png"
    return plots


# ------------------------------------------------------------------------------------------ episodes and merge


def count_episodes(**kwargs: Any) -> int:
    """How many held-out episodes the evaluation has, across all sections (numbered ``0 .. n - 1``).

    An episode's seeds depend on its index (and the arguments) only, so any subset of indices can be evaluated
    anywhere, in any order (:func:`evaluate_episodes`), and merged (:func:`merge_reports`).

    Args:
        **kwargs: :func:`evaluate`'s arguments.

    Raises:
        FileNotFoundError: The run folder or checkpoint does not exist, or the folder has no world model.
        ValueError: An unknown env id, or a file that is no checkpoint.
    """
    return len(_plan(**kwargs).episodes)


def evaluate_episodes(indices: Iterable[int], **kwargs: Any) -> dict[str, Any]:
    """Evaluate some of the held-out episodes; the raw results, not yet averaged (a part for :func:`merge_reports`).

    Args:
        indices: Episode indices in ``0 .. count_episodes(**kwargs) - 1``.
        **kwargs: :func:`evaluate`'s arguments.

    Returns:
        A picklable part: ``indices``, one raw ``results`` entry per index (per-step errors and surprise, probe
        rows, exploration counts), and where and when it ran (``device``, ``host``, ``started``, ``seconds``).

    Raises:
        IndexError: An index outside ``0 .. count_episodes(**kwargs) - 1``.
    """
    started, t0 = time.time(), time.perf_counter()
    configure_torch_threads()  # spinning OpenMP threads slow small models many times on a busy small machine
    plan = _plan(**kwargs)
    progress = bool(kwargs.get("progress", True))
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(plan.episodes)]
    if bad:
        raise IndexError(f"episode indices {bad} are outside 0..{len(plan.episodes) - 1}")
    results, section = [], None
    for i in indices:
        ep = plan.episodes[i]
        if progress and ep.section != section:
            print(f"[eval {time.perf_counter() - t0:6.1f}s] {SECTIONS[ep.section]}", flush=True)
        section = ep.section
        torch.manual_seed(ep.seed)
        results.append(_RUN_EPISODE[ep.section](plan, ep))
    return {
        "indices": indices,
        "results": results,
        "device": str(plan.device),
        "host": socket.gethostname(),
        "started": started,
        "seconds": time.perf_counter() - t0,
    }


def merge_reports(parts: Sequence[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The report from the parts of :func:`evaluate_episodes` that cover every episode once; writes ``report.json``,
    ``report.md`` and PNG plots like :func:`evaluate`, whose report it equals (but for ``wall_time_s``).

    Args:
        parts: Parts covering ``0 .. count_episodes(**kwargs) - 1`` between them, each index once, in any order.
        **kwargs: :func:`evaluate`'s arguments.

    Returns:
        The report (as written to ``report.json``); ``meta.wall_time_s`` runs from the earliest part's start.

    Raises:
        ValueError: The parts miss an episode or hold one twice.
    """
    plan = _plan(**kwargs)
    results: dict[int, Any] = {}
    for part in parts:
        for i, result in zip(part["indices"], part["results"], strict=True):
            if i in results:
                raise ValueError(f"episode {i} is in more than one part")
            results[i] = result
    missing = sorted(set(range(len(plan.episodes))) - set(results))
    extra = sorted(set(results) - set(range(len(plan.episodes))))
    if missing or extra:
        raise ValueError(
            f"the parts do not cover the {len(plan.episodes)} episodes of this evaluation: missing {missing}, "
            f"unknown {extra} (were they evaluated with the same arguments?)"
        )
    started = min((float(p["started"]) for p in parts), default=time.time())
    model, s = plan.loaded.model, plan.settings
    done: dict[str, list[tuple[EvalEpisode, Any]]] = {name: [] for name in SECTIONS}
    for ep in plan.episodes:
        done[ep.section].append((ep, results[ep.index]))
    devices = sorted({str(p["device"]) for p in parts}) or [str(plan.device)]
    report: dict[str, Any] = {
        "meta": {
            "model": str(plan.loaded.model_path),
            "run_dir": str(plan.loaded.run_dir) if plan.loaded.run_dir else None,
            "model_name": model.name,
            "frame_shape": list(model.frame_shape),
            "context_frames": model.context_frames,
            "env_id": plan.env_id,
            "env_kwargs": plan.env_kwargs,
            "device": ", ".join(devices),
            "settings": asdict(s),
            "tdwgym_version": tdwgym.__version__,
        }
    }
    for name in SECTIONS:
        report[name] = _SUMMARY[name](plan, done[name])
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    report["meta"]["wall_time_s"] = time.time() - started
    report["meta"]["out"] = str(out_dir)
    report = _jsonable(report)
    plots = write_plots(report, out_dir)
    report["meta"]["plots"] = plots
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, out_dir / "report.md", plots)
    if kwargs.get("progress", True):
        print(f"[eval {time.time() - started:6.1f}s] wrote {out_dir / 'report.json'} and {out_dir / 'report.md'}")
    return report


def evaluate(
    run_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    env_id: str | None = None,
    episodes: int | None = None,
    frames: int | None = None,
    out: str | os.PathLike | None = None,
    quick: bool = False,
    settings: EvalSettings | None = None,
    probe_envs: dict[str, str] | None = None,
    device: str = "auto",
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a world model; write ``report.json``, ``report.md`` and PNG plots into ``out``.

    All episodes in this process: ``merge_reports([evaluate_episodes(range(count_episodes(**kw)), **kw)], **kw)``
    (:func:`tdwgym.agents.distributed.evaluate_on_ray` spreads the same episodes over Ray tasks).

    Args:
        run_dir: A training run folder (``tdwgym train``'s layout); or
        model_path: A world-model checkpoint (``world_model.pt``).
        env_id: The env to evaluate on (default: the run's env, else ``TDWRoom-Occlusion-v0``).
        episodes: Held-out episodes per split for prediction quality (overrides ``settings``).
        frames: Steps per prediction episode (overrides ``settings``).
        out: Output folder (default: ``RUN_DIR/eval``, or ``eval`` beside the checkpoint).
        quick: Use :meth:`EvalSettings.quick` (seconds; for tests).
        settings: Every size of the evaluation (default :class:`EvalSettings`; not modified).
        probe_envs: Probe kind -> env id (default: registered envs matched by :data:`PROBE_KEYWORDS`).
        device: Torch device (``"auto"``: CUDA when available).
        progress: Print a line per section.
        env_kwargs: Env arguments (e.g. ``{"level": 1}``) over the run's own.

    Returns:
        The report (as written to ``report.json``).

    Raises:
        FileNotFoundError: The run folder or checkpoint does not exist, or the folder has no world model.
    """
    kw: dict[str, Any] = {
        "run_dir": run_dir,
        "model_path": model_path,
        "env_id": env_id,
        "episodes": episodes,
        "frames": frames,
        "out": out,
        "quick": quick,
        "settings": settings,
        "probe_envs": probe_envs,
        "device": device,
        "progress": progress,
        "env_kwargs": env_kwargs,
    }
    return merge_reports([evaluate_episodes(range(count_episodes(**kw)), **kw)], **kw)


def export_eval_sets(
    out: str | os.PathLike,
    env_id: str = "TDWRoom-Occlusion-v0",
    env_kwargs: dict[str, Any] | None = None,
    resolution: int = 64,
    settings: EvalSettings | None = None,
    progress: bool = True,
) -> Path:
    """Write the evaluation's frozen held-out sets to ``out``, so that anyone can report numbers on the same clips:
    ``voe/<kind>_<i>.npz`` (``possible``, ``impossible`` ``(T, H, W, 3)`` uint8, ``event_frame``, ``seed``,
    ``extended``) and ``probes/<kind>_<split>_<i>.npz`` (``frames``, ``segmentation``, ``actions``, ``positions``:
    every object's world position per frame, ``object_ids``), with ``index.json`` naming each file, its seed and the
    settings. The seeds and clips are exactly those :func:`evaluate` scores at this resolution and these settings.

    Returns:
        The ``index.json`` path.
    """
    out = Path(out)
    s = copy.deepcopy(settings) if settings is not None else EvalSettings()
    stub = LoadedRun(ExternalModel(type("Frames", (), {"resolution": int(resolution), "surprise": None})()), out)
    plan = _plan(env_id=env_id, settings=s, env_kwargs=env_kwargs, out=out, loaded=stub, device="cpu")
    (out / "voe").mkdir(parents=True, exist_ok=True)
    (out / "probes").mkdir(exist_ok=True)
    index: dict[str, Any] = {
        "env_id": plan.env_id,
        "env_kwargs": plan.env_kwargs,
        "resolution": int(resolution),
        "settings": asdict(s),
        "tdwgym_version": tdwgym.__version__,
        "voe": [],
        "probes": [],
    }
    counters: dict[tuple[str, ...], int] = defaultdict(int)
    for ep in plan.episodes:
        if ep.section not in ("voe", "probes"):
            continue
        i = counters[ep.group]
        counters[ep.group] += 1
        if ep.section == "voe":
            pair, redraw = _draw_pair(plan, ep)
            if pair is None:
                continue
            name = f"voe/{pair.kind}_{i:03d}.npz"
            np.savez_compressed(
                out / name,
                possible=pair.possible,
                impossible=pair.impossible,
                event_frame=pair.event_frame,
                seed=pair.seed,
                extended=pair.extended,
            )
            index["voe"].append({"file": name, "kind": pair.kind, "seed": pair.seed, "redrawn": redraw})
        else:
            kind, probe_env, split = ep.group
            clip = _probe_clip(plan, ep)
            ids = sorted(clip.infos[0]["objects"])
            nan = [np.nan] * 3  # an object absent from a frame
            positions = np.array(
                [[i_["objects"].get(o, {}).get("position", nan) for o in ids] for i_ in clip.infos], np.float32
            )
            name = f"probes/{kind}_{split}_{i:03d}.npz"
            np.savez_compressed(
                out / name,
                frames=clip.frames,
                segmentation=clip.segmentation,
                actions=clip.actions,
                positions=positions,
                object_ids=np.asarray(ids, dtype=np.int64),
            )
            index["probes"].append({"file": name, "kind": kind, "env_id": probe_env, "split": split, "seed": ep.seed})
        if progress and (len(index["voe"]) + len(index["probes"])) % 20 == 0:
            print(f"[export] {len(index['voe'])} pairs, {len(index['probes'])} probe clips", flush=True)
    path = out / "index.json"
    path.write_text(json.dumps(_jsonable(index), indent=2) + "\n")
    return path
