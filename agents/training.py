"""Train PPO with a curiosity reward (or without one) on a tdwgym environment.

The recipe, top to bottom:

1. ``TrainConfig`` holds every setting; it is written to ``RUN_DIR/config.json``.
2. ``make_vec_env`` builds ``n_envs`` copies of the environment (a share in this process, the rest in worker
   processes: :class:`~tdwgym.tools.vector.LockstepVecEnv`), with ``VecMonitor`` (episode
   statistics of the extrinsic reward), the :class:`~tdwgym.agents.curiosity.CuriosityVecEnv` (per-step intrinsic
   reward, world-model training) and an optional ``VecFrameStack``.
3. PPO with ``CnnPolicy`` learns; :class:`TrainCallback` logs ``curiosity/``, ``world_model/`` and ``rollout/``
   scalars to TensorBoard and ``metrics.jsonl``, and writes checkpoints of agent, world model and wrapper
   statistics every ``checkpoint_every`` steps (each in its own folder; ``checkpoints/latest.json`` is replaced
   atomically last, so a kill -9 at any moment leaves a complete checkpoint to resume from).
4. At the end: a rollout video and a plot of intrinsic reward and world-model loss over training.

``train(resume="RUN_DIR")`` continues an interrupted run with its step count, world model and statistics.

Longer than 600 lines: :class:`TrainConfig` with a docstring per field is a third of it, and the recipe reads top to
bottom in algorithm order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecMonitor

from tdwgym.agents.curiosity import VARIANTS, CuriosityVecEnv, check_norm_horizon
from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.models import WorldModel, load_world_model
from tdwgym.agents.rundir import RunDir, RunDirExistsError
from tdwgym.envs.wrappers import FirstEpisodeLimit, staggered_limits
from tdwgym.tools.vector import LockstepVecEnv, check_spin, default_split
from tdwgym.util.files import read_json
from tdwgym.util.processes import dies_with_parent

__all__ = [
    "DEFAULT_ENV_KWARGS",
    "VEC_ENVS",
    "RunDirExistsError",
    "TrainConfig",
    "TrainResult",
    "check_policy_input",
    "make_vec_env",
    "train",
]

VEC_ENVS: tuple[str, ...] = ("subproc", "lockstep", "dummy")
"""Values of :attr:`TrainConfig.vec_env`."""

DEFAULT_ENV_KWARGS: dict[str, Any] = {"level": 1, "push_cone": 20.0}
"""Env arguments of ``tdwgym train`` and ``tdwgym compare`` by default: Playroom level 1 (objects at rest that only
the agent's pushes move) with a 20-degree push cone, so that a push meets an object often enough for pushing to pay
within a short budget (with a cone of 0 even a push-paid agent learned nothing in 30,000 steps: README)."""


FIELDS_BEFORE: dict[str, Any] = {
    "action_baseline": "none",
    "wm_warp": False,
    "wm_resolution": None,
    "wm_background": False,
    "wm_fovea": None,
    "int_norm_horizon": None,
    "reward_gate": "none",
    "stagger_episodes": False,
    "vec_spin": 0.0,
}
"""Fields added after the first release -> how runs written before them ran (a config without the field is read
with this value, so that an old run resumes as it was)."""


@dataclass
class TrainConfig:
    """Everything a training run needs (CleanRL style: one field, one docstring)."""

    env_id: str = "TDWRoom-Playroom-v0"
    """Gymnasium id of the environment."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ENV_KWARGS))
    """Keyword arguments of ``gym.make`` (level, push_cone, resolution, action_type, ...; ``{}``: the env's own
    defaults). Given ones replace these defaults as a whole."""
    total_steps: int = 20_000
    """Environment steps in all (summed over the vectorized envs)."""
    n_envs: int = 4
    """Parallel environments."""
    vec_env: str = "lockstep"
    """``"lockstep"`` (tdwgym's :class:`~tdwgym.tools.vector.LockstepVecEnv`: a share of the envs in this process, the
    rest in one worker per other core, observations in shared memory; the fastest on 2 cores, BENCHMARKS.md),
    ``"subproc"`` (SB3's ``SubprocVecEnv``: one process per env) or ``"dummy"`` (all in this process). The choice
    changes the speed only: a seed gives the same run with each."""
    vec_spin: float = 0.0
    """With ``vec_env="lockstep"``: seconds each process polls for the other's step before it blocks
    (``LockstepVecEnv(spin=...)``; 0: block at once). It saves the kernel's wake-up per step where every process has
    a core to itself; on 2 cores, where the world model's thread shares them, it measured no gain in training
    (BENCHMARKS.md). Speed only: a seed gives the same run with any value."""
    frame_stack: int = 1
    """Frames stacked for the policy (1 = none)."""
    stagger_episodes: bool = False
    """Spread the envs over the phases of an episode: env ``i`` of ``n`` ends its first episode after
    ``(n - i) / n`` of the time limit (:class:`~tdwgym.envs.wrappers.FirstEpisodeLimit`), so that each PPO rollout
    mixes episode starts (in Playroom, objects in front of the camera) with later steps. Off, the envs reset
    together and every rollout sees one phase. It did not help in screening (docs/agents.md)."""
    seed: int = 0
    """Seed of the environments, PPO and the world model."""

    curiosity: str = "pixel"
    """Intrinsic reward: a world-model variant (``"pixel"``, ``"latent"``, ``"recurrent"``, ``"jepa"``, ``"rnd"``,
    ``"icm"``, ``"progress"``) or ``"none"`` (plain PPO)."""
    world_model: str | None = None
    """A world model to start the curiosity reward from instead of a fresh one: ``"pretrained"`` (the model shipped
    with tdwgym, pretrained offline by ``tdwgym pretrain``) or a ``world_model.pt`` file. It keeps learning online;
    its variant replaces ``curiosity``'s and its frame size ``wm_resolution``."""
    int_coef: float = 1.0
    """Weight of the normalised intrinsic reward (0 trains the world model without rewarding the agent)."""
    ext_coef: float = 1.0
    """Weight of the environment's reward."""
    int_norm_horizon: int | None = None
    """Transitions the running std that normalises the intrinsic reward remembers (``None``: all of them). The
    world model's error falls by 10-40x early on; remembered for ever, those early returns shrink every later
    reward towards 0 (docs/agents.md)."""
    action_baseline: str = "difference"
    """What of the world model's error is rewarded: ``"difference"`` ``max(0, error - mean_a)`` (the default), the
    error beyond the running mean ``mean_a`` of the errors after the same action: with the ``"push"`` gate a push
    that moves nothing leaves only the usual small error and earns nearly nothing, while a push that sets something
    moving pays, so pushing at nothing stops paying (docs/agents.md); ``"none"`` the error itself; ``"zscore"`` its
    standard score against the running mean and std of the errors after the same action, beyond 2 std; ``"ratio"``
    ``max(0, error / mean_a - 1)``. Against its own action's usual error, turning or nodding the camera, which
    changes every pixel, stops paying by itself: ``"zscore"`` is the choice for ``reward_gate="none"``."""
    zscore_threshold: float = 2.0
    """With ``action_baseline="zscore"``: standard scores up to this many std pay nothing."""
    reward_gate: str = "push"
    """Which steps' surprise pays: ``"none"`` every step's; ``"still"`` only the steps whose action held the camera
    still (a no-op, a push), where every change in the frame is the world's own motion (a pushed object), so
    turning, walking, bumping a wall or nodding against the pitch limit never pays; ``"push"`` only those of them
    whose action pushed: the surprise at the agent's own push (docs/agents.md)."""
    wm_fovea: float | None = 0.5
    """Pixel model (and ``progress`` on it): the surprise counts only the central ``wm_fovea`` fraction of the
    frame's height and width (``None``: the whole frame); the model still learns to predict every pixel. The centre
    is where a push lands; the border is where the camera's own motion leaves most error (docs/agents.md)."""
    context_frames: int | None = None
    """``k``: context frames of each world-model transition (None: the model's default, 2 for the frame-pair
    models and 16 for the models with memory)."""
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

    n_steps: int = 128
    """PPO rollout length per environment."""
    batch_size: int = 64
    """PPO minibatch size."""
    n_epochs: int = 10
    """PPO epochs per rollout."""
    learning_rate: float = 5e-4
    """PPO learning rate."""
    gamma: float = 0.95
    """Discount of PPO and of the intrinsic return. A push pays at once, so a short horizon suffices, and it let
    PPO learn the push within 30,000 steps on seeds where 0.99 did not (docs/agents.md)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    clip_range: float = 0.2
    """PPO clip range."""
    normalize_advantage: bool = True
    """Normalise PPO's advantages per minibatch (SB3's default; off measured no better for the curiosity agent,
    docs/agents.md)."""
    features_dim: int = 256
    """Output size of the policy's NatureCNN."""

    device: str = "auto"
    """Torch device of PPO and the world model: ``"auto"`` picks CUDA when available, else the CPU."""
    torch_threads: int | None = None
    """Torch CPU threads (``None``: min(cores, 4))."""
    run_dir: str = "runs/curiosity"
    """Folder for config, checkpoints, TensorBoard logs, metrics, video and plot."""
    overwrite: bool = False
    """Let a fresh run start in a folder that holds another run's checkpoints, deleting that run's checkpoints,
    metrics, TensorBoard logs, video and plot. Without it such a folder is refused (resume it instead)."""
    checkpoint_every: int = 5_000
    """Steps between checkpoints."""
    video_steps: int = 300
    """Length of the final rollout video in steps (0 skips it)."""
    video_size: int = 256
    """Render size of the video frames."""
    progress_bar: bool = True
    """Show a progress bar."""
    verbose: int = 0
    """SB3 verbosity."""

    def __post_init__(self) -> None:
        if self.world_model is not None:
            if self.curiosity == "none":
                raise ValueError("world_model needs a curiosity reward; curiosity='none' trains plain PPO")
            from tdwgym.agents.models import resolve_model_path

            if not resolve_model_path(self.world_model).is_file():
                raise ValueError(
                    f"world_model {self.world_model!r} is not a file; use 'pretrained' or a world_model.pt path"
                )
        if self.curiosity not in (*VARIANTS, "none"):
            raise ValueError(f"curiosity must be one of {(*VARIANTS, 'none')}, got {self.curiosity!r}")
        if self.vec_env not in VEC_ENVS:
            raise ValueError(f"vec_env must be one of {VEC_ENVS}, got {self.vec_env!r}")
        check_spin(self.vec_spin, "vec_spin")
        if self.wm_resolution is not None and self.wm_resolution < 8:
            raise ValueError(
                f"wm_resolution must be None (the observation's size) or at least 8 pixels, got {self.wm_resolution!r}"
            )
        check_norm_horizon(self.int_norm_horizon, "int_norm_horizon")
        if self.wm_fovea is not None and not (isinstance(self.wm_fovea, (int, float)) and 0 < self.wm_fovea <= 1):
            raise ValueError(f"wm_fovea must be None (the whole frame) or a fraction in (0, 1], got {self.wm_fovea!r}")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config written by :meth:`to_json`."""
        return cls.from_dict(read_json(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a run's ``config.json`` contents (fields it does not know are left out)."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = {**FIELDS_BEFORE, **data}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the config as JSON."""
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    """The run folder."""
    num_timesteps: int
    """Environment steps done (including those before a resume)."""
    wall_time_s: float
    """Seconds of this call's training loop."""
    model: PPO
    """The trained agent."""
    curiosity: CuriosityVecEnv | None
    """The curiosity wrapper (None for plain PPO)."""
    video_path: Path | None = None
    """The rollout video."""
    plot_path: Path | None = None
    """The PNG plot."""


