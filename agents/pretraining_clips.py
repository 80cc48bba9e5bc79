"""Where ``tdwgym pretrain`` gets its clips: straight from the scenario generators (:class:`ClipStream`, a torch
``IterableDataset`` whose ``DataLoader`` workers run the envs: no disk in between) or from a dataset folder written
by ``tdwgym dataset`` (:func:`dataset_clips`), and the scenario mix (:func:`parse_mix`).

Clip ``i`` of a stream is a function of the stream's seed and ``i`` alone, and batch ``k`` holds clips
``k * batch .. (k + 1) * batch - 1`` whichever process makes them: data-parallel ranks
(:mod:`tdwgym.agents.pretraining_ray`) take consecutive parts of each batch, so their batches together are the one
process's batch.

A stream can keep the clips it makes in a cache folder (``cache``: each clip as the model is fed it, an object
model's slot tables, in ``clip-<index>.npz``) and read them back instead of rendering them again, and can cycle over
a fixed number of distinct clips in shuffled epochs (``distinct``): an object model's inputs are small, its clips
cheap to keep, and rendering, not the model, limits how many optimiser steps a run makes.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

import tdwgym
from tdwgym.agents.models import Clips, resize_frames
from tdwgym.registration import resolve_env_id, short_names
from tdwgym.util.files import write_atomic

__all__ = [
    "ACTIONS",
    "CACHE_VERSION",
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

CACHE_VERSION = 1
"""Version of a clip cache folder's layout (``cache.json``; ``clip-<index>.npz`` with ``frames`` and ``actions``)."""


RUN_ENV_ARGS = ("resolution", "level", "split", "obs_mode")
"""Env arguments a :class:`ClipStream` sets itself (an ``env_kwargs`` entry may not)."""


def run_args_in(names: Iterable[str]) -> list[str]:
    """Those of the env argument ``names`` that are :data:`RUN_ENV_ARGS`, sorted (empty: none)."""
    return sorted(set(names) & set(RUN_ENV_ARGS))


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


