"""Train PPO with a curiosity reward (or without one) on a tdwgym environment.

The recipe, top to bottom:

1. ``TrainConfig`` holds every setting; it is written to ``RUN_DIR/config.json``.
2. ``make_vec_env`` builds ``n_envs`` copies of the environment (a share in this process, the rest in worker
   processes: :class:`~tdwgym.tools.vector.LockstepVecEnv`), with ``VecMonitor`` (episode
   statistics of the extrinsic reward), the :class:`~tdwgym.agents.curiosity.CuriosityVecEnv` (per-step intrinsic
   reward, world-model training) and an optional ``VecFrameStack``.
3. PPO with ``CnnPolicy`` learns; :class:`TrainCallback` (the public
   :class:`~tdwgym.agents.callbacks.CuriosityCallback` plus files) logs ``curiosity/``, ``world_model/`` and
   ``rollout/`` scalars to TensorBoard and ``metrics.jsonl``, and writes checkpoints of agent, world model and wrapper
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

from tdwgym.agents.agent_zip import load_agent
from tdwgym.agents.callbacks import CuriosityCallback, ProgressCallback
from tdwgym.agents.curiosity import CuriosityConfig, CuriosityVecEnv
from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.rundir import RunDir, RunDirExistsError
from tdwgym.tools.vector import LockstepVecEnv, default_split
from tdwgym.util.files import read_json, write_atomic
from tdwgym.util.locks import run_lock
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
within a short budget (with a cone of 0 even a push-paid agent learned nothing in 30,000 steps:
docs/results/2026-11-22-curiosity-comparisons.md)."""


