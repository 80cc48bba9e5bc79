"""Offline pretraining of a world model on clips from the curriculum: ``tdwgym pretrain``.

Clips come either straight from the scenario generators (:class:`ClipStream`, a torch ``IterableDataset`` whose
``DataLoader`` workers run the envs: no disk in between) or from a dataset folder written by ``tdwgym dataset``
(:class:`~tdwgym.tools.dataset.ClipDataset`); both are in :mod:`tdwgym.agents.pretraining_clips`. A mix of
scenarios and levels is drawn with fixed weights, or on a curriculum that moves from the first level listed to all of
them over the first half of the run. Models with memory train by truncated backpropagation through time (each clip
cut into chunks of ``tbptt`` steps, the state carried across them, detached); others on every transition of the
clips with their ``k``-frame context.

The run folder holds ``pretrain.json`` (the settings), ``checkpoints/ckpt-<frames>.pt`` with ``latest.json``
pointing at the newest (written to a temporary file, then renamed: a kill -9 leaves the previous one intact),
``world_model.pt`` (the final model in the format ``tdwgym eval --model`` and ``train --world-model`` read),
``metrics.jsonl``, TensorBoard events under ``tb/`` and ``summary.json``. Validation runs on test_id and test_ood
clips (scenes disjoint from training by the held-out splits) and reports the model's error beside copy-last's. With
``--ray`` (:mod:`tdwgym.agents.pretraining_ray`, a :class:`Parallel`) each process trains on its part of every
batch, gradients averaged (``DistributedDataParallel``); rank 0 alone validates and writes the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import DataLoader

from tdwgym.agents.device import configure_torch_threads, resolve_device
from tdwgym.agents.models import Clips, WorldModel, make_world_model, safe_load, world_model_from_config
from tdwgym.agents.online import atomic_torch_save
from tdwgym.agents.pretraining_clips import ACTIONS, ClipStream, collate_clips, dataset_clips, mix_env_kwargs, parse_mix
from tdwgym.util.files import write_atomic
from tdwgym.util.progress_bar import progress_bar

__all__ = ["ClipLoss", "ClipStream", "Parallel", "PretrainConfig", "parse_mix", "pretrain", "save_world_model"]


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
    skip_damaged: bool = True
    """With ``data``: a damaged episode file (arrays that disagree with its metadata, a failed checksum, depth that is
    not finite) is named in a warning and left out; with False (``--no-skip-damaged``) it stops the run, naming it."""
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
    cache: str | None = None
    """A folder in which every clip streamed from the generators is kept as the model is fed it (an object model's
    slot tables: ``clip-<index>.npz``) and read back instead of rendered when it is needed again: in the next epoch
    of ``distinct_clips``, or by another run with the same stream settings (``cache.json`` records them; a folder of
    another stream is refused). Cached clips equal rendered ones, so a run gives the same model either way."""
    distinct_clips: int = 0
    """When > 0, train on this many distinct streamed clips in epochs (the first in order, then each a new shuffle;
    the curriculum widens over the first half of them): with ``cache`` they are rendered once, so rendering no longer
    bounds the optimiser steps of a run. 0: every clip is new."""
    env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Extra arguments of envs of the mix by name (JSON), e.g. ``{"occlusion": {"slide_distance": 12}}`` (sliders keep
    their speed, as in the twins), for training and validation clips; not ``resolution``, ``level``, ``split``."""
    init: str | None = None
    """A world-model file whose weights start the run instead of fresh ones (fine-tuning): ``pretrained`` (the
    shipped model), another shipped name, or a ``world_model.pt``. Its variant must be ``model``'s; its saved settings
    are kept except those ``model_kwargs`` names (a setting that changes a weight's shape is refused)."""

    def validate(self) -> None:
        """Check every field before anything runs or is written.

        Raises:
            ValueError: The first bad field, its value and what is valid.
        """
        from tdwgym.agents.models import MODELS

        if self.model not in MODELS:
            raise ValueError(f"unknown --model {self.model!r}; valid: {sorted(MODELS)}")
        mix_env_kwargs(self.envs, self.env_kwargs)
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
        if isinstance(self.distinct_clips, bool) or not isinstance(self.distinct_clips, int) or self.distinct_clips < 0:
            raise ValueError(
                f"--distinct-clips must be an integer >= 0 (0: every clip new), got {self.distinct_clips!r}"
            )
        if self.data is not None and (self.cache is not None or self.distinct_clips):
            raise ValueError("--cache and --distinct-clips apply to clips streamed from the generators, not to --data")
        if self.cache is not None and Path(self.cache).exists() and not Path(self.cache).is_dir():
            raise ValueError(f"--cache {self.cache!r} is not a folder")
        if self.init is not None:
            _init_model(self)

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


