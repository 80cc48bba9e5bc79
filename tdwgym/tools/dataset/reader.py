"""Reading a dataset back: episode files in order, whole episodes as arrays, validity checks, and
:class:`ClipDataset` (a ``torch.utils.data.Dataset`` of fixed-length clips; torch is imported only when it is first
used, so importing this module does not need torch)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.tools.dataset.config import _EPISODE_RE, EPISODE_GLOB


class DamagedEpisodeError(ValueError):
    """An episode file that cannot be read whole: truncated, or its checksums (or HDF5 structure) fail."""


def _read_all(group: Any) -> None:
    """Read every dataset under ``group`` (HDF5 verifies each chunk's Fletcher-32 checksum as it reads)."""
    import h5py

    def visit(_: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            obj[()]

    group.visititems(visit)


def episode_is_valid(
    path: Path | str, fingerprint: str | None = None, frames: int | None = None, verify: bool = True
) -> bool:
    """Whether ``path`` is a complete episode file (optionally of the config ``fingerprint`` and ``frames``).

    Its arrays must agree with its own metadata (:func:`episode_disagreement`). With ``verify`` every array is read,
    so that a damaged file (a flipped byte fails its chunk's checksum, depth that is not finite) is not valid; files
    written before checksums were added are checked for structure only.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                return False
            if fingerprint is not None and f.attrs.get("config_fingerprint") != fingerprint:
                return False
            t = int(f.attrs["num_frames"])
            if frames is not None and t != frames:
                return False
            if episode_disagreement(f) is not None:
                return False
            if verify:
                _read_all(f)
                _check_finite(f["frames/images/_depth"][()], "_depth", path)
            return True
    except (OSError, KeyError, ValueError, RuntimeError):
        return False


def episode_fingerprint(path: Path | str) -> str | None:
    """The settings fingerprint recorded inside a complete episode file (None if it has none or cannot be read)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("config_fingerprint") if f.attrs.get("complete", False) else None
    except (OSError, KeyError, ValueError):
        return None
    return None if value is None else str(value)


def _damaged(path: Path | str, exc: BaseException) -> DamagedEpisodeError:
    return DamagedEpisodeError(
        f"{path}: damaged episode file ({type(exc).__name__}: {exc}); run the `tdwgym dataset` command that made it "
        "again to record it anew, or delete it"
    )


_PER_FRAME = (
    "frames/images/_img",
    "frames/images/_depth",
    "frames/images/_id",
    "frames/actions",
    "camera_matrices/world_to_camera",
    "camera_matrices/positions",
)
"""Arrays with one entry per frame: their first axis is the episode's ``num_frames``."""


def episode_disagreement(f: Any) -> str | None:
    """What in an open episode file disagrees with its own metadata, or None: ``num_frames`` against every per-frame
    array (images, object states, actions, camera), the three image passes' sizes against each other and against the
    camera intrinsics. Cheap: shapes and attributes only, no array is read."""
    try:
        t = int(f.attrs["num_frames"])
    except (KeyError, TypeError, ValueError):
        return f"its num_frames attribute {f.attrs.get('num_frames')!r} is not a count"
    if t < 1:
        return f"its num_frames attribute is {t}"
    img = f["frames/images/_img"]
    if img.ndim != 4 or img.shape[-1] != 3:
        return f"_img has shape {img.shape}, not (frames, height, width, 3)"
    h, w = int(img.shape[1]), int(img.shape[2])
    objects = f["frames/objects"]
    for name in (*_PER_FRAME, *(f"frames/objects/{k}" for k in objects)):
        shape = f[name].shape if name in f else ()
        if shape and shape[0] != t:
            return f"{name.rsplit('/', 1)[-1]} has {shape[0]} frames, its num_frames attribute says {t}"
    for name in ("_depth", "_id"):
        shape = f[f"frames/images/{name}"].shape
        if tuple(shape[1:]) != (h, w):
            return f"{name} is {'x'.join(map(str, shape[1:]))} pixels, _img {h}x{w}"
    k = f["camera_matrices/intrinsics"][()]
    if np.shape(k) == (3, 3) and (round(2 * float(k[0, 2])), round(2 * float(k[1, 2]))) != (w, h):
        return f"its images are {h}x{w} pixels, its camera intrinsics say {round(2 * k[1, 2])}x{round(2 * k[0, 2])}"
    return None


def _check_structure(f: Any, path: Path | str) -> None:
    problem = episode_disagreement(f)
    if problem is not None:
        raise DamagedEpisodeError(
            f"{path}: damaged episode file ({problem}); run the `tdwgym dataset` command that made it again to "
            "record it anew, or delete it"
        )


def _check_finite(values: np.ndarray, what: str, path: Path | str, start: int = 0) -> np.ndarray:
    """``values``, or a :class:`DamagedEpisodeError` naming the file and the first frame where they are not finite
    (depth is metres to a surface: always finite)."""
    bad = ~np.isfinite(values)
    if bad.any():
        frame = start + int(np.argwhere(bad)[0][0])
        raise DamagedEpisodeError(
            f"{path}: damaged episode file ({what} holds non-finite values, first at frame {frame}); run the "
            "`tdwgym dataset` command that made it again to record it anew, or delete it"
        )
    return values


def episode_files(root: Path | str) -> list[Path]:
    """Episode files of a dataset directory, in episode order (temporary files are never listed)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset directory {root} does not exist")
    return sorted(p for p in root.iterdir() if _EPISODE_RE.match(p.name))


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_episode(path: Path | str) -> dict[str, Any]:
    """Read a whole episode file into numpy arrays and Python values.

    Returns:
        A dict with ``rgb`` (T, H, W, 3) uint8, ``depth`` (T, H, W) float32, ``segmentation`` (T, H, W) int32,
        ``object_ids``, ``boxes``, ``areas``, ``present``, ``positions``, ``rotations``, ``velocities``,
        ``angular_velocities``, ``actions``, ``intrinsics``, ``world_to_camera``, ``camera_positions``,
        ``collisions`` (dict of arrays), ``labels`` (dict), ``scene`` (:class:`~tdwgym.sim.scene.SceneSpec`) and
        ``metadata`` (dict).
    """
    import h5py

    from tdwgym.sim.scene import SceneSpec

    try:
        return _load_episode(path, h5py, SceneSpec)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        if isinstance(exc, DamagedEpisodeError):
            raise
        raise _damaged(path, exc) from exc


def _load_episode(path: Path | str, h5py: Any, SceneSpec: Any) -> dict[str, Any]:  # noqa: N803
    with h5py.File(path, "r") as f:
        _check_structure(f, path)
        objects = f["frames/objects"]
        return {
            "rgb": f["frames/images/_img"][()],
            "depth": _check_finite(f["frames/images/_depth"][()], "_depth", path),
            "segmentation": f["frames/images/_id"][()].astype(np.int32),
            "object_ids": f["static/object_ids"][()],
            "boxes": objects["bboxes"][()],
            "areas": objects["areas"][()],
            "present": objects["present"][()],
            **{k: objects[k][()] for k in ("positions", "rotations", "velocities", "angular_velocities")},
            "actions": f["frames/actions"][()],
            "intrinsics": f["camera_matrices/intrinsics"][()],
            "world_to_camera": f["camera_matrices/world_to_camera"][()],
            "camera_positions": f["camera_matrices/positions"][()],
            "collisions": {k: f[f"collisions/{k}"][()] for k in f["collisions"]},
            "labels": json.loads(_str(f["labels/json"][()])),
            "scene": SceneSpec.from_json(_str(f["static/scene_json"][()])),
            "metadata": json.loads(_str(f["metadata"][()])),
        }


CLIP_KEYS: tuple[str, ...] = (
    "rgb",
    "depth",
    "segmentation",
    "boxes",
    "areas",
    "visible",
    "object_ids",
    "object_mask",
    "present",
    "positions",
    "rotations",
    "velocities",
    "angular_velocities",
    "actions",
    "num_collisions",
    "camera_position",
    "world_to_camera",
    "intrinsics",
    "scenario",
    "level",
    "split",
    "possible",
    "impossible",
    "event_frame",
    "factors",
    "ood_factors",
    "episode",
    "start",
)
"""Keys :class:`ClipDataset` can return (see its docstring for shapes)."""


class _ClipIndex:
    """Shared, torch-free part of :class:`ClipDataset`: file listing, clip index and reads."""

    def __init__(
        self,
        root: Path | str,
        clip_len: int,
        stride: int | None,
        keys: Sequence[str],
        rgb_float: bool,
        episodes: Sequence[int] | None,
        on_damaged: str = "raise",
    ) -> None:
        import h5py

        if on_damaged not in ("raise", "skip"):
            raise ValueError(f"on_damaged must be 'raise' or 'skip', got {on_damaged!r}")
        self.on_damaged = on_damaged
        self.damaged: list[Path] = []

        self.root = Path(root)
        files = episode_files(self.root)
        if episodes is not None:
            wanted = {int(i) for i in episodes}
            files = [p for p in files if int(_EPISODE_RE.match(p.name).group(1)) in wanted]
        if not files:
            raise FileNotFoundError(
                f"no episode files ({EPISODE_GLOB}) in {self.root}; write some with `tdwgym dataset --out DIR ...`"
            )
        keys = tuple(keys)
        unknown = [k for k in keys if k not in CLIP_KEYS]
        if unknown or not keys:
            raise ValueError(f"unknown clip keys {unknown}; valid keys are {list(CLIP_KEYS)}")
        if isinstance(clip_len, bool) or not isinstance(clip_len, int) or clip_len < 1:
            raise ValueError(f"clip_len must be an int >= 1, got {clip_len!r}")
        stride = clip_len if stride is None else stride
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be an int >= 1, got {stride!r}")
        self.files, self.keys, self.clip_len, self.stride, self.rgb_float = files, keys, clip_len, stride, rgb_float
        self.index: list[tuple[int, int]] = []
        self.max_objects = 0
        lengths = []
        for n, path in enumerate(files):
            try:
                with h5py.File(path, "r") as f:
                    _check_structure(f, path)
                    t = int(f.attrs["num_frames"])
                    self.max_objects = max(self.max_objects, int(f["static/object_ids"].shape[0]))
            except (OSError, KeyError, ValueError) as exc:
                error = exc if isinstance(exc, DamagedEpisodeError) else _damaged(path, exc)
                if on_damaged == "raise":
                    raise error from exc
                self._skip(n, error)
                continue
            lengths.append(t)
            self.index += [(n, s) for s in range(0, t - clip_len + 1, stride)]
        if not lengths:
            raise DamagedEpisodeError(f"every episode file in {self.root} is damaged (the first: {self.damaged[0]})")
        if not self.index:
            raise ValueError(
                f"clip_len {clip_len} is longer than every episode in {self.root} (longest has {max(lengths)} frames)"
            )
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def _file(self, n: int) -> Any:
        import h5py

        if self._pid != os.getpid():  # a DataLoader worker: never share HDF5 handles across processes
            self._handles, self._pid = {}, os.getpid()
        if n not in self._handles:
            self._handles[n] = h5py.File(self.files[n], "r")
        return self._handles[n]

    def _skip(self, n: int, error: DamagedEpisodeError) -> None:
        import warnings

        if self.files[n] not in self.damaged:
            self.damaged.append(self.files[n])
            warnings.warn(f"skipping {error}", stacklevel=4)

    def read(self, i: int) -> dict[str, Any]:
        """Clip ``i``; a file that fails to read (a checksum, a truncation, depth that is not finite) is a
        :class:`DamagedEpisodeError` naming it, or with ``on_damaged="skip"`` a warning naming it, and the next
        clip of a file not found damaged instead."""
        for j in [i, *range(i + 1, len(self.index)), *range(i)]:
            n = self.index[j][0]
            if self.files[n] in self.damaged:
                continue
            try:
                return self._read(j)
            except (OSError, KeyError, ValueError, RuntimeError) as exc:
                error = exc if isinstance(exc, DamagedEpisodeError) else _damaged(self.files[n], exc)
                if self.on_damaged == "raise":
                    raise error from exc
                self._skip(n, error)
        raise DamagedEpisodeError(f"every episode file in {self.root} is damaged (the first: {self.damaged[0]})")

    def _read(self, i: int) -> dict[str, Any]:
        n, s = self.index[i]
        f, e = self._file(n), s + self.clip_len
        m = self.max_objects
        out: dict[str, Any] = {}
        ids = f["static/object_ids"][()]
        k = ids.shape[0]

        def pad(arr: np.ndarray, fill: float) -> np.ndarray:
            shape = list(arr.shape)
            shape[1] = m
            full = np.full(shape, fill, dtype=arr.dtype)
            full[:, :k] = arr
            return full

        labels = None
        for key in self.keys:
            if key == "rgb":
                rgb = np.ascontiguousarray(f["frames/images/_img"][s:e].transpose(0, 3, 1, 2))
                out[key] = rgb.astype(np.float32) / 255.0 if self.rgb_float else rgb
            elif key == "depth":
                out[key] = _check_finite(f["frames/images/_depth"][s:e], "_depth", self.files[n], s)[:, None]
            elif key == "segmentation":
                out[key] = f["frames/images/_id"][s:e].astype(np.int64)
            elif key in ("boxes", "areas"):
                src = f["frames/objects/bboxes" if key == "boxes" else "frames/objects/areas"][s:e]
                out[key] = pad(src, -1 if key == "boxes" else 0).astype(np.float32 if key == "boxes" else np.int64)
            elif key == "visible":
                out[key] = pad(f["frames/objects/areas"][s:e] > 0, False)
            elif key == "present":
                out[key] = pad(f["frames/objects/present"][s:e], False)
            elif key in ("positions", "rotations", "velocities", "angular_velocities"):
                out[key] = np.nan_to_num(pad(f[f"frames/objects/{key}"][s:e], 0.0)).astype(np.float32)
            elif key == "object_ids":
                out[key] = np.pad(ids.astype(np.int64), (0, m - k))
            elif key == "object_mask":
                out[key] = np.arange(m) < k
            elif key == "actions":
                out[key] = f["frames/actions"][s:e]
            elif key == "num_collisions":
                frames = f["collisions/frame"][()]
                out[key] = np.bincount(frames[(frames >= s) & (frames < e)] - s, minlength=self.clip_len)
            elif key == "camera_position":
                out[key] = f["camera_matrices/positions"][s:e].astype(np.float32)
            elif key == "world_to_camera":
                out[key] = f["camera_matrices/world_to_camera"][s:e].astype(np.float32)
            elif key == "intrinsics":
                out[key] = f["camera_matrices/intrinsics"][()].astype(np.float32)
            elif key == "episode":
                out[key] = int(f.attrs["episode"])
            elif key == "start":
                out[key] = s
            else:
                if labels is None:
                    labels = json.loads(_str(f["labels/json"][()]))
                if key == "possible":
                    out[key] = labels.get("impossible") is None
                elif key == "impossible":
                    out[key] = labels.get("impossible") or ""
                elif key == "event_frame":
                    event = labels.get("event_frame")
                    out[key] = -1 if event is None else int(event)
                elif key == "ood_factors":
                    out[key] = ",".join(str(v) for v in labels.get("ood_factors") or [])
                elif key == "factors":
                    out[key] = dict(labels.get("factors") or {})
                else:
                    out[key] = labels.get(key)
        return out

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}


_CLIP_DOC = """Fixed-length clips across every episode file of a dataset directory (a ``torch.utils.data.Dataset``).

    Clip ``i`` is frames ``[start, start + clip_len)`` of one episode; starts step by ``stride`` (default
    ``clip_len``: non-overlapping clips) and a clip never crosses episodes. Items are dicts with the requested
    ``keys`` (T = ``clip_len``, N = the most objects of any episode; per-object keys are padded to N):

    - ``rgb``: (T, 3, H, W) uint8, or float32 in [0, 1] with ``rgb_float=True``. ``depth``: (T, 1, H, W) float32
      metres. ``segmentation``: (T, H, W) int64 scene ids (0 is the room).
    - ``boxes``: (T, N, 4) float32 ``(x_min, y_min, x_max, y_max)`` pixels, max exclusive, -1 when not visible.
      ``areas``: (T, N) pixel counts. ``visible``, ``present``: (T, N) bool. ``object_ids``: (N,) int64 (0 pads).
      ``object_mask``: (N,) bool, True for real objects.
    - ``positions``, ``velocities``, ``angular_velocities``: (T, N, 3) float32; ``rotations``: (T, N, 4)
      quaternions (x, y, z, w); 0 where an object is absent.
    - ``actions``: (T,) int64 (discrete; -1 at an episode's first frame) or (T, 5) float32 (NaN at the first
      frame); action ``t`` produced frame ``t``. ``num_collisions``: (T,) int64 contacts that ended at each frame.
    - ``camera_position``: (T, 3); ``world_to_camera``: (T, 4, 4); ``intrinsics``: (3, 3), all float32.
    - Labels: ``scenario``, ``split``, ``impossible`` (kind or ""), ``ood_factors`` (comma-joined) are str;
      ``level`` int; ``possible`` bool; ``event_frame`` int, the episode frame of the impossible event (-1 when
      none; the clip holds it when ``start <= event_frame < start + T``); ``factors`` dict; ``episode`` and
      ``start`` (the clip's first episode frame) int.

    Args:
        root: Dataset directory (``episode_*.hdf5``).
        clip_len: Frames per clip.
        stride: Frames between clip starts; default ``clip_len``.
        keys: Any subset of :data:`CLIP_KEYS`. Default ``("rgb",)``.
        rgb_float: Return ``rgb`` as float32 in [0, 1] instead of uint8.
        episodes: Only these episode indices (e.g. to hold some out); default all.
        on_damaged: ``"raise"``: a damaged episode file (arrays that disagree with its metadata, a failed checksum,
            depth that is not finite) is a :class:`DamagedEpisodeError` naming it. ``"skip"``: a warning naming it,
            and the file is left out (its clips are replaced by clips of the other files).

    Raises:
        FileNotFoundError: ``root`` has no episode files.
        ValueError: An unknown key, or ``clip_len`` longer than every episode.
        DamagedEpisodeError: (a ValueError) A damaged episode file, with ``on_damaged="raise"``.
    """


def _make_clip_dataset_class() -> type:
    try:
        import torch
        from torch.utils.data import Dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ClipDataset needs torch: pip install 'tdwgym[agents]'") from exc

    class ClipDataset(Dataset):
        __doc__ = _CLIP_DOC

        def __init__(
            self,
            root: Path | str,
            clip_len: int = 8,
            stride: int | None = None,
            keys: Sequence[str] = ("rgb",),
            rgb_float: bool = False,
            episodes: Sequence[int] | None = None,
            on_damaged: str = "raise",
        ) -> None:
            self._clips = _ClipIndex(root, clip_len, stride, keys, rgb_float, episodes, on_damaged)

        @property
        def damaged(self) -> list[Path]:
            """Episode files found damaged and skipped so far (``on_damaged="skip"``; in this process)."""
            return list(self._clips.damaged)

        @property
        def files(self) -> list[Path]:
            """Episode files read, in episode order."""
            return list(self._clips.files)

        @property
        def keys(self) -> tuple[str, ...]:
            """Keys of every item."""
            return self._clips.keys

        @property
        def clips(self) -> list[tuple[Path, int]]:
            """(episode file, start frame) of every clip."""
            return [(self._clips.files[n], s) for n, s in self._clips.index]

        def __len__(self) -> int:
            return len(self._clips.index)

        def __getitem__(self, i: int) -> dict[str, Any]:
            if not -len(self) <= i < len(self):
                raise IndexError(f"clip index {i} out of range for {len(self)} clips")
            item = self._clips.read(i % len(self))
            return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in item.items()}

        def close(self) -> None:
            """Close open HDF5 files."""
            self._clips.close()

        def __getstate__(self) -> dict[str, Any]:
            state = self.__dict__.copy()
            clips = _ClipIndex.__new__(_ClipIndex)
            clips.__dict__.update({**self._clips.__dict__, "_handles": {}})
            state["_clips"] = clips
            return state

    ClipDataset.__module__ = __name__
    ClipDataset.__qualname__ = "ClipDataset"
    return ClipDataset


@lru_cache(maxsize=1)
def _clip_dataset_class() -> type:
    return _make_clip_dataset_class()


def __getattr__(name: str) -> Any:
    if name == "ClipDataset":
        return _clip_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIP_KEYS",
    "DamagedEpisodeError",
    "episode_files",
    "episode_fingerprint",
    "episode_is_valid",
    "load_episode",
]  # and ClipDataset, built on first use