def _make_env_fn(env_id: str, env_kwargs: dict[str, Any], render: bool = False, first_episode: int | None = None):
    def _init() -> gym.Env:
        import tdwgym  # noqa: F401 - registers the ids in subprocesses

        kwargs = dict(env_kwargs)
        if render:
            kwargs.setdefault("render_mode", "rgb_array")
        env = gym.make(env_id, **kwargs)
        if first_episode is not None:
            env = FirstEpisodeLimit(env, first_episode)
        return env

    return _init


def _first_episodes(cfg: TrainConfig) -> list[int | None]:
    """Each env's first-episode length (``None``: the env's own), staggered when ``cfg.stagger_episodes``."""
    if cfg.stagger_episodes and cfg.n_envs > 1:
        # the episode length: max_episode_steps of env_kwargs, else the registration's (without one: no phases)
        limit = cfg.env_kwargs.get("max_episode_steps", gym.spec(cfg.env_id).max_episode_steps)
        if limit:
            return [None, *staggered_limits(int(limit), cfg.n_envs)[1:]]  # env 0 runs a whole first episode anyway
    return [None] * cfg.n_envs


def _model_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"width": cfg.wm_width}
    if cfg.wm_warp and cfg.curiosity in ("pixel", "progress"):
        kwargs["warp"] = True
    if cfg.wm_fovea is not None and cfg.curiosity in ("pixel", "progress"):
        kwargs["fovea"] = cfg.wm_fovea
    return kwargs