def mix_env_kwargs(envs: str, env_kwargs: Any) -> dict[str, dict[str, Any]]:
    """``--env-kwargs`` (env name -> arguments) of the mix ``envs``, keyed by env id.

    Raises:
        ValueError: A name that is not an env of the mix, arguments that are not a JSON object, or an argument the
            run sets itself (:data:`RUN_ENV_ARGS`).
    """
    mix = parse_mix(envs)
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"--env-kwargs must be a JSON object of env name -> arguments, got {env_kwargs!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, kwargs in env_kwargs.items():
        env_id = env_id_of(name)
        if env_id not in mix:
            raise ValueError(f"--env-kwargs names {name!r}, which is not in --envs {envs!r}")
        if not isinstance(kwargs, dict):
            raise ValueError(
                f'--env-kwargs {name!r}: arguments must be a JSON object, e.g. {{"slide_distance": 12}}, got {kwargs!r}'
            )
        fixed = run_args_in(kwargs)
        if fixed:
            raise ValueError(
                f"--env-kwargs {name!r}: {', '.join(fixed)} are set by the run (--resolution, --level; split and "
                "obs_mode by the stream); leave them out"
            )
        out[env_id] = dict(kwargs)
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
        cache: A folder for the clips as made (``clip-<index>.npz``, :meth:`clip`): a clip found there is read
            instead of rendered. ``cache.json`` records the stream's settings (:meth:`settings`); a folder made by
            a stream with other settings is refused with a ``ValueError``, so a cached clip always equals the one
            the stream would render.
        env_kwargs: Extra arguments of the envs, by env id (every clip of that env is made with them; not
            :data:`RUN_ENV_ARGS`). Recorded in :meth:`settings` when given.
        distinct: When > 0, the stream cycles over clips ``0 .. distinct - 1``: position ``j`` of the stream is clip
            ``j`` in the first epoch, then each epoch a new permutation of them (seeded by the stream's seed and the
            epoch). The curriculum (``schedule``) then applies to the distinct clips.
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
        cache: str | os.PathLike | None = None,
        distinct: int = 0,
        env_kwargs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.env_kwargs = {k: dict(v) for k, v in (env_kwargs or {}).items()}
        fixed = run_args_in(a for kw in self.env_kwargs.values() for a in kw)
        if fixed:
            raise ValueError(f"env_kwargs may not set {', '.join(fixed)}: the stream sets them")
        if batch % ranks or not 0 <= rank < ranks:
            raise ValueError(f"a batch of {batch} clips cannot be cut into {ranks} equal parts (rank {rank})")
        if isinstance(distinct, bool) or int(distinct) < 0:
            raise ValueError(f"distinct must be an int >= 0 (0: every clip new), got {distinct!r}")
        self.batch, self.rank, self.ranks = int(batch), int(rank), int(ranks)
        self.encode = encode
        self.env_ids = list(mix)
        weights = np.asarray([mix[e] for e in self.env_ids], dtype=np.float64)
        self.p = weights / weights.sum()
        self.levels, self.resolution, self.steps = list(levels), int(resolution), int(steps)
        self.static_fraction, self.seed, self.start = float(static_fraction), int(seed), int(start)
        self.schedule, self.split = schedule, split
        self.distinct = int(distinct)
        self.cache = None if cache is None else Path(cache)
        if self.cache is not None:
            self._open_cache()

    def settings(self) -> dict[str, Any]:
        """What the clips of this stream are a function of (besides their index): recorded in a cache folder's
        ``cache.json``."""
        return {
            "version": CACHE_VERSION,
            "mix": {e: float(w) for e, w in zip(self.env_ids, self.p, strict=True)},
            "levels": self.levels,
            "resolution": self.resolution,
            "steps": self.steps,
            "static_fraction": self.static_fraction,
            "seed": self.seed,
            "schedule": None if self.schedule is None else list(self.schedule),
            "split": self.split,
            "encode": _describe(self.encode),
            # only when given: a folder made before the option existed keeps its record
            **({"env_kwargs": self.env_kwargs} if self.env_kwargs else {}),
        }

    def _open_cache(self) -> None:
        assert self.cache is not None
        self.cache.mkdir(parents=True, exist_ok=True)
        record = self.cache / "cache.json"
        want = json.loads(json.dumps(self.settings()))
        if record.exists():
            try:
                have = json.loads(record.read_text())
            except ValueError:
                have = None
            if have != want:
                raise ValueError(
                    f"--cache {self.cache} holds clips of another stream ({record}); use another folder or the "
                    "settings it records"
                )
        else:
            write_atomic(record, json.dumps(want, indent=2))

    def index_at(self, position: int) -> int:
        """The clip at ``position`` of the stream: the position itself, or with ``distinct`` the clip that
        position's epoch puts there."""
        if not self.distinct:
            return position
        epoch, j = divmod(position, self.distinct)
        if epoch == 0:
            return j
        return int(np.random.default_rng([self.seed, 7717, epoch]).permutation(self.distinct)[j])

    def levels_at(self, index: int) -> list[int]:
        """Levels available to clip ``index`` (all of them, or the curriculum's first ones)."""
        if self.schedule is None:
            return self.levels
        full_at, _ = self.schedule
        n = 1 + int((len(self.levels) - 1) * min(1.0, index / max(full_at, 1)))
        return self.levels[:n]

    def clip(self, index: int, envs: dict[tuple[str, int], gym.Env]) -> Clips:
        """Clip ``index`` (envs are made on first use and cached in ``envs``), read from the cache folder when it
        holds it, else rendered (and written there)."""
        path = None if self.cache is None else self.cache / f"clip-{index:08d}.npz"
        if path is not None and path.exists():
            with np.load(path) as z:
                frames, actions = torch.from_numpy(z["frames"]), torch.from_numpy(z["actions"])
            return Clips(frames, F.one_hot(actions, ACTIONS).float())
        clip = self._render(index, envs)
        if path is not None:
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez_compressed(tmp, frames=clip.frames.numpy(), actions=clip.actions.argmax(-1).numpy())
            os.replace(tmp, path)
        return clip

    def _render(self, index: int, envs: dict[tuple[str, int], gym.Env]) -> Clips:
        rng = np.random.default_rng([self.seed, index])
        env_id = self.env_ids[int(rng.choice(len(self.env_ids), p=self.p))]
        levels = self.levels_at(index)
        level = levels[int(rng.integers(len(levels)))]
        key = (env_id, level)
        if key not in envs:
            obs_mode = "rgb" if self.encode is None else "rgbd_seg"
            envs[key] = gym.make(
                env_id,
                resolution=self.resolution,
                level=level,
                split=self.split,
                obs_mode=obs_mode,
                **self.env_kwargs.get(env_id, {}),
            )
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
                for position in range(first, first + part):
                    yield self.clip(self.index_at(position), envs)
                k += n
        finally:
            for env in envs.values():
                env.close()


def _describe(encode: Callable[..., Any] | None) -> str | None:
    """A stable description of a clip encoder (a function, or a ``functools.partial`` of one and its arguments)."""
    if encode is None:
        return None
    if isinstance(encode, functools.partial):
        args = json.dumps({k: encode.keywords[k] for k in sorted(encode.keywords)}, default=str)
        return f"{_describe(encode.func)}{list(encode.args)}{args}"
    return f"{getattr(encode, '__module__', '')}.{getattr(encode, '__qualname__', repr(encode))}"


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
