"""The evaluation's shared ground: what it loads (a run's world model and agent), how it records and scores
episodes, its settings and configuration, and the numbered plan of held-out episodes that every section draws from."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.agents import metrics as M
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.device import resolve_device
from tdwgym.agents.external import ExternalModel, is_external_spec, load_external
from tdwgym.agents.models import (
    SHIPPED,
    PixelOutput,
    Stream,
    WorldModel,
    load_world_model,
    resolve_model_path,
)
from tdwgym.agents.rundir import RunDir
from tdwgym.envs.factors import SPLITS
from tdwgym.sim.scene import DEFAULT_FOV

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
    run = RunDir(run_dir)  # type: ignore[arg-type]
    if not run.path.exists():
        raise FileNotFoundError(f"run directory {run.path} does not exist")
    if not run.path.is_dir():
        raise FileNotFoundError(f"run directory {run.path} is not a folder (pass a checkpoint file with --model)")
    found = run.world_model_path()
    if found is None:
        raise FileNotFoundError(
            f"run directory {run.path} holds no world model: expected checkpoints/latest.json naming a checkpoint "
            "folder with world_model.pt (written by `tdwgym train` with a curiosity variant), or world_model.pt "
            "in the folder"
        )
    return LoadedRun(
        load_world_model(found, device),
        found,
        run.path,
        run.agent_path(),
        run.env_id,
        run.env_kwargs,
        run.frame_stack,
    )


def pixel_predictor(model: WorldModel) -> WorldModel | None:
    """The model inside ``model`` that predicts frames (itself, or the base of a learning-progress wrapper): a
    :class:`~tdwgym.agents.models.PixelOutput` model such as ``pixel`` or ``recurrent``; None for feature models."""
    if isinstance(model, PixelOutput) or (isinstance(model, ExternalModel) and model.predicts):
        return model
    base = getattr(model, "base", None)
    return base if isinstance(base, PixelOutput) else None


@dataclass
class Episode:
    """One recorded clip: ``T`` frames and the ``T - 1`` actions between them."""

    frames: np.ndarray
    """``(T, H, W, 3)`` uint8."""
    segmentation: np.ndarray
    """``(T, H, W)`` int32 object ids."""
    depth: np.ndarray | None
    """``(T, H, W)`` float32 metres, when the env renders depth (the evaluation's envs do), else None."""
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
    base = env.unwrapped
    depth = "depth" in base.last_frames

    def depth_now() -> list[np.ndarray]:
        return [np.asarray(base.last_frames["depth"], dtype=np.float32).reshape(obs["rgb"].shape[:2])] if depth else []

    frames, segs, actions, infos, depths = [obs["rgb"]], [obs["segmentation"][..., 0]], [], [info], depth_now()
    for _ in range(steps):
        action = act(obs["rgb"]) if act is not None else _noop(env.action_space)
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs["rgb"])
        segs.append(obs["segmentation"][..., 0])
        depths += depth_now()
        actions.append(action)
        infos.append(info)
        if terminated or truncated:
            break
    scene = env.unwrapped.scene
    vecs = actions_to_vectors(np.asarray(actions), env.action_space) if actions else np.zeros((0, 1), np.float32)
    return Episode(
        np.stack(frames),
        np.stack(segs),
        np.stack(depths) if depth else None,
        vecs,
        infos,
        dict(scene.labels),
        float(scene.camera.fov),
        (float(scene.room.width), float(scene.room.length)),
    )


def model_frames(model: WorldModel, frames: np.ndarray, passes: dict[str, np.ndarray] | None = None) -> torch.Tensor:
    """The model's frames of clips: ``frames`` ``(N, T, H, W, 3)`` uint8 and the other ``passes`` by name
    (``(N, T, H, W)``) -> ``(N, T, *frame_shape)`` (:meth:`~tdwgym.agents.models.WorldModel.frames_from`)."""
    n, t = frames.shape[:2]
    flat = {k: np.asarray(v).reshape(n * t, *np.shape(v)[2:]) for k, v in (passes or {}).items()}
    out = model.frames_from(frames.reshape(n * t, *frames.shape[2:]), **flat)
    return out.reshape(n, t, *out.shape[1:])


def needed_passes(model: Any) -> tuple[str, ...]:
    """The render passes beside RGB a model reads (none for pixel and external models)."""
    return tuple(p for p in getattr(model, "passes", ("rgb",)) if p != "rgb")