@dataclass
class TrainConfig(CuriosityConfig):
    """Everything a training run needs (CleanRL style: one field, one docstring): the curiosity reward's settings
    (:class:`~tdwgym.agents.curiosity.CuriosityConfig`, whose fields come first), then the env's, PPO's and the
    run's."""

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
    ``"subproc"`` (SB3's ``SubprocVecEnv``: one process per env) or ``"dummy"`` (all in this process: two runs side
    by side on 2 cores, tests). The choice changes the speed only: a seed gives the same run with each."""
    frame_stack: int = 1
    """Frames stacked for the policy (1 = none)."""
    seed: int = 0
    """Seed of the environments, PPO and the world model."""

    n_steps: int = 128
    """PPO rollout length per environment."""
    batch_size: int = 64
    """PPO minibatch size."""
    n_epochs: int = 10
    """PPO epochs per rollout."""
    learning_rate: float = 5e-4
    """PPO learning rate."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    clip_range: float = 0.2
    """PPO clip range."""
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
    """Show progress on stderr: a bar on a terminal, plain lines in a log (``--no-progress`` hides it)."""
    verbose: int = 0
    """SB3 verbosity."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vec_env not in VEC_ENVS:
            raise ValueError(f"vec_env must be one of {VEC_ENVS}, got {self.vec_env!r}")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config written by :meth:`to_json`."""
        return cls.from_dict(read_json(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a run's ``config.json`` contents (fields it does not know are left out)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the config as JSON (atomically)."""
        write_atomic(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def ppo_kwargs(self) -> dict[str, Any]:
        """The arguments of SB3's ``PPO`` these settings give (beside the policy, the env, the device and logging)."""
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "ent_coef": self.ent_coef,
            "clip_range": self.clip_range,
            "policy_kwargs": {"features_extractor_kwargs": {"features_dim": self.features_dim}},
            "seed": self.seed,
        }


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


def _make_env_fn(env_id: str, env_kwargs: dict[str, Any], render: bool = False):
    def _init() -> gym.Env:
        import tdwgym  # noqa: F401 - registers the ids in subprocesses

        kwargs = dict(env_kwargs)
        if render:
            kwargs.setdefault("render_mode", "rgb_array")
        return gym.make(env_id, **kwargs)

    return _init


def env_kwargs_for(cfg: TrainConfig) -> dict[str, Any]:
    """The env arguments of a run: ``cfg.env_kwargs``, and ``obs_mode="rgbd_seg"`` when the curiosity reward's world
    model reads segmentation and depth (the ``objects`` model; the policy still sees RGB).

    Raises:
        ValueError: ``env_kwargs`` asks for another ``obs_mode`` than RGB for such a model.
    """
    if cfg.curiosity == "none" or not CuriosityConfig.of(cfg).passes():
        return dict(cfg.env_kwargs)
    asked = cfg.env_kwargs.get("obs_mode", "rgb")
    if asked not in ("rgb", "rgbd_seg"):
        raise ValueError(
            f"env_kwargs obs_mode {asked!r}: the {cfg.curiosity!r} world model reads segmentation and depth, so the "
            "envs render obs_mode 'rgbd_seg' and the policy sees their RGB; leave obs_mode out (or 'rgb')"
        )
    return {**cfg.env_kwargs, "obs_mode": "rgbd_seg"}


def make_vec_env(cfg: TrainConfig, training: bool = True) -> tuple[VecEnv, CuriosityVecEnv | None]:
    """The environment stack: (Subproc|Lockstep|Dummy)VecEnv -> VecMonitor -> CuriosityVecEnv -> VecFrameStack.

    Returns:
        The top of the stack and the curiosity wrapper in it (None when ``cfg.curiosity == "none"``).
    """
    fns = [_make_env_fn(cfg.env_id, env_kwargs_for(cfg)) for _ in range(cfg.n_envs)]
    if cfg.vec_env == "subproc":  # the env workers end with this process, even after a kill -9 of it
        venv: VecEnv = SubprocVecEnv([dies_with_parent(fn) for fn in fns], start_method="fork")
    elif cfg.vec_env == "lockstep":  # its workers end with this process by themselves
        workers, in_process = default_split(cfg.n_envs, learner=True)  # this process also runs PPO and curiosity
        venv = LockstepVecEnv(fns, workers=workers, in_process=in_process, start_method="fork")
    else:
        venv = DummyVecEnv(fns)
    venv.seed(cfg.seed)
    venv = VecMonitor(venv)
    curiosity = None
    if cfg.curiosity != "none":
        venv = curiosity = CuriosityVecEnv(venv, config=cfg, training=training, device=cfg.device, seed=cfg.seed)
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


class TrainCallback(CuriosityCallback):
    """:class:`~tdwgym.agents.callbacks.CuriosityCallback` (the ``curiosity/``, ``world_model/`` and ``rollout/``
    scalars per rollout), plus each rollout's row in ``metrics.jsonl`` and periodic checkpoints.

    Args:
        run_dir: The run folder (``metrics.jsonl`` and ``checkpoints/`` go there).
        curiosity: The curiosity wrapper, or None.
        checkpoint_every: Steps between checkpoints.
    """

    def __init__(self, run_dir: RunDir, curiosity: CuriosityVecEnv | None, checkpoint_every: int) -> None:
        super().__init__(curiosity)
        self.run_dir, self.checkpoint_every = run_dir, checkpoint_every
        self.last_checkpoint = 0
        self.due = False

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.last_checkpoint = self.num_timesteps

    def _on_rollout_end(self) -> None:
        super()._on_rollout_end()
        self.run_dir.append_metrics(self.last_row)
        self.due = self.num_timesteps - self.last_checkpoint >= self.checkpoint_every

    def _on_rollout_start(self) -> None:
        # a checkpoint due at the last rollout's end is written once PPO has updated on it (here, as the next
        # rollout starts; after the last rollout :func:`train` writes the final one): one checkpoint per step
        if self.due:
            save_checkpoint(self.run_dir, self.model, self.curiosity)
            self.last_checkpoint = self.num_timesteps
            self.due = False


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


def train(
    cfg: TrainConfig | None = None, resume: str | os.PathLike | None = None, *, trust_pickles: bool | None = None
) -> TrainResult:
    """Train (or resume) a PPO agent with the configured curiosity reward.

    Args:
        cfg: The run's settings. When resuming, only its ``total_steps`` (when > 0: the new budget) and
            ``progress_bar`` count; every other setting comes from the run's ``config.json``.
        resume: A run folder to continue from its latest checkpoint.
        trust_pickles: Resume with SB3's ``PPO.load`` (unpickling ``agent.zip``) instead of rebuilding the agent
            from the run's config and its weights (:func:`tdwgym.agents.agent_zip.load_agent`; None:
            ``$TDWGYM_TRUST_PICKLES``).

    Returns:
        The run's :class:`TrainResult`.

    Raises:
        RunDirExistsError: A fresh run (no ``resume``) was pointed at a folder with checkpoints and
            ``cfg.overwrite`` is False.
        ValueError: Observations too small for PPO's ``CnnPolicy`` (:func:`check_policy_input`).
    """
    if resume is not None:
        RunDir(resume).require()
    where = resume if resume is not None else (cfg or TrainConfig()).run_dir
    with run_lock(where, option="--resume" if resume is not None else "--out"):
        return _train(cfg, resume, trust_pickles)


def _train(cfg: TrainConfig | None, resume: str | os.PathLike | None, trust_pickles: bool | None) -> TrainResult:
    if resume is not None:
        run = RunDir(resume).require()
        run.check_writes_inside()
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
            model = _load_file(
                ckpt / RunDir.AGENT,
                lambda p: load_agent(
                    p,
                    venv,
                    device,
                    ppo_kwargs=cfg.ppo_kwargs(),
                    trust_pickles=trust_pickles,
                    tensorboard_log=str(run.tensorboard_dir),
                    verbose=cfg.verbose,
                ),
            )
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
            **cfg.ppo_kwargs(),
            tensorboard_log=str(run.tensorboard_dir),
            device=device,
            verbose=cfg.verbose,
        )
        if resume is not None:  # a run folder with its config and no checkpoint yet
            run.write_config(dataclasses.asdict(cfg))
    callback: list[BaseCallback] = [TrainCallback(run, curiosity, cfg.checkpoint_every)]
    if cfg.progress_bar:
        callback.append(ProgressCallback())
    remaining = max(0, cfg.total_steps - model.num_timesteps)
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=callback,
            tb_log_name="PPO",
            reset_num_timesteps=ckpt is None,
        )
    wall = time.perf_counter() - start
    if remaining > 0 or ckpt is None:  # a resumed run with nothing left to do keeps its last checkpoint
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