def _init_model(cfg: PretrainConfig, dev: str | torch.device = "cpu") -> WorldModel:
    """The model of the file ``cfg.init`` names, ``model_kwargs`` over its settings, checked against ``cfg``.

    Raises:
        ValueError: No such file, not a world-model file, another variant or render size, or settings that change
            a weight's shape or drop a weight. Settings that add a part (``{"ego_sigma": true}`` on an objects
            model made without it) are accepted: the new weights keep their initial values.
    """
    from tdwgym.agents.models import SHIPPED, load_world_model

    try:
        base = load_world_model(cfg.init, device=dev)  # type: ignore[arg-type]
    except FileNotFoundError:
        shipped = ", ".join(SHIPPED)
        raise ValueError(
            f"--init {cfg.init!r} is not a file; use a shipped model ({shipped}) or a world_model.pt"
        ) from None
    except ValueError as exc:
        raise ValueError(f"--init: {exc}") from exc
    if base.name != cfg.model:
        raise ValueError(f"--init {cfg.init} holds a {base.name!r} model but --model is {cfg.model!r}")
    saved = base.config().get("resolution")
    if _reads_slots(cfg) and saved is not None and int(saved) != cfg.resolution:
        raise ValueError(f"--init {cfg.init} reads frames at {saved}x{saved} but --resolution is {cfg.resolution}")
    fit = f"--model-kwargs {cfg.model_kwargs} do not fit the weights of --init {cfg.init}"
    try:
        model = world_model_from_config({**base.config(), **cfg.model_kwargs}, device=dev)
        # weights the new settings add (a part the file's model did not have) keep their initial values
        _, dropped = model.load_state_dict(base.state_dict(), strict=False)
    except (TypeError, RuntimeError) as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise ValueError(f"{fit}: {first}") from None
    if dropped:
        raise ValueError(f"{fit}: the settings drop its weights {', '.join(dropped)}")
    return model


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


class ClipLoss(torch.nn.Module):
    """``forward(chunk, state) -> (loss, output, state)``: a world model's ``clip_loss`` as a module's forward, the
    form PyTorch's ``DistributedDataParallel`` wraps (it synchronises the gradients of what ``forward`` computed)."""

    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunk: Clips, state: Any) -> tuple[torch.Tensor, Any, Any]:  # noqa: D102
        out, state = self.model.clip_loss(chunk, state)
        return out.loss, out, state


@dataclass
class Parallel:
    """How this process takes part in data-parallel pretraining (:mod:`tdwgym.agents.pretraining_ray`): it trains
    on its part of every batch, gradients are averaged over the ranks, and rank 0 alone writes the run folder."""

    rank: int
    """This process's rank, ``0 .. ranks - 1``."""
    ranks: int
    """Processes taking part."""
    wrap: Callable[[torch.nn.Module], torch.nn.Module]
    """Wraps :class:`ClipLoss` for gradient averaging (``DistributedDataParallel``)."""
    mean: Callable[[list[float]], list[float]]
    """The mean over the ranks of each number (every rank calls it at the same point)."""
    device: torch.device | None = None
    """This rank's device (None: ``cfg.device``)."""


def _train_step(
    step: torch.nn.Module,
    model: WorldModel,
    batch: Clips,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    tbptt: int,
    max_grad_norm: float,
) -> dict[str, float]:
    """One pass over a batch: chunks of ``tbptt`` steps, one optimiser step each, state carried between them
    (``step`` is :class:`ClipLoss` of ``model``, possibly wrapped for data parallelism)."""
    state = None
    losses = []
    dev = model.device
    for s in range(0, batch.steps, tbptt):
        chunk = Clips(batch.frames[:, s : s + tbptt + 1], batch.actions[:, s : s + tbptt])
        with torch.autocast(dev.type, dtype=torch.float16, enabled=scaler is not None):
            loss, out, state = step(chunk, state)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
        model.after_update()
        losses.append(float(loss.detach()))
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
        env_kwargs=mix_env_kwargs(cfg.envs, cfg.env_kwargs),
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