def make_vec_env(cfg: TrainConfig, training: bool = True) -> tuple[VecEnv, CuriosityVecEnv | None]:
    """The environment stack: (Subproc|Lockstep|Dummy)VecEnv -> VecMonitor -> CuriosityVecEnv -> VecFrameStack.

    Returns:
        The top of the stack and the curiosity wrapper in it (None when ``cfg.curiosity == "none"``).
    """
    fns = [_make_env_fn(cfg.env_id, cfg.env_kwargs, first_episode=n) for n in _first_episodes(cfg)]
    if cfg.vec_env == "subproc":  # the env workers end with this process, even after a kill -9 of it
        venv: VecEnv = SubprocVecEnv([dies_with_parent(fn) for fn in fns], start_method="fork")
    elif cfg.vec_env == "lockstep":  # its workers end with this process by themselves
        workers, in_process = default_split(cfg.n_envs, learner=True)  # this process also runs PPO and curiosity
        venv = LockstepVecEnv(fns, workers=workers, in_process=in_process, start_method="fork", spin=cfg.vec_spin)
    else:
        venv = DummyVecEnv(fns)
    venv.seed(cfg.seed)
    venv = VecMonitor(venv)
    curiosity = None
    if cfg.curiosity != "none":
        variant: str | WorldModel = cfg.curiosity
        if cfg.world_model is not None:
            variant = load_world_model(cfg.world_model, device=cfg.device).train()
        venv = curiosity = CuriosityVecEnv(
            venv,
            variant=variant,
            int_coef=cfg.int_coef,
            ext_coef=cfg.ext_coef,
            gamma=cfg.gamma,
            context_frames=cfg.context_frames,
            training=training,
            device=cfg.device,
            resolution=cfg.wm_resolution,
            model_kwargs=_model_kwargs(cfg),
            learner_kwargs={
                "capacity": cfg.wm_capacity,
                "batch_size": cfg.wm_batch_size,
                "updates_per_transition": cfg.wm_updates_per_transition,
                "learning_rate": cfg.wm_learning_rate,
                "background": cfg.wm_background,
            },
            seed=cfg.seed,
            action_baseline=cfg.action_baseline,
            zscore_threshold=cfg.zscore_threshold,
            reward_gate=cfg.reward_gate,
            norm_horizon=cfg.int_norm_horizon,
        )
    if cfg.frame_stack > 1:
        venv = VecFrameStack(venv, cfg.frame_stack)
    return venv, curiosity


