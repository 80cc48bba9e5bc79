"""Where ``tdwgym pretrain`` gets its clips: straight from the scenario generators (:class:`ClipStream`, a torch
``IterableDataset`` whose ``DataLoader`` workers run the envs: no disk in between) or from a dataset folder written
by ``tdwgym dataset`` (:func:`dataset_clips`), and the scenario mix (:func:`parse_mix`).

Clip ``i`` of a stream is a function of the stream's seed and ``i`` alone, and batch ``k`` holds clips
``k * batch .. (k + 1) * batch - 1`` whichever process makes them: data-parallel ranks
(:mod:`tdwgym.agents.pretraining_ray`) take consecutive parts of each batch, so their batches together are the one
process's batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

import tdwgym
from tdwgym.agents.models import Clips, resize_frames
from tdwgym.registration import resolve_env_id, short_names

__all__ = [
    "ACTIONS",
    "SEED_BASE",
    "ClipStream",
    "collate_clips",
    "dataset_clips",
    "env_id_of",
    "parse_mix",
    "record_clip",
]

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

    Clip ``i`` of the stream is a function of ``(seed, i)`` alone, whichever worker makes it. The stream is cut
    into batches of ``batch`` clips (batch ``k``: clips ``start + k * batch ..``): ``DataLoader`` worker ``w`` of
    ``W`` makes batches ``w, w + W, ...`` (so the loader's batch ``k`` is batch ``k`` whatever ``W`` is), and rank
    ``r`` of ``ranks`` data-parallel processes makes the ``r``-th of ``ranks`` equal parts of every batch (disjoint
    clips; the ranks' parts together are the one process's batch). A resumed run starts at its ``start`` clip.

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
        batch: Clips per (global) batch; the ``DataLoader``'s ``batch_size`` is ``batch // ranks``.
        rank: This process's rank.
        ranks: Data-parallel processes (``batch`` must be a multiple of it).
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
        batch: int = 1,
        rank: int = 0,
        ranks: int = 1,
    ) -> None:
        super().__init__()
        if batch % ranks or not 0 <= rank < ranks:
            raise ValueError(f"a batch of {batch} clips cannot be cut into {ranks} equal parts (rank {rank})")
        self.batch, self.rank, self.ranks = int(batch), int(rank), int(ranks)
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
        part = self.batch // self.ranks
        try:
            k = wid
            while True:
                first = self.start + k * self.batch + self.rank * part
                for index in range(first, first + part):
                    yield self.clip(index, envs)
                k += n
        finally:
            for env in envs.values():
                env.close()


def collate_clips(items: list[Clips]) -> Clips:
    """Stack single clips into a batch."""
    return Clips(torch.stack([c.frames for c in items]), torch.stack([c.actions for c in items]))


def dataset_clips(
    root: str,
    steps: int,
    resolution: int,
    encode: Callable[..., Any] | None = None,
    on_damaged: str = "raise",
) -> torch.utils.data.Dataset:
    """Clips of ``steps + 1`` frames from a ``tdwgym dataset`` folder, resized to ``resolution``; with ``encode``
    (an object model's :meth:`~tdwgym.agents.models.WorldModel.clip_encoder`) the clips are what it makes of the
    episodes' RGB, segmentation and depth. ``on_damaged``: what a damaged episode file does
    (:class:`~tdwgym.tools.dataset.ClipDataset`: ``"raise"``, or ``"skip"`` with a warning naming it)."""
    from tdwgym.tools.dataset import ClipDataset

    keys = ("rgb", "actions") if encode is None else ("rgb", "segmentation", "depth", "actions")
    base = ClipDataset(root, clip_len=steps + 1, keys=keys, on_damaged=on_damaged)

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
