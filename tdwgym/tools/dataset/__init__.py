"""Labeled video datasets from the ``TDWRoom-*`` environments, stored as HDF5 in a layout close to Physion's.

One file per episode (``DIR/episode_000042.hdf5``) holds the RGB frames, depth in metres, instance segmentation,
2D boxes per object per frame, object 3D states, camera pose and intrinsics, collision events, the scenario
labels, and everything needed to regenerate the episode exactly (scene spec, seeds, policy, versions). The layout
is documented in ``docs/dataset.md``.

Generation is deterministic: episode ``i`` is reset with a seed derived from the base seed, the split and ``i``
only, so any worker count writes byte-identical files (with the default gzip compression or none; see
:data:`COMPRESSIONS`). Writes are atomic (a temporary file in ``DIR``, then :func:`os.replace`): an interrupted run
never leaves a partial file under a final name, and running the same command again skips the episodes already
written.

:class:`ClipDataset` (a ``torch.utils.data.Dataset``; torch is imported lazily, so importing this module does not
need torch) reads a directory back as fixed-length clips with any subset of the labels.

The package is split by what a module does: :mod:`~tdwgym.tools.dataset.config` (what defines a dataset),
:mod:`~tdwgym.tools.dataset.writer` (recording and writing), :mod:`~tdwgym.tools.dataset.reader` (reading back),
:mod:`~tdwgym.commands.dataset` (the ``tdwgym dataset`` command) and :mod:`~tdwgym.tools.dataset.speed` (its
benchmark).
The names below are its public interface.
"""

from __future__ import annotations

from typing import Any

from tdwgym.tools.dataset.config import (
    COMPRESSIONS,
    EPISODE_GLOB,
    FORMAT_VERSION,
    GENERATOR_VERSION,
    LEVELS,
    MANIFEST_NAME,
    PASSES,
    REPRODUCIBLE_COMPRESSIONS,
    SPLITS,
    DatasetConfig,
    episode_path,
    episode_seeds,
    impossible_kinds,
    scenarios,
)
from tdwgym.tools.dataset.reader import (
    CLIP_KEYS,
    DamagedEpisodeError,
    episode_disagreement,
    episode_files,
    episode_fingerprint,
    episode_is_valid,
    load_episode,
)
from tdwgym.tools.dataset.speed import benchmark, format_benchmark
from tdwgym.tools.dataset.writer import boxes_from_segmentation, generate, world_to_camera


def __getattr__(name: str) -> Any:
    if name == "ClipDataset":  # built on first use, so that importing tdwgym.tools.dataset does not import torch
        from tdwgym.tools.dataset import reader

        return reader.ClipDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIP_KEYS",
    "COMPRESSIONS",
    "EPISODE_GLOB",
    "FORMAT_VERSION",
    "GENERATOR_VERSION",
    "LEVELS",
    "MANIFEST_NAME",
    "PASSES",
    "REPRODUCIBLE_COMPRESSIONS",
    "SPLITS",
    "ClipDataset",
    "DamagedEpisodeError",
    "DatasetConfig",
    "benchmark",
    "boxes_from_segmentation",
    "episode_files",
    "episode_fingerprint",
    "episode_disagreement",
    "episode_is_valid",
    "episode_path",
    "episode_seeds",
    "format_benchmark",
    "generate",
    "impossible_kinds",
    "load_episode",
    "scenarios",
    "world_to_camera",
]