# ------------------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: str | os.PathLike | RunDir, model: PPO, curiosity: CuriosityVecEnv | None) -> Path:
    """Write agent, world model and wrapper statistics as the run's newest checkpoint (:meth:`RunDir.checkpoint`:
    never in place; ``latest.json`` switches atomically once the checkpoint is complete)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    with run.checkpoint(model.num_timesteps) as folder:
        model.save(folder / RunDir.AGENT)
        if curiosity is not None:
            curiosity.save_world_model(folder / RunDir.WORLD_MODEL)
            curiosity.save(folder / RunDir.STATISTICS)
    return run.latest_checkpoint()  # type: ignore[return-value]


class TrainCallback(BaseCallback):
    """Logs curiosity/world-model/rollout scalars per rollout and writes periodic checkpoints.

    Args:
        run_dir: The run folder (``metrics.jsonl`` and ``checkpoints/`` go there).
        curiosity: The curiosity wrapper, or None.
        checkpoint_every: Steps between checkpoints.
    """

    def __init__(self, run_dir: RunDir, curiosity: CuriosityVecEnv | None, checkpoint_every: int) -> None:
        super().__init__()
        self.run_dir, self.curiosity, self.checkpoint_every = run_dir, curiosity, checkpoint_every
        self.last_checkpoint = 0
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.steps = self.pushes_moved = self.pushes_hit = self.in_view = 0
        self.t0 = time.perf_counter()

    def _on_training_start(self) -> None:
        self.last_checkpoint = self.num_timesteps
        self._reset_counts()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self.steps += 1
            push = info.get("push") or {}
            self.pushes_moved += bool(push.get("moved", False))
            self.pushes_hit += bool(push.get("hit", False))
            self.in_view += int(info.get("objects_in_view", 0) or 0) > 0
        return True

    def _on_rollout_end(self) -> None:
        row: dict[str, float] = {"step": float(self.num_timesteps)}
        if self.steps:
            row["rollout/pushes_moved_per_1k"] = 1000.0 * self.pushes_moved / self.steps
            row["rollout/pushes_hit_per_1k"] = 1000.0 * self.pushes_hit / self.steps
            row["rollout/object_in_view_frac"] = self.in_view / self.steps
            row["rollout/steps_per_s"] = self.steps / max(time.perf_counter() - self.t0, 1e-9)
        if self.curiosity is not None:
            row.update(self.curiosity.pop_stats())
        for k, v in row.items():
            if k != "step":
                self.logger.record(k, v)
        self.run_dir.append_metrics(row)
        self._reset_counts()
        if self.num_timesteps - self.last_checkpoint >= self.checkpoint_every:
            save_checkpoint(self.run_dir, self.model, self.curiosity)
            self.last_checkpoint = self.num_timesteps


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of the run's ``metrics.jsonl`` (:meth:`RunDir.read_metrics`)."""
    return RunDir(run_dir).read_metrics()


