"""Offline pretraining of a world model on clips from the curriculum: ``tdwgym pretrain``.

Clips come either straight from the scenario generators (:class:`ClipStream`, a torch ``IterableDataset`` whose
``DataLoader`` workers run the envs: no disk in between) or from a dataset folder written by ``tdwgym dataset``
(:class:`~tdwgym.tools.dataset.ClipDataset`). A mix of scenarios and levels is drawn with fixed weights, or on a
curriculum that moves from the first level listed to all of them over the first half of the run.

Models with memory train by truncated backpropagation through time: each clip is cut into chunks of
``tbptt`` steps and the model's state is carried from one chunk into the next (detached). Other models train on
every transition of the clips with their ``k``-frame context.

The run folder holds ``pretrain.json`` (the settings), ``checkpoints/ckpt-<frames>.pt`` with ``latest.json``
pointing at the newest (written to a temporary file, then renamed: a kill -9 leaves the previous one intact),
``world_model.pt`` (the final model in the format ``tdwgym eval --model`` and ``train --world-model`` read),
``metrics.jsonl``, TensorBoard events under ``tb/`` and ``summary.json``. Validation runs on test_id and test_ood
clips (scenes disjoint from training by the held-out splits) and reports the model's error beside copy-last's.

The module runs a little over 600 lines: the clip sources and the training loop it feeds are one job here, and the
Ray path (``--ray``) is being built on the same loop; they are to part when it lands.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import tdwgym
from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.models import Clips, WorldModel, make_world_model, resize_frames, safe_load, world_model_from_config
from tdwgym.agents.online import atomic_torch_save
from tdwgym.registration import resolve_env_id, short_names
from tdwgym.util.files import write_atomic

__all__ = ["ClipStream", "PretrainConfig", "parse_mix", "pretrain"]

SEED_BASE = 1_000_000
"""Training clips reset with seeds from here up (any seed works: the train split holds no held-out scene)."""

ACTIONS = 10
"""Size of the envs' discrete action space (one-hot action vectors)."""


def env_id_of(name: str) -> str:
    """A tdwgym env id from an id or a short name (``occlusion``: :func:`tdwgym.registration.resolve_env_id`).

    Raises:
        ValueError: Neither, naming the valid values.
    """
    env_id = resolve_env_id(name)
    if env_id not in tdwgym.ENV_IDS:
        raise ValueError(f"{name!r} is not a tdwgym env; valid envs are {', '.join(short_names())}")
    return env_id


def parse_mix(text: str) -> dict[str, float]:
    """``"occlusion:4,collision:1"`` -> ``{env id: weight}`` (a missing weight is 1).

    Raises:
        ValueError: An unknown env, or a weight that is not a positive number.
    """
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight!r} in --env {text!r}: expected NAME[:WEIGHT],...") from None
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"weight of {name!r} must be a positive number, got {weight!r}")
        out[env_id_of(name)] = w
    if not out:
        raise ValueError(f"--env {text!r} names no env; valid envs are {', '.join(short_names())}")
    return out