def pretrain(
    cfg: PretrainConfig, resume: bool = False, progress: bool = True, parallel: Parallel | None = None
) -> dict[str, Any]:
    """Train ``cfg.model`` on the curriculum's clips; see the module docstring for what the run folder holds.

    Args:
        cfg: The settings.
        resume: Continue the run in ``cfg.out`` from its newest checkpoint.
        progress: Show progress on stderr (:func:`tdwgym.util.progress_bar.progress_bar`).
        parallel: This process's part in data-parallel training (``tdwgym pretrain --ray``); its driver checked the
            folder and wrote ``pretrain.json``, and the run resumes from the newest checkpoint when there is one (a
            restarted worker group carries on where it was).

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        ValueError: A bad setting (before anything is written), or ``out`` holds another run and not ``resume``.
    """
    cfg.validate()
    configure_torch_threads()  # one thread per two cores: the clip workers have the others
    rank, ranks = (parallel.rank, parallel.ranks) if parallel else (0, 1)
    lead = rank == 0  # writes the run folder, validates, logs
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    saved_cfg = out / "pretrain.json"
    if parallel is not None:
        resume = (_latest(ckpt_dir) if ckpt_dir.is_dir() else None) is not None
    elif saved_cfg.exists() and not resume:
        raise ValueError(f"{out} already holds a pretraining run; pass --resume to continue it, or another --out")
    # a dataset folder is opened before anything is written: a bad one leaves no orphan run folder
    dev = parallel.device if parallel is not None and parallel.device is not None else resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if cfg.init is not None and not resume:
        model = _init_model(cfg, dev)
    else:
        model = make_world_model(cfg.model, *_model_shape(cfg), ACTIONS, device=dev, **_model_kwargs(cfg))
    on_damaged = "skip" if cfg.skip_damaged else "raise"
    data = (
        dataset_clips(cfg.data, cfg.clip_steps, cfg.resolution, model.clip_encoder(), on_damaged) if cfg.data else None
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    use_amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    frames_done, clips_done, history = 0, 0, []
    if resume:
        found = _latest(ckpt_dir) if ckpt_dir.is_dir() else None
        if found is None:
            raise ValueError(f"--resume: {ckpt_dir} holds no complete checkpoint")
        if lead:
            for stale in ckpt_dir.glob("*.tmp"):  # half-written by a run killed mid-save; never read, so dropped
                stale.unlink(missing_ok=True)
        state = safe_load(found)
        model = world_model_from_config(state["model_config"], device=dev)
        model.load_state_dict(state["model"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        opt.load_state_dict(state["optimizer"])
        frames_done, clips_done = int(state["frames"]), int(state["clips"])
        history = list(json.loads(state["history"]))
    elif parallel is None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        _atomic_json(dataclasses.asdict(cfg), saved_cfg)
    model.train()
    step = ClipLoss(model) if parallel is None else parallel.wrap(ClipLoss(model))

    part = cfg.batch_size // ranks
    span = cfg.distinct_clips or cfg.total_steps // cfg.clip_steps
    schedule = (span // 2, 0) if cfg.curriculum else None
    if data is not None:
        sampler = torch.utils.data.RandomSampler(
            data,
            replacement=True,
            num_samples=10**9,
            generator=torch.Generator().manual_seed(cfg.seed + clips_done + 7919 * rank),
        )
        loader = DataLoader(
            data,
            batch_size=part,
            sampler=sampler,
            num_workers=cfg.workers if parallel is None else 1,
            collate_fn=collate_clips,
            pin_memory=use_amp,
            persistent_workers=cfg.workers > 0 or parallel is not None,
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
            batch=cfg.batch_size,
            rank=rank,
            ranks=ranks,
            cache=cfg.cache,
            distinct=cfg.distinct_clips,
            env_kwargs=mix_env_kwargs(cfg.envs, cfg.env_kwargs),
        )
        loaders = cfg.workers if parallel is None else 1  # under Ray, --workers counts the ranks: one clip worker each
        loader = DataLoader(
            stream,
            batch_size=part,
            num_workers=loaders,
            collate_fn=collate_clips,
            pin_memory=use_amp,
            prefetch_factor=4 if loaders else None,
        )
    val = {s: _validation_clips(cfg, s, model.clip_encoder()) for s in ("test_id", "test_ood")} if lead else {}

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb")) if lead else None
    bar = progress_bar(
        total=cfg.total_steps,
        initial=frames_done,
        unit="frame",
        enabled=progress and lead,
        desc=f"pretrain {cfg.model}",
    )
    metrics_file = open(out / "metrics.jsonl", "a") if lead else None  # noqa: SIM115 - closed in finally
    compute_s, start, frames_run, batch_losses = 0.0, time.perf_counter(), 0, []
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
            m = _train_step(step, model, batch.to(dev), opt, scaler, cfg.tbptt, cfg.max_grad_norm)
            if parallel is not None:  # what the ranks measured on their parts, as one number each
                m = dict(zip(m, parallel.mean(list(m.values())), strict=True))
            compute_s += time.perf_counter() - t0
            n = len(batch) * batch.steps * ranks
            frames_done += n
            frames_run += n
            clips_done += len(batch) * ranks
            batch_losses.append(m["loss"])
            bar.update(n)
            bar.set_postfix(loss=f"{m['loss']:.4g}")
            if writer is not None:
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
                if metrics_file is not None:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    checkpoint()
                    if parallel is not None and not progress:
                        print(f"[pretrain] {json.dumps({k: round(v, 5) for k, v in row.items()})}", flush=True)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if metrics_file is not None:
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
        "ranks": ranks,
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history,
        "batch_losses": batch_losses,
    }
    if lead:
        meta = {"frames": frames_done, "pretrain": dataclasses.asdict(cfg), "command": command_line(cfg)}
        if cfg.init is not None:  # the file it started from and how that was made
            from tdwgym.agents.models import resolve_model_path

            meta["init_meta"] = safe_load(resolve_model_path(cfg.init)).get("meta", {})
        save_world_model(model, out / "world_model.pt", meta=meta)
        _atomic_json(summary, out / "summary.json")
    return summary