# ------------------------------------------------------------------------------------------------------ train


def _load_file(path: Path, load: Any) -> Any:
    """``load(path)``, with a file that does not load (truncated, overwritten, ...) as one ValueError naming it."""
    try:
        return load(path)
    except (ValueError, FileNotFoundError):
        raise  # already one line naming the file (a variant mismatch, a missing file)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and torch errors of a damaged file
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"{path} is damaged and does not load ({type(exc).__name__}: {reason}); point "
            f"{path.parent.parent / RunDir.LATEST} at an older checkpoint folder, or start over with --overwrite"
        ) from None


CNN_MIN_SIDE = 36
"""The smallest observation side SB3's ``CnnPolicy`` (NatureCNN: 8x8 stride 4, 4x4 stride 2, 3x3) can take."""


def check_policy_input(env_kwargs: dict[str, Any]) -> None:
    """ValueError when ``env_kwargs``' ``resolution`` is too small for PPO's ``CnnPolicy``, naming the valid sizes
    (raised before a run folder is touched or an env worker starts)."""
    resolution = env_kwargs.get("resolution")
    if resolution is None:
        return
    sides = [resolution] * 2 if isinstance(resolution, (int, float)) else list(resolution)
    if all(isinstance(side, (int, float)) for side in sides) and min(sides) < CNN_MIN_SIDE:
        raise ValueError(
            f"env_kwargs resolution {resolution!r} is too small for PPO's CnnPolicy (NatureCNN): it needs at least "
            f"{CNN_MIN_SIDE}x{CNN_MIN_SIDE} pixels; use a resolution of {CNN_MIN_SIDE} or more (the env's default: 64)"
        )


def train(cfg: TrainConfig | None = None, resume: str | os.PathLike | None = None) -> TrainResult:
    """Train (or resume) a PPO agent with the configured curiosity reward.

    Args:
        cfg: The run's settings. When resuming, only its ``total_steps`` (when > 0: the new budget) and
            ``progress_bar`` count; every other setting comes from the run's ``config.json``.
        resume: A run folder to continue from its latest checkpoint.

    Returns:
        The run's :class:`TrainResult`.

    Raises:
        RunDirExistsError: A fresh run (no ``resume``) was pointed at a folder with checkpoints and
            ``cfg.overwrite`` is False.
        ValueError: Observations too small for PPO's ``CnnPolicy`` (:func:`check_policy_input`).
    """
    if resume is not None:
        run = RunDir(resume).require()
        if not run.config_path.is_file():
            raise FileNotFoundError(f"{run.path} holds no {RunDir.CONFIG}: it is not a `tdwgym train` run folder")
        saved = TrainConfig.from_dict(run.read_config())
        if cfg is not None:
            if cfg.total_steps > 0:
                saved.total_steps = cfg.total_steps
            saved.progress_bar = cfg.progress_bar
        cfg = saved
    else:
        cfg = cfg or TrainConfig()
        check_policy_input(cfg.env_kwargs)
        run = RunDir(cfg.run_dir)
        run.prepare_fresh(cfg.overwrite)
    run_dir = run.path
    cfg.run_dir = str(run_dir)
    if resume is None:  # a resumed run's config (its raised budget) is written once its checkpoint has loaded
        run.write_config(dataclasses.asdict(cfg))
    configure_torch_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)

    venv, curiosity = make_vec_env(cfg)
    ckpt = run.latest_checkpoint() if resume is not None else None
    if ckpt is not None:
        try:
            model = _load_file(ckpt / RunDir.AGENT, lambda p: PPO.load(p, env=venv, device=device))
            if curiosity is not None:
                _load_file(ckpt / RunDir.WORLD_MODEL, curiosity.load_world_model)
                _load_file(run.statistics_path(ckpt), curiosity.load_statistics)
        except BaseException:  # the run folder is left as it was, and no env worker is left running
            venv.close()
            raise
        run.write_config(dataclasses.asdict(cfg))
        run.truncate_metrics(model.num_timesteps)
    else:
        model = PPO(
            "CnnPolicy",
            venv,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            learning_rate=cfg.learning_rate,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            ent_coef=cfg.ent_coef,
            clip_range=cfg.clip_range,
            normalize_advantage=cfg.normalize_advantage,
            policy_kwargs={"features_extractor_kwargs": {"features_dim": cfg.features_dim}},
            tensorboard_log=str(run.tensorboard_dir),
            device=device,
            seed=cfg.seed,
            verbose=cfg.verbose,
        )
        if resume is not None:  # a run folder with its config and no checkpoint yet
            run.write_config(dataclasses.asdict(cfg))
    callback = TrainCallback(run, curiosity, cfg.checkpoint_every)
    remaining = max(0, cfg.total_steps - model.num_timesteps)
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=callback,
            tb_log_name="PPO",
            reset_num_timesteps=ckpt is None,
            progress_bar=cfg.progress_bar,
        )
    wall = time.perf_counter() - start
    save_checkpoint(run, model, curiosity)
    venv.close()

    result = TrainResult(run_dir, int(model.num_timesteps), wall, model, curiosity)
    result.plot_path = plot_training(run_dir)
    if cfg.video_steps > 0:
        result.video_path = record_video(cfg, model, run.video_path)
    return result