@dataclass
class PretrainConfig:
    """Settings of ``tdwgym pretrain`` (every field is a CLI option of the same name)."""

    model: str = "recurrent"
    """World-model variant (``recurrent``, ``jepa``, ``pixel``, ``latent``, ...)."""
    envs: str = "occlusion:4,collision:1,gravity:1,stability:1,playroom:1"
    """Scenario mix: ``NAME[:WEIGHT],...`` with short names or env ids (``--envs``: a mix, where ``--env`` names one
    env in other commands)."""
    level: str = "0,1,2"
    """Levels drawn (comma list); with ``curriculum`` the first one alone at the start."""
    curriculum: bool = False
    """Start on the first level listed and widen to all of them over the first half of the run."""
    data: str | None = None
    """A dataset folder of ``tdwgym dataset`` to train on instead of streaming from the generators."""
    resolution: int = 32
    """Frame size the model sees (square)."""
    clip_steps: int = 96
    """Transitions per clip (a clip is ``clip_steps + 1`` frames from a reset)."""
    tbptt: int = 32
    """Steps per truncated-backpropagation chunk (models with memory carry their state across chunks)."""
    static_fraction: float = 0.6
    """Share of clips with a still camera (what the violation-of-expectation tests show); the others move it with
    random actions held for a few steps."""
    total_steps: int = 400_000
    """Training budget in transitions (frames predicted)."""
    batch_size: int = 16
    """Clips per batch."""
    learning_rate: float = 1e-3
    """Adam learning rate (cosine decay to a tenth over the run)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    workers: int = 1
    """DataLoader worker processes that run the envs (0: in the training process)."""
    seed: int = 0
    """Seed of the model's initial weights and of the clip stream."""
    val_every: int = 50_000
    """Transitions between validations (and checkpoints)."""
    val_clips: int = 8
    """Clips per held-out split in validation."""
    device: str = "auto"
    """Torch device: auto (CUDA when available, with mixed precision), cpu, cuda."""
    out: str = "runs/pretrain"
    """Run folder."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of the world model (JSON on the CLI), e.g. ``{"hidden": 96}``."""

    def validate(self) -> None:
        """Check every field before anything runs or is written.

        Raises:
            ValueError: The first bad field, its value and what is valid.
        """
        from tdwgym.agents.models import MODELS

        if self.model not in MODELS:
            raise ValueError(f"unknown --model {self.model!r}; valid: {sorted(MODELS)}")
        parse_mix(self.envs)
        self.levels()
        for name in ("resolution", "clip_steps", "tbptt", "total_steps", "batch_size", "val_every", "val_clips"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.resolution % 4:
            raise ValueError(f"--resolution must be a multiple of 4, got {self.resolution}")
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")
        if not 0.0 <= self.static_fraction <= 1.0:
            raise ValueError(f"--static-fraction must be in [0, 1], got {self.static_fraction}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"--learning-rate must be a positive number, got {self.learning_rate}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device} but CUDA is not available; use auto or cpu")
        if self.data is not None and not Path(self.data).is_dir():
            raise ValueError(f"--data {self.data!r} is not a folder (expected a dataset written by tdwgym dataset)")

    def levels(self) -> list[int]:
        """The levels as integers."""
        from tdwgym.envs.factors import LEVELS

        valid = ",".join(map(str, LEVELS))
        try:
            levels = [int(x) for x in str(self.level).split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--level must be a comma list of the env levels {valid}, got {self.level!r}") from None
        if not levels or any(lv not in LEVELS for lv in levels):
            raise ValueError(f"--level must be a comma list of the env levels {valid}, got {self.level!r}")
        return levels


# ---------------------------------------------------------------------------------------------------- clip sources


def record_clip(
    env: gym.Env, seed: int, steps: int, static: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Reset ``env`` with ``seed`` and record ``steps`` steps: ``(frames (T+1, 3, H, W) uint8, actions (T,) int,
    passes)``, ``passes`` holding the other render passes of Dict observations (``(T+1, H, W)`` each).

    A still camera takes no-ops; otherwise random actions are held for 1-6 steps each (the camera sweeps
    instead of jittering)."""
    obs, _ = env.reset(seed=int(seed))
    extra = {k: [np.asarray(v)[..., 0]] for k, v in obs.items() if k != "rgb"} if isinstance(obs, dict) else {}
    first = obs["rgb"] if isinstance(obs, dict) else obs
    frames = np.empty((steps + 1, *np.asarray(first).shape), dtype=np.uint8)
    frames[0] = first
    actions = np.zeros(steps, dtype=np.int64)
    action, hold = 0, 0
    for t in range(steps):
        if not static:
            if hold == 0:
                action, hold = int(rng.integers(env.action_space.n)), int(rng.integers(1, 7))
            hold -= 1
        obs, _, terminated, truncated, _ = env.step(action)
        rgb = obs["rgb"] if isinstance(obs, dict) else obs
        frames[t + 1] = rgb
        for k in extra:
            extra[k].append(np.asarray(obs[k])[..., 0])
        actions[t] = action
        if terminated or truncated:  # shorter episodes hold their last frame
            frames[t + 2 :] = rgb
            for k in extra:
                extra[k] += [extra[k][-1]] * (steps - t - 1)
            break
    return frames.transpose(0, 3, 1, 2), actions, {k: np.stack(v) for k, v in extra.items()}


class ClipStream(IterableDataset):
    """An endless stream of clips from the scenario generators (train split), drawn from a mix.

    Clip ``i`` of the stream is a function of ``(seed, i)`` alone, whichever worker makes it: worker ``w`` of
    ``W`` makes clips ``w, w + W, ...``, and a resumed run starts at its ``start`` clip.

    Args:
        mix: Env id -> weight.
        levels: Levels drawn uniformly (or per ``schedule``).
        resolution: Frame size.
        steps: Transitions per clip.
        static_fraction: Share of still-camera clips.
        seed: Stream seed.
        start: Index of the first clip.
        schedule: Optional ``clip index -> number of levels available`` (the curriculum).
        split: Split of the scenes (``train``; validation uses ``test_id`` / ``test_ood``).
        encode: The model's :meth:`~tdwgym.agents.models.WorldModel.clip_encoder` for models that read more than
            RGB: the envs then render RGB, depth and segmentation (``obs_mode="rgbd_seg"``) and clips hold what it
            returns.
    """

    def __init__(
        self,
        mix: dict[str, float],
        levels: list[int],
        resolution: int,
        steps: int,
        static_fraction: float = 0.6,
        seed: int = 0,
        start: int = 0,
        schedule: tuple[int, int] | None = None,
        split: str = "train",
        encode: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.encode = encode
        self.env_ids = list(mix)
        weights = np.asarray([mix[e] for e in self.env_ids], dtype=np.float64)
        self.p = weights / weights.sum()
        self.levels, self.resolution, self.steps = list(levels), int(resolution), int(steps)
        self.static_fraction, self.seed, self.start = float(static_fraction), int(seed), int(start)
        self.schedule, self.split = schedule, split

    def levels_at(self, index: int) -> list[int]:
        """Levels available to clip ``index`` (all of them, or the curriculum's first ones)."""
        if self.schedule is None:
            return self.levels
        full_at, _ = self.schedule
        n = 1 + int((len(self.levels) - 1) * min(1.0, index / max(full_at, 1)))
        return self.levels[:n]

    def clip(self, index: int, envs: dict[tuple[str, int], gym.Env]) -> Clips:
        """Clip ``index`` (envs are made on first use and cached in ``envs``)."""
        rng = np.random.default_rng([self.seed, index])
        env_id = self.env_ids[int(rng.choice(len(self.env_ids), p=self.p))]
        levels = self.levels_at(index)
        level = levels[int(rng.integers(len(levels)))]
        key = (env_id, level)
        if key not in envs:
            obs_mode = "rgb" if self.encode is None else "rgbd_seg"
            envs[key] = gym.make(env_id, resolution=self.resolution, level=level, split=self.split, obs_mode=obs_mode)
        static = bool(rng.random() < self.static_fraction)
        frames, actions, extra = record_clip(envs[key], SEED_BASE + index, self.steps, static, rng)
        clip = torch.from_numpy(frames)
        if self.encode is not None:
            clip = torch.from_numpy(
                self.encode(frames.transpose(0, 2, 3, 1), extra["segmentation"], extra.get("depth"))
            )
        return Clips(clip, F.one_hot(torch.from_numpy(actions), ACTIONS).float())

    def __iter__(self) -> Iterator[Clips]:
        info = get_worker_info()
        wid, n = (0, 1) if info is None else (info.id, info.num_workers)
        envs: dict[tuple[str, int], gym.Env] = {}
        try:
            index = self.start + wid
            while True:
                yield self.clip(index, envs)
                index += n
        finally:
            for env in envs.values():
                env.close()


def collate_clips(items: list[Clips]) -> Clips:
    """Stack single clips into a batch."""
    return Clips(torch.stack([c.frames for c in items]), torch.stack([c.actions for c in items]))


def dataset_clips(
    root: str, steps: int, resolution: int, encode: Callable[..., Any] | None = None
) -> torch.utils.data.Dataset:
    """Clips of ``steps + 1`` frames from a ``tdwgym dataset`` folder, resized to ``resolution``; with ``encode``
    (an object model's :meth:`~tdwgym.agents.models.WorldModel.clip_encoder`) the clips are what it makes of the
    episodes' RGB, segmentation and depth."""
    from tdwgym.tools.dataset import ClipDataset

    keys = ("rgb", "actions") if encode is None else ("rgb", "segmentation", "depth", "actions")
    base = ClipDataset(root, clip_len=steps + 1, keys=keys)

    class _Clips(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(base)

        def __getitem__(self, i: int) -> Clips:
            item = base[i]
            acts = item["actions"][1:].clamp_min(0)  # action t produced frame t; the first frame has none
            if encode is not None:
                rgb = np.asarray(item["rgb"]).transpose(0, 2, 3, 1)
                depth = np.asarray(item["depth"])[:, 0]
                frames = torch.from_numpy(encode(rgb, np.asarray(item["segmentation"]), depth))
            else:
                frames = resize_frames(item["rgb"], (resolution, resolution))
            return Clips(frames, F.one_hot(acts.long(), ACTIONS).float())

    return _Clips()


# ------------------------------------------------------------------------------------------------------ training


def _reads_slots(cfg: PretrainConfig) -> bool:
    """Whether the model of ``cfg`` reads segmentation (object slots) rather than RGB frames."""
    from tdwgym.agents.models import MODELS

    return "segmentation" in getattr(MODELS.get(cfg.model), "passes", ())


def _model_shape(cfg: PretrainConfig) -> tuple[tuple[int, ...]]:
    """The frame shape of the model of ``cfg``: RGB at ``resolution``, or the slot table of an object model."""
    if _reads_slots(cfg):
        from tdwgym.agents.models.slots import MAX_SLOTS, NUM_FEATURES

        return ((MAX_SLOTS, NUM_FEATURES),)
    return ((3, cfg.resolution, cfg.resolution),)


def _model_kwargs(cfg: PretrainConfig) -> dict[str, Any]:
    """The model's arguments: ``model_kwargs``, and the render size an object model reads its slots at."""
    return {**({"resolution": cfg.resolution} if _reads_slots(cfg) else {}), **cfg.model_kwargs}


def _atomic_json(obj: Any, path: Path) -> None:
    write_atomic(path, json.dumps(obj, indent=2))


def command_line(cfg: PretrainConfig) -> str:
    """The ``tdwgym pretrain`` command that reproduces ``cfg`` (the options that differ from the defaults)."""
    default = PretrainConfig()
    parts = ["tdwgym pretrain"]
    for f in dataclasses.fields(PretrainConfig):
        value = getattr(cfg, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        if value == getattr(default, f.name):
            continue
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            parts.append(f"{flag} {text!r}" if " " in text or "{" in text else f"{flag} {text}")
    return " ".join(parts)


def save_world_model(model: WorldModel, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> None:
    """Write ``model`` as a world-model file (``{"model_config", "model", "meta"}``: plain data and tensors, loadable
    with ``torch.load(weights_only=True)``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"model_config": model.config(), "model": state, "meta": dict(meta or {})}, path)


def _train_step(
    model: WorldModel,
    batch: Clips,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    tbptt: int,
    max_grad_norm: float,
) -> dict[str, float]:
    """One pass over a batch: chunks of ``tbptt`` steps, one optimiser step each, state carried between them."""
    state = None
    losses = []
    dev = model.device
    for s in range(0, batch.steps, tbptt):
        chunk = Clips(batch.frames[:, s : s + tbptt + 1], batch.actions[:, s : s + tbptt])
        with torch.autocast(dev.type, dtype=torch.float16, enabled=scaler is not None):
            out, state = model.clip_loss(chunk, state)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(out.loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(opt)
            scaler.update()
        else:
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
        model.after_update()
        losses.append(float(out.loss.detach()))
    return {"loss": float(np.mean(losses)), **out.metrics}


@torch.no_grad()
def validate(model: WorldModel, clips: Clips, tbptt: int) -> dict[str, float]:
    """Mean per-step loss of ``model`` on held-out clips (state carried through each clip), and copy-last's
    L1/L2 error on the same frames (pixel models' losses compare with it directly)."""
    model.eval()
    state, losses = None, []
    dev = model.device
    for s in range(0, clips.steps, tbptt):
        chunk = Clips(clips.frames[:, s : s + tbptt + 1], clips.actions[:, s : s + tbptt]).to(dev)
        out, state = model.clip_loss(chunk, state)
        losses.append(float(out.per_sample.mean()))
    model.train()
    if clips.frames.dtype != torch.uint8:  # frames of another kind (object slots): no pixel baseline
        return {"loss": float(np.mean(losses)), "copy_last": float("nan")}
    x = clips.frames.float() / 255.0
    diff = x[:, 1:] - x[:, :-1]
    copy_last = float(0.5 * diff.abs().mean() + 0.5 * diff.pow(2).mean())
    return {"loss": float(np.mean(losses)), "copy_last": copy_last}


def _validation_clips(cfg: PretrainConfig, split: str, encode: Callable[..., Any] | None = None) -> Clips:
    stream = ClipStream(
        parse_mix(cfg.envs),
        cfg.levels(),
        cfg.resolution,
        cfg.clip_steps,
        1.0,
        seed=cfg.seed + 7,
        split=split,
        encode=encode,
    )
    envs: dict[tuple[str, int], gym.Env] = {}
    try:
        return collate_clips([stream.clip(i, envs) for i in range(cfg.val_clips)])
    finally:
        for env in envs.values():
            env.close()


def _latest(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint: the one ``latest.json`` names, else (damaged pointer or file) the newest
    file that loads, with a warning."""
    pointer = ckpt_dir / "latest.json"
    candidates = sorted(ckpt_dir.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]), reverse=True)
    try:
        named = ckpt_dir / json.loads(pointer.read_text())["file"]
        candidates = [named] + [c for c in candidates if c != named]
    except (OSError, ValueError, KeyError, TypeError):
        if pointer.exists():
            warnings.warn(f"{pointer} is damaged; resuming from the newest checkpoint that loads", stacklevel=2)
    for c in candidates:
        try:
            safe_load(c)
        except Exception:  # noqa: BLE001 - any unreadable file is skipped
            warnings.warn(f"checkpoint {c} is damaged; trying an older one", stacklevel=2)
            continue
        return c
    return None


def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` on the curriculum's clips; see the module docstring for what the run folder holds.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        ValueError: A bad setting (before anything is written), or ``out`` holds another run and not ``resume``.
    """
    cfg.validate()
    configure_torch_threads()  # one thread per two cores: the clip workers have the others
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    saved_cfg = out / "pretrain.json"
    if saved_cfg.exists() and not resume:
        raise ValueError(f"{out} already holds a pretraining run; pass --resume to continue it, or another --out")
    # a dataset folder is opened before anything is written: a bad one leaves no orphan run folder
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = make_world_model(cfg.model, *_model_shape(cfg), ACTIONS, device=dev, **_model_kwargs(cfg))
    data = dataset_clips(cfg.data, cfg.clip_steps, cfg.resolution, model.clip_encoder()) if cfg.data else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    use_amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    frames_done, clips_done, history = 0, 0, []
    if resume:
        found = _latest(ckpt_dir) if ckpt_dir.is_dir() else None
        if found is None:
            raise ValueError(f"--resume: {ckpt_dir} holds no complete checkpoint")
        for stale in ckpt_dir.glob("*.tmp"):  # half-written by a run killed mid-save; never read, so dropped
            stale.unlink(missing_ok=True)
        state = safe_load(found)
        model = world_model_from_config(state["model_config"], device=dev)
        model.load_state_dict(state["model"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        opt.load_state_dict(state["optimizer"])
        frames_done, clips_done = int(state["frames"]), int(state["clips"])
        history = list(json.loads(state["history"]))
    else:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        _atomic_json(dataclasses.asdict(cfg), saved_cfg)
    model.train()

    schedule = (cfg.total_steps // cfg.clip_steps // 2, 0) if cfg.curriculum else None
    if data is not None:
        sampler = torch.utils.data.RandomSampler(
            data, replacement=True, num_samples=10**9, generator=torch.Generator().manual_seed(cfg.seed + clips_done)
        )
        loader = DataLoader(
            data,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.workers,
            collate_fn=collate_clips,
            pin_memory=use_amp,
            persistent_workers=cfg.workers > 0,
        )
    else:
        stream = ClipStream(
            parse_mix(cfg.envs),
            cfg.levels(),
            cfg.resolution,
            cfg.clip_steps,
            cfg.static_fraction,
            cfg.seed,
            start=clips_done,
            schedule=schedule,
            encode=model.clip_encoder(),
        )
        loader = DataLoader(
            stream,
            batch_size=cfg.batch_size,
            num_workers=cfg.workers,
            collate_fn=collate_clips,
            pin_memory=use_amp,
            prefetch_factor=4 if cfg.workers else None,
        )
    val = {split: _validation_clips(cfg, split, model.clip_encoder()) for split in ("test_id", "test_ood")}

    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    writer = SummaryWriter(str(out / "tb"))
    bar = tqdm(
        total=cfg.total_steps, initial=frames_done, unit="fr", disable=not progress, desc=f"pretrain {cfg.model}"
    )
    metrics_file = open(out / "metrics.jsonl", "a")  # noqa: SIM115 - closed in finally
    compute_s, start, frames_run = 0.0, time.perf_counter(), 0
    next_val = (frames_done // cfg.val_every + 1) * cfg.val_every

    def checkpoint() -> None:
        name = f"ckpt-{frames_done}.pt"
        state = {
            "model_config": model.config(),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "frames": frames_done,
            "clips": clips_done,
            "history": json.dumps(history),
        }
        atomic_torch_save(state, ckpt_dir / name)
        _atomic_json({"file": name, "frames": frames_done}, ckpt_dir / "latest.json")
        for old in sorted(ckpt_dir.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))[:-2]:
            old.unlink(missing_ok=True)

    try:
        it = iter(loader)
        while frames_done < cfg.total_steps:
            batch = next(it)
            t0 = time.perf_counter()
            lr = cfg.learning_rate * (
                0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frames_done / cfg.total_steps)))
            )
            for group in opt.param_groups:
                group["lr"] = lr
            m = _train_step(model, batch.to(dev), opt, scaler, cfg.tbptt, cfg.max_grad_norm)
            compute_s += time.perf_counter() - t0
            n = len(batch) * batch.steps
            frames_done += n
            frames_run += n
            clips_done += len(batch)
            bar.update(n)
            bar.set_postfix(loss=f"{m['loss']:.4g}")
            for key, value in m.items():
                writer.add_scalar(f"train/{key}", value, frames_done)
            if frames_done >= next_val or frames_done >= cfg.total_steps:
                next_val += cfg.val_every
                row = {"frames": frames_done, "train_loss": m["loss"], "lr": lr}
                for split, clips in val.items():
                    v = validate(model, clips, cfg.tbptt)
                    row[f"{split}/loss"], row[f"{split}/copy_last"] = v["loss"], v["copy_last"]
                    writer.add_scalar(f"{split}/loss", v["loss"], frames_done)
                wall = time.perf_counter() - start
                row["frames_per_s"] = frames_run / wall
                row["compute_frames_per_s"] = frames_run / max(compute_s, 1e-9)
                history.append(row)
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                checkpoint()
    finally:
        bar.close()
        writer.close()
        metrics_file.close()
        del loader

    wall = time.perf_counter() - start
    summary = {
        "config": dataclasses.asdict(cfg),
        "frames": frames_done,
        "clips": clips_done,
        "wall_time_s": wall,
        "frames_per_s": frames_run / max(wall, 1e-9),
        "compute_frames_per_s": frames_run / max(compute_s, 1e-9),
        "loader_ratio": compute_s / max(wall, 1e-9),
        "device": str(dev),
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history,
    }
    meta = {"frames": frames_done, "pretrain": dataclasses.asdict(cfg), "command": command_line(cfg)}
    save_world_model(model, out / "world_model.pt", meta=meta)
    _atomic_json(summary, out / "summary.json")
    return summary