@torch.no_grad()
def clips_surprise(
    model: WorldModel, frames: np.ndarray, actions: np.ndarray, passes: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """The model's surprise of every transition of ``N`` clips of equal length, stepped side by side through a
    :class:`~tdwgym.agents.models.Stream` (models with memory carry it through each whole clip).

    Args:
        model: The world model.
        frames: ``(N, T, H, W, 3)`` uint8.
        actions: ``(N, T - 1, A)`` float32 action vectors (:func:`tdwgym.agents.curiosity.actions_to_vectors`).
        passes: The clips' other render passes by name (``"segmentation"``, ``"depth"``: ``(N, T, H, W)``), for
            models that read them.

    Returns:
        ``(N, T - 1)``: entry ``t`` is the surprise of frame ``t + 1``.
    """
    if isinstance(model, ExternalModel):
        return np.stack(
            [model.clip_scores(clip, **{k: v[i] for k, v in (passes or {}).items()}) for i, clip in enumerate(frames)]
        )
    return stream_surprise(model, model_frames(model, frames, passes), actions)


@torch.no_grad()
def stream_surprise(model: WorldModel, x: torch.Tensor, actions: np.ndarray) -> np.ndarray:
    """The model's surprise of every transition of ``N`` clips of its own frames ``x`` (``(N, T, *frame_shape)``,
    :func:`model_frames`), stepped side by side through a :class:`~tdwgym.agents.models.Stream`: ``(N, T - 1)``
    (:func:`clips_surprise` from the render passes)."""
    acts = torch.from_numpy(np.asarray(actions, dtype=np.float32))
    n, t = x.shape[:2]
    if t < 2:
        return np.zeros((n, 0))
    stream = Stream(model, x[:, 0])
    out = [stream.step(acts[:, i], x[:, i + 1])[0].float().cpu().numpy() for i in range(t - 1)]
    return np.stack(out, axis=1)


def episode_surprise(model: WorldModel, ep: Episode) -> np.ndarray:
    """The model's surprise of every transition of ``ep`` (``T - 1`` values)."""
    passes = {"segmentation": ep.segmentation[None]}
    if ep.depth is not None:
        passes["depth"] = ep.depth[None]
    return clips_surprise(model, ep.frames[None], np.asarray(ep.actions)[None], passes)[0]


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
    voe_split: str = "test_id"
    """Split of the VoE scenes: ``test_id`` (the training distribution, scenes never trained on) or ``test_ood``
    (held-out factor bands and combinations)."""
    voe_quadruplets: bool = True
    """Score IntPhys quadruplets where the kind allows them (the headline: low-level cues cancel); False: matched
    pairs for every kind."""
    voe_observer: bool = True
    """Score the analytic observer (the positive control) beside the model on every VoE item."""
    fov: float = DEFAULT_FOV
    """The camera's vertical field of view in degrees (the observer's projection)."""
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


SECTIONS: dict[str, str] = {
    "prediction": "prediction quality",
    "voe": "violation of expectation",
    "probes": "physical-law probes",
    "exploration": "exploration",
}
"""The report's sections in order -> their titles in progress lines."""

HELD_OUT_SPLITS: tuple[str, ...] = tuple(s for s in SPLITS if s != "train")
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
    # depth comes from the same render call as RGB and segmentation: the clips carry it for any model that reads
    # it (and for the exported sets)
    kwargs.update(resolution=tuple(model.resolution), obs_mode="rgb_seg", extra_passes=("depth",), **extra)
    return gym.make(env_id, **kwargs)


def _mean(values: Sequence[float] | np.ndarray) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, on what, where and how big: built once (by ``tdwgym eval`` or :meth:`build`) and handed
    whole to every seam (:func:`make_plan`, ``count_episodes``, ``evaluate_episodes``, ``merge_reports``, the Ray
    tasks). Exactly one of ``run_dir`` and ``model_path``."""

    run_dir: str | os.PathLike | None = None
    """A training run folder (``tdwgym train``'s layout)."""
    model_path: str | os.PathLike | None = None
    """A world-model checkpoint (``world_model.pt``), ``"pretrained"`` or ``module:attr`` of an external model."""
    env_id: str | None = None
    """The env of the prediction, VoE and exploration sections (default: the run's env, else Occlusion)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env arguments (e.g. ``{"level": 1}``) over the run's own."""
    out: str | os.PathLike | None = None
    """Output folder (default: ``RUN_DIR/eval``, ``eval`` beside the checkpoint, or ``runs/eval-NAME``)."""
    settings: EvalSettings = field(default_factory=EvalSettings)
    """Every size of the evaluation."""
    probe_envs: dict[str, str] | None = None
    """Probe kind -> env id (default: registered envs matched by :data:`PROBE_KEYWORDS`)."""
    device: str = "auto"
    """Torch device (``"auto"``: CUDA when available)."""
    progress: bool = True
    """Print a line per section."""
    workers: int | None = None
    """Processes that evaluate the episodes (:func:`~tdwgym.agents.evaluate.evaluate`; not the Ray path): 1 runs
    them in this process; None: :func:`default_workers`. The report does not depend on it."""

    @classmethod
    def build(
        cls,
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
        workers: int | None = None,
    ) -> EvalConfig:
        """A config from ``evaluate``'s keyword arguments: ``settings`` (default :class:`EvalSettings`, or
        :meth:`EvalSettings.quick` with ``quick``; not modified) with ``episodes`` and ``frames`` over it."""
        s = copy.deepcopy(settings) if settings is not None else (EvalSettings.quick() if quick else EvalSettings())
        if episodes is not None:
            s.episodes = int(episodes)
        if frames is not None:
            s.frames = int(frames)
        return cls(run_dir, model_path, env_id, dict(env_kwargs or {}), out, s, probe_envs, device, progress, workers)

    def absolute(self) -> EvalConfig:
        """The same config with its paths made absolute (for tasks that start in another working directory)."""
        paths = {
            name: os.path.abspath(value)
            for name in ("run_dir", "model_path", "out")
            if (value := getattr(self, name)) is not None and not (name == "model_path" and _not_a_path(value))
        }
        return replace(self, **paths)


MAX_DEFAULT_WORKERS = 4
"""At most this many worker processes by default (each holds the model, an env and torch: a few hundred MB)."""


def default_workers(device: torch.device | str = "cpu") -> int:
    """The evaluation's worker processes when none are asked for: one per idle core (the cores this process may
    use less the 1-minute load average, rounded), at least 1 and at most :data:`MAX_DEFAULT_WORKERS`; 1 on a CUDA
    device (the model runs there, and the workers would share one GPU). So 2 on an idle 2-core machine, and 1 when
    other jobs keep its cores busy: there a second process takes no more of the machine (measured, BENCHMARKS.md)
    and only adds its own start and overhead. The report does not depend on it."""
    if torch.device(device).type == "cuda":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(MAX_DEFAULT_WORKERS, cores, int(cores - load + 0.5)))


def _not_a_path(model: str | os.PathLike) -> bool:
    return str(model) in SHIPPED or is_external_spec(model)


def default_out_dir(
    run_dir: str | os.PathLike | None, model_path: str | os.PathLike | None, external: bool | None = None
) -> Path:
    """Where the report goes without ``out``: ``RUN/eval``, ``eval`` beside a checkpoint file, or
    ``runs/eval-NAME`` for a shipped model and a ``module:attr`` / ``file.py:attr`` model (``external``; None: from
    the spelling of ``model_path``)."""
    if run_dir is not None:
        return RunDir(run_dir).eval_dir
    path = resolve_model_path(model_path)  # type: ignore[arg-type]
    if external is None:
        external = is_external_spec(model_path)
        path = Path(str(model_path).rsplit(":", 1)[0]) if external else path
    shipped = {file: name for name, file in SHIPPED.items()}
    if path in shipped or external:
        return Path("runs") / f"eval-{shipped.get(path, path.stem)}"
    return path.parent / "eval"


def make_plan(config: EvalConfig, loaded: LoadedRun | None = None) -> EvalPlan:
    """Resolve ``config`` into an :class:`EvalPlan`: load the model (unless ``loaded`` is given), find the env's
    impossible kinds and action space, and number every held-out episode."""
    if config.settings.voe_split not in HELD_OUT_SPLITS:
        raise ValueError(f"voe_split must be one of {list(HELD_OUT_SPLITS)}, got {config.settings.voe_split!r}")
    dev = resolve_device(config.device)
    loaded = loaded or load_run(run_dir=config.run_dir, model_path=config.model_path, device=dev)
    s = config.settings
    env_id = config.env_id or loaded.env_id or "TDWRoom-Occlusion-v0"
    if env_id not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}; registered tdwgym ids: {sorted(tdwgym.ENV_IDS)}")
    env_kwargs = {**(loaded.env_kwargs if env_id == loaded.env_id else {}), **config.env_kwargs}
    if config.out is not None:
        out_dir = Path(config.out)
    else:
        out_dir = default_out_dir(loaded.run_dir, loaded.model_path, isinstance(loaded.model, ExternalModel))
    env = gym.make(env_id, **{**_env_kwargs(env_kwargs, "split"), "resolution": 8})
    supported = tuple(getattr(env.unwrapped, "SUPPORTED_IMPOSSIBLE", ()))
    action_space = env.action_space
    env.close()
    voe_kinds = [k for k in (s.voe_kinds or supported) if k in supported]
    envs = dict(config.probe_envs) if config.probe_envs is not None else _probe_envs(None)
    policies = ["random"] + (["agent"] if loaded.agent_path is not None else [])

    eps: list[EvalEpisode] = []

    def add(section: str, group: tuple[str, ...], seed: int) -> None:
        eps.append(EvalEpisode(len(eps), section, group, seed))

    for si, split in enumerate(HELD_OUT_SPLITS):
        for e in range(s.episodes):
            add("prediction", (split,), s.seed + 1000 * si + e)
    for ki, kind in enumerate(voe_kinds):
        for i in range(s.voe_pairs):
            add("voe", (kind,), s.seed + 50_000 + 1000 * ki + i)
    for kind, probe_env in envs.items():
        for si, split in enumerate(HELD_OUT_SPLITS):
            for c in range(s.probe_clips):
                add("probes", (kind, probe_env, split), s.seed + 70_000 + 1000 * si + c)
    for name in policies:
        for e in range(s.exploration_episodes):
            add("exploration", (name,), s.seed + 90_000 + e)
    return EvalPlan(loaded, s, env_id, env_kwargs, out_dir, dev, voe_kinds, action_space, envs, eps)


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