# ------------------------------------------------------------------------------------------------ video, plot


def record_video(cfg: TrainConfig, model: PPO, path: Path, seed: int = 12_345) -> Path:
    """Roll the agent out in one rendered environment and write the frames (with an object-in-view bar)."""
    from tdwgym.tools.recording import mark_push
    from tdwgym.tools.video import write_video

    env_kwargs = {**cfg.env_kwargs, "render_size": cfg.video_size}
    venv: VecEnv = DummyVecEnv([_make_env_fn(cfg.env_id, env_kwargs, render=True)])
    venv.seed(seed)
    if cfg.frame_stack > 1:
        venv = VecFrameStack(venv, cfg.frame_stack)
    obs = venv.reset()
    frames = []
    for _ in range(cfg.video_steps):
        action, _ = model.predict(obs, deterministic=False)
        obs, _, _, infos = venv.step(action)
        frame = np.asarray(venv.env_method("render")[0], dtype=np.uint8).copy()
        frames.append(mark_push(frame, infos[0], width=6))  # a coloured border marks pushes that hit / moved
    venv.close()
    return write_video(frames, path, fps=30)


def plot_training(run_dir: str | os.PathLike) -> Path | None:
    """PNG of intrinsic reward, world-model loss and pushes over training, from ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = RunDir(run_dir).read_metrics()
    if not rows:
        return None
    step = np.array([r["step"] for r in rows])

    def series(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in rows], dtype=float)

    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    axes[0].plot(step, series("curiosity/intrinsic_reward_raw"), label="raw (prediction error)")
    ax0b = axes[0].twinx()
    ax0b.plot(step, series("curiosity/intrinsic_reward"), color="tab:orange", label="normalised")
    axes[0].set_ylabel("intrinsic reward (raw)")
    ax0b.set_ylabel("normalised", color="tab:orange")
    axes[0].legend(loc="upper left")
    axes[1].plot(step, series("world_model/loss"), color="tab:red")
    axes[1].set_ylabel("world-model loss")
    wm_loss = series("world_model/loss")
    if np.isfinite(wm_loss).any() and np.nanmin(wm_loss) > 0:
        axes[1].set_yscale("log")
    axes[2].plot(step, series("rollout/pushes_moved_per_1k"), label="pushes that moved an object / 1k steps")
    axes[2].plot(step, 100 * series("rollout/object_in_view_frac"), label="% frames with an object in view")
    axes[2].legend(loc="upper left")
    axes[2].set_xlabel("environment steps")
    fig.suptitle(f"Curiosity training: {Path(run_dir).name}")
    fig.tight_layout()
    out = RunDir(run_dir).plot_path
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
