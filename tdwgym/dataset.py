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
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.envs.factors import LEVELS, SPLITS
from tdwgym.files import read_json
from tdwgym.policies import BUILTIN_POLICIES, Policy, load_policy, policy_env_kwargs
from tdwgym.processes import forkserver_context, init_worker

PASSES: tuple[str, ...] = ("rgb", "depth", "segmentation")
"""Render passes recorded for every frame."""

GENERATOR_VERSION = 2
"""Bumped whenever the same config would record different episodes (a scene generator or physics fix), so that
resuming never mixes episodes of two versions: it is part of :meth:`DatasetConfig.fingerprint`."""

COMPRESSIONS: tuple[str | None, ...] = (None, "lzf", "gzip")
"""Valid HDF5 compression filters for the image datasets. ``"gzip"`` (the default) and None write the same bytes
for the same config on every run. ``"lzf"`` does not: h5py's LZF coder leaves its match table uninitialised, so the
compressed bytes (never the decoded frames) depend on what the process compressed before."""

REPRODUCIBLE_COMPRESSIONS: tuple[str | None, ...] = (None, "gzip")
"""The filters of :data:`COMPRESSIONS` whose output bytes are a function of their input only."""

FORMAT_VERSION = 1
"""Version of the HDF5 layout, stored in every file's ``format_version`` attribute."""

MANIFEST_NAME = "dataset.json"
"""Name of the run's metadata record inside the output directory."""

EPISODE_GLOB = "episode_*.hdf5"
_EPISODE_RE = re.compile(r"^episode_(\d{6})\.hdf5$")
_TMP_RE = re.compile(r"^\.episode_\d{6}\.hdf5\.(\d+)\.tmp$")

_LABEL_DEFAULTS: dict[str, Any] = {
    "scenario": None,
    "level": None,
    "split": None,
    "factors": {},
    "ood_factors": [],
    "impossible": None,
    "event_frame": None,
}


# ---------------------------------------------------------------------------------------------------------------
# Configuration and validation
# ---------------------------------------------------------------------------------------------------------------
def scenarios() -> dict[str, str]:
    """Scenario name -> registered env id, read from :data:`tdwgym.registration.ENV_IDS` at call time.

    ``"TDWRoom-Occlusion-v0"`` gives ``"occlusion"``.
    """
    from tdwgym.registration import ENV_IDS

    out = {}
    for env_id in sorted(ENV_IDS):
        match = re.fullmatch(r"TDWRoom-(.+)-v\d+", env_id)
        if match:
            out[match.group(1).lower()] = env_id
    return out


def _env_class(env_id: str) -> type:
    from tdwgym.registration import ENV_IDS

    module, _, name = ENV_IDS[env_id].partition(":")
    return getattr(import_module(module), name)


def _init_params(cls: type) -> set[str]:
    """Keyword arguments accepted by ``cls.__init__`` and the ``__init__`` of every base it forwards to."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        with contextlib.suppress(TypeError, ValueError):
            names |= {
                p.name
                for p in inspect.signature(init).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
            }
    return names


def impossible_kinds(scenario: str) -> tuple[str, ...] | None:
    """Impossible-event kinds the scenario's env stages: its ``SUPPORTED_IMPOSSIBLE``; ``()`` if it takes no
    ``impossible`` argument; None when it takes one without declaring the kinds (the env then validates)."""
    cls = _env_class(scenarios()[scenario])
    if "impossible" not in _init_params(cls):
        return ()
    for owner, attr in (
        (cls, "SUPPORTED_IMPOSSIBLE"),
        (cls, "IMPOSSIBLE_KINDS"),
        (sys.modules[cls.__module__], "IMPOSSIBLE_KINDS"),
    ):
        value = getattr(owner, attr, None)
        if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
            return tuple(value)
    return None


@dataclass
class DatasetConfig:
    """Everything that defines a generated dataset (the CLI's arguments).

    Fields marked *generation* below decide the files' contents; the others only how they are produced.
    """

    out: Path
    """Output directory; created if missing. One ``episode_NNNNNN.hdf5`` per episode plus ``dataset.json``."""
    scenario: str = "occlusion"
    """Scenario name (generation): ``TDWRoom-<Name>-v0`` lower-cased, e.g. ``"occlusion"``."""
    split: str = "train"
    """Generation. One of :data:`SPLITS`; passed to the env when it takes ``split`` and mixed into episode seeds."""
    level: int = 0
    """Generation. Difficulty level, one of :data:`LEVELS`; passed to the env when it takes ``level``."""
    impossible: str | None = None
    """Generation. None for possible events, or an impossible-event kind the scenario declares."""
    episodes: int = 10
    """Number of episodes (files). Raising it and running again extends a dataset."""
    frames: int = 32
    """Generation. Frames per episode: the reset observation plus ``frames - 1`` steps."""
    resolution: int = 64
    """Generation. Frame height and width in pixels."""
    policy: str = "random"
    """Generation. ``"random"`` (seeded action sampling), ``"static"`` (no-op), ``"orbit"`` (the camera circles the
    scene centre), ``"seek"`` (a scripted pusher) or a path to a stable-baselines3 PPO ``.zip``."""
    seed: int = 0
    """Generation. Base seed; episode ``i`` uses seeds derived from ``(seed, split, i)``."""
    backend: str | None = None
    """Generation. Simulator backend (``"bullet"``, ``"tdw"``); None for ``$TDWGYM_BACKEND`` or bullet."""
    action_type: str = "discrete"
    """Generation. The env's action type for scripted policies; an SB3 model's own action space wins."""
    compression: str | None = "gzip"
    """Generation. HDF5 filter for RGB and segmentation: ``"gzip"`` (the default: 24-71x smaller at 64x64, about
    0.05 ms per frame, byte-reproducible), ``"lzf"`` (same decoded frames, but its bytes vary from run to run; see
    :data:`COMPRESSIONS`) or None."""
    depth_compression: str | None = None
    """Generation. HDF5 filter (with byte shuffling) for depth: None, ``"gzip"`` or ``"lzf"`` (about 4-7x smaller,
    but about 0.06 ms per 64x64 frame, a quarter of the annotation budget; bytes not reproducible)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Generation. Extra keyword arguments for ``gym.make`` (e.g. ``{"num_objects": 2}``)."""
    workers: int = 1
    """Worker processes; the files do not depend on it. 1 runs in this process."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        valid = scenarios()
        if self.scenario not in valid:
            raise ValueError(f"unknown scenario {self.scenario!r}; valid scenarios are {sorted(valid)}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; valid splits are {list(SPLITS)}")
        if isinstance(self.level, bool) or self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}; valid levels are {list(LEVELS)}")
        if self.impossible is not None:
            kinds = impossible_kinds(self.scenario)
            if kinds is not None and self.impossible not in kinds:
                raise ValueError(
                    f"unknown impossible kind {self.impossible!r} for scenario {self.scenario!r}; "
                    f"valid values are {[None, *kinds]}"
                )
        for name, low in (("episodes", 0), ("frames", 1), ("resolution", 1), ("workers", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
            setattr(self, name, int(value))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        for name in ("compression", "depth_compression"):
            if getattr(self, name) not in COMPRESSIONS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid values are {list(COMPRESSIONS)}")
        if self.policy not in BUILTIN_POLICIES and not Path(self.policy).is_file():
            raise ValueError(
                f"unknown policy {self.policy!r}: valid policies are {list(BUILTIN_POLICIES)} or the "
                "path of a stable-baselines3 PPO .zip file (no such file)"
            )

    @property
    def env_id(self) -> str:
        """The registered id of :attr:`scenario`."""
        return scenarios()[self.scenario]

    def generation_dict(self) -> dict[str, Any]:
        """The fields that decide file contents (all but ``out``, ``episodes`` and ``workers``), JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("out", "episodes", "workers")}
        if data["policy"] not in BUILTIN_POLICIES:
            data["policy_sha256"] = _sha256(Path(data["policy"]))
        return json.loads(json.dumps(data, default=_json_default))

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`generation_dict`, the package and generator versions: equal fingerprints give equal
        files."""
        from tdwgym import __version__

        text = json.dumps(
            {"config": self.generation_dict(), "tdwgym": __version__, "generator": GENERATOR_VERSION}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def episode_seeds(seed: int, split: str, index: int) -> tuple[int, int]:
    """(env seed, policy seed) of episode ``index``: a function of the base seed, the split and the index only.

    Splits drawn with the same base seed never share an episode seed; a possible episode and its impossible twin
    (same seed, split and index) share theirs, so they are matched.
    """
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(zlib.crc32(split.encode()), int(index)))
    env_seed, policy_seed = sequence.generate_state(2, dtype=np.uint32)
    return int(env_seed), int(policy_seed)


def episode_path(out: Path | str, index: int) -> Path:
    """Final path of episode ``index`` in ``out``."""
    return Path(out) / f"episode_{index:06d}.hdf5"


# ---------------------------------------------------------------------------------------------------------------
# Recording one episode
# ---------------------------------------------------------------------------------------------------------------
def _env_kwargs(config: DatasetConfig) -> dict[str, Any]:
    """Keyword arguments for ``gym.make``: resolution, backend, variant kwargs the env takes, extras."""
    accepted = _init_params(_env_class(config.env_id))
    kwargs: dict[str, Any] = {"resolution": config.resolution, "action_type": config.action_type}
    if config.backend is not None:
        kwargs["backend"] = config.backend
    for name, value, default in (
        ("level", config.level, 0),
        ("split", config.split, "train"),
        ("impossible", config.impossible, None),
    ):
        if name in accepted:
            kwargs[name] = value
        elif value != default:
            raise ValueError(f"{config.env_id} does not take {name!r} (yet); it generates {name}={default!r} only")
    if config.policy not in BUILTIN_POLICIES:
        kwargs.update(policy_env_kwargs(config.policy, config.resolution))
    kwargs.update(config.env_kwargs)
    return kwargs


def _make_env(config: DatasetConfig) -> tuple[Any, Policy]:
    import gymnasium as gym

    import tdwgym  # noqa: F401 - registers the ids

    # every pass comes from the observation's own render call, so the stored RGB is the observation itself
    env = gym.make(
        config.env_id, max_episode_steps=max(1, config.frames - 1), extra_passes=PASSES, **_env_kwargs(config)
    )
    # reset(policy_seed) at every episode start; a model acts deterministically on the CPU, on one thread
    policy = load_policy(config.policy, env, seed=None, device="cpu", deterministic=True)
    return env, policy


def _take_frames(env: Any) -> dict[str, np.ndarray]:
    unwrapped = env.unwrapped
    frames = unwrapped.last_frames
    if not frames:
        raise RuntimeError("the env returned an observation without rendering it; cannot record this episode")
    unwrapped.last_frames = {}
    return frames


def _record(config: DatasetConfig, index: int, env: Any, policy: Policy) -> dict:
    """Run episode ``index`` and return everything that goes into its file."""
    env_seed, policy_seed = episode_seeds(config.seed, config.split, index)
    unwrapped = env.unwrapped
    unwrapped.last_frames = {}
    obs, info = env.reset(seed=env_seed)
    policy.reset(policy_seed)
    scene = unwrapped.scene
    labels = {**scene.labels, **dict(info.get("labels") or {})}
    steps = [(_take_frames(env), info, None)]
    for _ in range(config.frames - 1):
        action = policy.act(obs)
        obs, _, _, _, info = env.step(action)
        steps.append((_take_frames(env), info, action))
        labels.update(info.get("labels") or {})
    return {
        "index": index,
        "env_seed": env_seed,
        "policy_seed": policy_seed,
        "scene": scene,
        "labels": labels,
        "steps": steps,
        "fov": scene.camera.fov,
        "action_type": unwrapped.action_type,
        "backend_version": unwrapped.backend.version(),
        "frame_seconds": unwrapped.backend.timestep * unwrapped.substeps,
    }


def world_to_camera(
    position: Sequence[float] | np.ndarray, yaw: float | np.ndarray, pitch: float | np.ndarray
) -> np.ndarray:
    """4x4 extrinsic matrix from TDW world coordinates to OpenCV camera coordinates (x right, y down, z forward).

    Its rotation rows are the camera's right, down and forward vectors in world coordinates. TDW's world is
    left-handed and the OpenCV camera frame right-handed, so the rotation has determinant -1 (it includes the
    reflection). With :func:`tdwgym.geometry.intrinsics` ``K``, a world point ``p`` lands on pixel
    ``(u, v) = (K @ x)[:2] / x[2]`` with ``x = (E @ [p, 1])[:3]``, where ``u`` counts columns from the left image
    edge and ``v`` rows from the top edge, in pixel units (pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``).

    Args:
        position: Camera position(s), shape (3,) or (T, 3).
        yaw: Degrees about +y (0 looks along +z), scalar or (T,).
        pitch: Degrees, positive looks up, scalar or (T,).

    Returns:
        (4, 4), or (T, 4, 4) for arrays of poses.
    """
    pos = np.asarray(position, dtype=np.float64)
    y, p = np.radians(np.asarray(yaw, dtype=np.float64)), np.radians(np.asarray(pitch, dtype=np.float64))
    zero = np.zeros_like(y)
    forward = np.stack([np.sin(y) * np.cos(p), np.sin(p) + zero, np.cos(y) * np.cos(p)], axis=-1)
    right = np.stack([np.cos(y), zero, -np.sin(y)], axis=-1)
    down = -np.cross(forward, right)  # the env's up vector is forward x right
    rotation = np.stack([right, down, forward], axis=-2)
    out = np.zeros(rotation.shape[:-2] + (4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation, pos)
    out[..., 3, 3] = 1.0
    return out


def boxes_from_segmentation(segmentation: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """2D boxes and pixel areas of ``ids`` in a (T, H, W) segmentation.

    Returns:
        ``boxes`` (T, N, 4) int32 ``(x_min, y_min, x_max, y_max)`` in pixels, max exclusive (-1 where the object
        has no pixel) and ``areas`` (T, N) int32 pixel counts.
    """
    t = segmentation.shape[0]
    boxes = np.full((t, len(ids), 4), -1, dtype=np.int32)
    areas = np.zeros((t, len(ids)), dtype=np.int32)
    for n, oid in enumerate(ids):
        mask = segmentation == oid
        rows, cols = mask.any(axis=2), mask.any(axis=1)
        seen = rows.any(axis=1)
        if not seen.any():
            continue
        h, w = rows.shape[1], cols.shape[1]
        y0, y1 = rows.argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)
        x0, x1 = cols.argmax(axis=1), w - cols[:, ::-1].argmax(axis=1)
        boxes[seen, n] = np.stack([x0, y0, x1, y1], axis=1)[seen]
        areas[:, n] = mask.sum(axis=(1, 2))
    return boxes, areas


def _write_episode(path: Path, config: DatasetConfig, record: dict, fingerprint: str, versions: dict) -> None:
    """Write one episode's HDF5 file at ``path`` (a temporary name; the caller renames it)."""
    import h5py

    from tdwgym import __version__

    scene, steps = record["scene"], record["steps"]
    t = len(steps)
    rgb = np.stack([s[0]["rgb"] for s in steps])
    depth = np.stack([s[0]["depth"] for s in steps]).astype(np.float32)
    seg = np.stack([s[0]["segmentation"] for s in steps])
    h, w = rgb.shape[1:3]
    spec_ids = [o.id for o in scene.objects]
    ids = sorted(set(spec_ids).union(*(s[1]["objects"] for s in steps)))
    n = len(ids)
    if max([0, *ids, *(p.id for p in scene.props)]) > np.iinfo(np.uint16).max:
        raise ValueError("scene ids above 65535 cannot be stored in the uint16 segmentation")
    kinematics = {"positions": 3, "rotations": 4, "velocities": 3, "angular_velocities": 3}
    info_keys = {
        "positions": "position",
        "rotations": "rotation",
        "velocities": "velocity",
        "angular_velocities": "angular_velocity",
    }
    per_frame = [s[1]["objects"] for s in steps]
    states = {}
    for key, dim in kinematics.items():
        name, missing = info_keys[key], np.full(dim, np.nan)
        rows = [[objs[oid][name] if oid in objs else missing for oid in ids] for objs in per_frame]
        states[key] = np.array(rows, dtype=np.float64).reshape(t, n, dim)
    present = np.array([[oid in objs for oid in ids] for objs in per_frame], dtype=bool).reshape(t, n)
    cam_pos = np.array([s[1]["camera"]["position"] for s in steps], dtype=np.float64).reshape(t, 3)
    cam_yaw = np.array([s[1]["camera"]["yaw"] for s in steps], dtype=np.float64)
    cam_pitch = np.array([s[1]["camera"]["pitch"] for s in steps], dtype=np.float64)
    collisions = [
        (i, c["a"], c["b"], c["impulse"], c["point"], c["normal"])
        for i, s in enumerate(steps)
        for c in s[1]["contacts"]
    ]
    boxes, areas = boxes_from_segmentation(seg, ids)
    if record["action_type"] == "discrete":
        actions = np.array([-1] + [int(s[2]) for s in steps[1:]], dtype=np.int64)
    else:
        actions = np.full((t, 5), np.nan, dtype=np.float32)
        if t > 1:
            actions[1:] = np.stack([np.asarray(s[2], dtype=np.float32) for s in steps[1:]])

    labels = dict(_LABEL_DEFAULTS)
    labels.update(record["labels"])
    for key, value in (
        ("scenario", config.scenario),
        ("level", config.level),
        ("split", config.split),
        ("impossible", config.impossible),
    ):
        if labels.get(key) is None:
            labels[key] = value
    labels = json.loads(_dumps(labels))

    image_kw: dict[str, Any] = {} if config.compression is None else {"compression": config.compression}
    depth_kw: dict[str, Any] = {}
    if config.depth_compression is not None:
        depth_kw = {"compression": config.depth_compression, "shuffle": True}
    chunk = min(t, 8)  # frames per HDF5 chunk: a clip read touches one or two chunks
    strings = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["tdwgym_version"] = __version__
        f.attrs["config_fingerprint"] = fingerprint
        f.attrs["episode"] = record["index"]
        f.attrs["num_frames"] = t
        f.attrs["seed"] = record["env_seed"]
        metadata = {
            "env_id": config.env_id,
            "env_kwargs": _env_kwargs_for_record(config),
            "episode": record["index"],
            "env_seed": record["env_seed"],
            "policy": config.policy,
            "policy_seed": record["policy_seed"],
            "base_seed": config.seed,
            "config": config.generation_dict(),
            "tdwgym_version": __version__,
            "backend_version": record["backend_version"],
            "versions": versions,
            "format_version": FORMAT_VERSION,
        }
        f.create_dataset("metadata", data=_dumps(metadata), dtype=strings)

        static = f.create_group("static")
        static.create_dataset("object_ids", data=np.array(ids, dtype=np.int32))
        spec = {o.id: o for o in scene.objects}

        def per_object(attr: str, width: int | None, default: float = np.nan) -> np.ndarray:
            shape = (n,) if width is None else (n, width)
            out = np.full(shape, default, dtype=np.float64)
            for j, oid in enumerate(ids):
                if oid in spec:
                    out[j] = getattr(spec[oid], attr)
            return out

        for name, attr, width in (
            ("masses", "mass", None),
            ("frictions", "friction", None),
            ("restitutions", "restitution", None),
            ("sizes", "size", 3),
            ("colors", "color", 3),
        ):
            static.create_dataset(name, data=per_object(attr, width))
        static.create_dataset("shapes", data=[spec[i].shape if i in spec else "" for i in ids], dtype=strings)
        static.create_dataset("names", data=[spec[i].name if i in spec else "" for i in ids], dtype=strings)
        static.create_dataset("prop_ids", data=np.array([p.id for p in scene.props], dtype=np.int32))
        static.create_dataset("prop_names", data=[p.name for p in scene.props], dtype=strings)
        static.create_dataset("scene_json", data=scene.to_json(sort_keys=True), dtype=strings)
        static.create_dataset("fov", data=float(scene.camera.fov))
        static.create_dataset("frame_seconds", data=float(record["frame_seconds"]))

        frames = f.create_group("frames")
        images = frames.create_group("images")
        images.create_dataset("_img", data=rgb, chunks=(chunk, h, w, 3), **image_kw)
        images.create_dataset("_depth", data=depth, chunks=(chunk, h, w), **depth_kw)
        images.create_dataset("_id", data=seg.astype(np.uint16), chunks=(chunk, h, w), **image_kw)
        objects = frames.create_group("objects")
        for key, value in states.items():
            objects.create_dataset(key, data=value)
        objects.create_dataset("present", data=present)
        objects.create_dataset("bboxes", data=boxes)
        objects.create_dataset("areas", data=areas)
        frames.create_dataset("actions", data=actions)
        frames.create_dataset("sim_time", data=np.array([s[1]["sim_time"] for s in steps], dtype=np.float64))
        frames.create_dataset(
            "objects_in_view", data=np.array([s[1].get("objects_in_view", -1) for s in steps], dtype=np.int32)
        )

        cams = f.create_group("camera_matrices")
        from tdwgym.geometry import intrinsics

        cams.create_dataset("intrinsics", data=intrinsics(w, h, record["fov"]))
        cams.create_dataset("world_to_camera", data=world_to_camera(cam_pos, cam_yaw, cam_pitch))
        cams.create_dataset("positions", data=cam_pos)
        cams.create_dataset("yaw", data=cam_yaw)
        cams.create_dataset("pitch", data=cam_pitch)

        col = f.create_group("collisions")
        k = len(collisions)
        col.create_dataset("frame", data=np.array([c[0] for c in collisions], dtype=np.int32))
        col.create_dataset("a", data=np.array([c[1] for c in collisions], dtype=np.int32))
        col.create_dataset("b", data=np.array([c[2] for c in collisions], dtype=np.int32))
        col.create_dataset("impulse", data=np.array([c[3] for c in collisions], dtype=np.float64))
        col.create_dataset("point", data=np.array([c[4] for c in collisions], dtype=np.float64).reshape(k, 3))
        col.create_dataset("normal", data=np.array([c[5] for c in collisions], dtype=np.float64).reshape(k, 3))

        lab = f.create_group("labels")
        lab.create_dataset("json", data=_dumps(labels), dtype=strings)
        lab.create_dataset("scenario", data=str(labels["scenario"]), dtype=strings)
        lab.create_dataset("split", data=str(labels["split"]), dtype=strings)
        lab.create_dataset("level", data=int(labels["level"]))
        lab.create_dataset("impossible", data=labels["impossible"] or "", dtype=strings)
        lab.create_dataset("possible", data=labels["impossible"] is None)
        event = labels["event_frame"]
        lab.create_dataset("event_frame", data=-1 if event is None else int(event))
        lab.create_dataset("ood_factors", data=[str(v) for v in labels["ood_factors"]], dtype=strings)
        factors = lab.create_group("factors")
        for name, value in sorted((labels["factors"] or {}).items()):
            arr = np.asarray(value)
            if arr.dtype.kind in "biuf":
                factors.create_dataset(name, data=arr)
            elif arr.dtype.kind == "U" and arr.ndim <= 1:
                factors.create_dataset(name, data=arr.astype(object), dtype=strings)
        f.attrs["complete"] = True


def _env_kwargs_for_record(config: DatasetConfig) -> dict[str, Any]:
    return json.loads(_dumps(_env_kwargs(config)))


def _versions() -> dict[str, str]:
    import gymnasium
    import h5py

    out = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "h5py": h5py.__version__,
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        out["pybullet"] = version("pybullet")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Atomic files, resume, workers
# ---------------------------------------------------------------------------------------------------------------
def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, fsync, then rename onto ``path``; the temporary file never outlives a failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def episode_is_valid(path: Path | str, fingerprint: str | None = None, frames: int | None = None) -> bool:
    """Whether ``path`` is a complete episode file (optionally of the config ``fingerprint`` and ``frames``)."""
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
            return all(f[f"frames/images/{k}"].shape[0] == t for k in ("_img", "_depth", "_id"))
    except (OSError, KeyError, ValueError):
        return False


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed worker nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: assume alive, keep its file
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _remove_stale_tmp(out: Path) -> None:
    """Delete temporary episode files left by generator processes that no longer run."""
    for tmp in out.iterdir():
        match = _TMP_RE.match(tmp.name)
        if match and (int(match.group(1)) == os.getpid() or not _pid_running(int(match.group(1)))):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


_WORKER: dict[str, Any] = {}


def _worker_env(config: DatasetConfig) -> tuple[Any, Policy]:
    key = config.fingerprint()
    if _WORKER.get("key") != key:
        _close_worker()
        _WORKER.update(key=key, made=_make_env(config), versions=_versions())
    return _WORKER["made"]


def _close_worker() -> None:
    made = _WORKER.pop("made", None)
    _WORKER.clear()
    if made is not None:
        made[0].close()


def _run_episode(config: DatasetConfig, index: int, fingerprint: str) -> tuple[int, int, float]:
    """Record and atomically write episode ``index``; returns (index, frames written, CPU seconds used)."""
    cpu = time.process_time()
    env, policy = _worker_env(config)
    record = _record(config, index, env, policy)
    path = episode_path(config.out, index)
    _atomic_write(path, lambda tmp: _write_episode(tmp, config, record, fingerprint, _WORKER["versions"]))
    return index, len(record["steps"]), time.process_time() - cpu


def _mp_context() -> Any:
    """``forkserver`` with this module preloaded where the platform has it (workers start without re-importing
    numpy, pybullet and h5py), else ``spawn``. Neither forks this process, so neither inherits its threads or
    simulator clients; both need the usual ``if __name__ == "__main__":`` guard in scripts. The server and the
    workers end with this process, even after a kill -9 of it (:func:`tdwgym.processes.forkserver_context`)."""
    return forkserver_context(["tdwgym.envs", "h5py", "pybullet", "gymnasium"])


def _worker_init() -> None:
    init_worker()
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _manifest(
    config: DatasetConfig, backend_version: dict, done: list[int], run: dict[str, Any] | None = None
) -> dict[str, Any]:
    from tdwgym import __version__

    return {
        "last_run": run or {},
        "format_version": FORMAT_VERSION,
        "tdwgym_version": __version__,
        "env_id": config.env_id,
        "config": config.generation_dict(),
        "config_fingerprint": config.fingerprint(),
        "episodes_requested": config.episodes,
        "episodes": [episode_path(config.out, i).name for i in done],
        "complete": len(done) >= config.episodes,
        "backend_version": backend_version,
        "versions": _versions(),
    }


def _check_manifest(config: DatasetConfig) -> None:
    path = config.out / MANIFEST_NAME
    if not path.exists():
        return
    old = read_json(
        path,
        "it records the settings the episodes in this folder were made with: restore it, use another --out, or "
        "delete it to resume anyway (episodes of other settings are then recorded again)",
    )
    if old.get("config_fingerprint") == config.fingerprint():
        return
    new, before = config.generation_dict(), old.get("config", {})
    differ = sorted(k for k in set(new) | set(before) if new.get(k) != before.get(k))
    detail = ", ".join(f"{k}: {before.get(k)!r} on disk, {new.get(k)!r} now" for k in differ)
    if not differ:
        detail = f"tdwgym {old.get('tdwgym_version')!r} on disk; the generator or package version changed"
    raise ValueError(
        f"{config.out} already holds a dataset generated with different settings ({detail}); "
        "use another --out, or the settings on disk to resume"
    )


def generate(config: DatasetConfig, progress: bool = True) -> list[Path]:
    """Generate (or resume) the dataset described by ``config``.

    Episodes whose final file exists and validates are skipped; the others are recorded by ``config.workers``
    processes (in this process when 1) and written atomically. The run's metadata goes to ``dataset.json``.

    Args:
        config: What to generate and where.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        Paths of all ``config.episodes`` episode files, in episode order.

    Raises:
        ValueError: Bad config values, or ``config.out`` holds a dataset of different settings.
    """
    from tqdm.auto import tqdm

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    _check_manifest(config)
    _remove_stale_tmp(out)
    fingerprint = config.fingerprint()

    env, _ = _make_env(config)  # validates the env kwargs here, before any worker starts
    backend_version = env.unwrapped.backend.version()
    env.close()

    done = [i for i in range(config.episodes) if episode_is_valid(episode_path(out, i), fingerprint, config.frames)]
    todo = [i for i in range(config.episodes) if i not in set(done)]
    _write_text_atomic(out / MANIFEST_NAME, json.dumps(_manifest(config, backend_version, done), indent=2))

    bar = tqdm(
        total=config.episodes,
        initial=len(done),
        unit="episode",
        disable=not progress,
        desc=f"{config.scenario}/{config.split}/level{config.level}",
        dynamic_ncols=True,
    )
    start, main_cpu, frames, worker_cpu = time.perf_counter(), time.process_time(), 0, 0.0

    def finished(index: int, count: int, cpu: float) -> None:
        nonlocal frames, worker_cpu
        done.append(index)
        frames += count
        worker_cpu += cpu if config.workers > 1 and len(todo) > 1 else 0.0
        bar.update(1)
        bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - start, 1e-9):.0f}")

    try:
        if config.workers == 1 or len(todo) <= 1:
            try:
                for index in todo:
                    finished(*_run_episode(config, index, fingerprint))
            finally:
                _close_worker()
        else:
            with ProcessPoolExecutor(
                max_workers=min(config.workers, len(todo)), mp_context=_mp_context(), initializer=_worker_init
            ) as pool:
                pending = {pool.submit(_run_episode, config, i, fingerprint) for i in todo}
                try:
                    while pending:
                        completed, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in completed:
                            finished(*future.result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    finally:
        bar.close()
        run = {
            "workers": config.workers,
            "episodes_written": len(done) - (config.episodes - len(todo)),
            "frames_written": frames,
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - main_cpu + worker_cpu,
            "worker_cpu_seconds": worker_cpu,
        }
        manifest = _manifest(config, backend_version, sorted(done), run)
        _write_text_atomic(out / MANIFEST_NAME, json.dumps(manifest, indent=2))
    return [episode_path(out, i) for i in range(config.episodes)]


# ---------------------------------------------------------------------------------------------------------------
# Reading back
# ---------------------------------------------------------------------------------------------------------------
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
        ``collisions`` (dict of arrays), ``labels`` (dict), ``scene`` (:class:`~tdwgym.scene.SceneSpec`) and
        ``metadata`` (dict).
    """
    import h5py

    from tdwgym.scene import SceneSpec

    with h5py.File(path, "r") as f:
        objects = f["frames/objects"]
        return {
            "rgb": f["frames/images/_img"][()],
            "depth": f["frames/images/_depth"][()],
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
    ) -> None:
        import h5py

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
            with h5py.File(path, "r") as f:
                t = int(f.attrs["num_frames"])
                self.max_objects = max(self.max_objects, int(f["static/object_ids"].shape[0]))
            lengths.append(t)
            self.index += [(n, s) for s in range(0, t - clip_len + 1, stride)]
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

    def read(self, i: int) -> dict[str, Any]:
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
                out[key] = f["frames/images/_depth"][s:e][:, None]
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

    Raises:
        FileNotFoundError: ``root`` has no episode files.
        ValueError: An unknown key, or ``clip_len`` longer than every episode.
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
        ) -> None:
            self._clips = _ClipIndex(root, clip_len, stride, keys, rgb_float, episodes)

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


# ---------------------------------------------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------------------------------------------
def _env_shard(scenario: str, indices: Sequence[int], frames: int, resolution: int, seed: int) -> tuple[int, float]:
    """The plain env on the generator's work for ``indices``: reset + (frames - 1) random steps each, rgb
    observations. Returns (frames, CPU seconds)."""
    import gymnasium as gym

    import tdwgym  # noqa: F401

    cpu = time.process_time()
    env = gym.make(scenarios()[scenario], resolution=resolution, max_episode_steps=max(1, frames - 1))
    try:
        for index in indices:
            env_seed, policy_seed = episode_seeds(seed, "train", index)
            env.reset(seed=env_seed)
            env.action_space.seed(policy_seed)
            for _ in range(frames - 1):
                env.step(env.action_space.sample())
    finally:
        env.close()
    return len(indices) * frames, time.process_time() - cpu


def _env_rate(scenario: str, episodes: int, frames: int, resolution: int, seed: int, processes: int) -> dict:
    """The plain env's frames/s on the generator's work in ``processes`` processes, started like its workers."""
    shards = [list(range(episodes))[k::processes] for k in range(processes)]
    wall = time.perf_counter()
    if processes == 1:
        results = [_env_shard(scenario, shards[0], frames, resolution, seed)]
    else:
        with ProcessPoolExecutor(max_workers=processes, mp_context=_mp_context(), initializer=_worker_init) as pool:
            futures = [pool.submit(_env_shard, scenario, shard, frames, resolution, seed) for shard in shards]
            results = [f.result() for f in futures]
    wall = time.perf_counter() - wall
    count, cpu = sum(r[0] for r in results), sum(r[1] for r in results)
    return {"frames_per_s": count / wall, "frames_per_cpu_s": count / cpu}


def _dataset_rate(config: DatasetConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tdwgym-bench-") as tmp:
        config = DatasetConfig(**{**{f.name: getattr(config, f.name) for f in fields(config)}, "out": Path(tmp)})
        wall, cpu = time.perf_counter(), time.process_time()
        generate(config, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        run = json.loads((Path(tmp) / MANIFEST_NAME).read_text())["last_run"]
        cpu += run["worker_cpu_seconds"]  # worker processes report their own CPU time
    frames = config.episodes * config.frames
    return {"frames_per_s": frames / wall, "frames_per_cpu_s": frames / cpu, "seconds": wall}


def benchmark(
    scenario: str = "occlusion",
    episodes: int = 12,
    frames: int = 150,
    resolution: int = 64,
    workers: Sequence[int] = (1, 2),
    rounds: int = 3,
    seed: int = 0,
    compression: str | None = "gzip",
) -> dict[str, Any]:
    """Dataset generation speed beside the env's own, measured in the same run.

    For each worker count k, each round runs the plain env on the generator's work (reset plus ``frames - 1``
    random steps per episode, rgb observations) in k processes, then generates the dataset (RGB, depth,
    segmentation, boxes, object states, camera, collisions and labels, written to HDF5) with k workers; each
    figure is the best of ``rounds``. ``compression`` is the RGB and segmentation filter (one of
    :data:`COMPRESSIONS`). Wall-clock figures include process start-up on both sides. CPU figures count
    the CPU seconds of the processes doing the work, so they hold up better when other programs load the machine.

    Returns:
        ``{"env": {k: {"frames_per_s", "frames_per_cpu_s"}}, "dataset": {k: {"frames_per_s", "frames_per_cpu_s",
        "seconds", "ratio", "ratio_cpu"}}, "settings": {...}}`` where ``ratio`` is the dataset's frames/s over the
        env's with the same number of processes and ``ratio_cpu`` the same per CPU second (target: >= 0.8, i.e.
        annotation costs at most 25%).
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    base = DatasetConfig(
        out=Path("."),
        scenario=scenario,
        episodes=episodes,
        frames=frames,
        resolution=resolution,
        seed=seed,
        compression=compression,
    )
    ks = [int(k) for k in workers]
    env_runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    for _ in range(rounds):
        for k in ks:
            env_runs[k].append(_env_rate(scenario, episodes, frames, resolution, seed, k))
            base.workers = k
            runs[k].append(_dataset_rate(base))

    def best(items: list[dict[str, float]]) -> dict[str, float]:
        return {key: (min if key == "seconds" else max)(r[key] for r in items) for key in items[0]}

    env = {k: best(items) for k, items in env_runs.items()}
    dataset = {}
    for k, items in runs.items():
        r = best(items)
        r["ratio"] = r["frames_per_s"] / env[k]["frames_per_s"]
        r["ratio_cpu"] = r["frames_per_cpu_s"] / env[k]["frames_per_cpu_s"]
        dataset[k] = r
    return {
        "env": env,
        "dataset": dataset,
        "settings": {
            "scenario": scenario,
            "episodes": episodes,
            "frames": frames,
            "resolution": resolution,
            "workers": ks,
            "rounds": rounds,
            "compression": compression,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }


def format_benchmark(result: dict[str, Any]) -> str:
    """Human-readable lines for :func:`benchmark`'s result."""
    s = result["settings"]
    lines = [
        f"dataset: {s['scenario']}, {s['episodes']} episodes x {s['frames']} frames at {s['resolution']}x"
        f"{s['resolution']}, every label ({s.get('compression', 'lzf') or 'no'} compression), best of {s['rounds']}; "
        f"{s['cpu_count']} CPUs, load average "
        f"{s['load_average'][0] if s['load_average'] else float('nan'):.1f}",
    ]
    for k, r in result["dataset"].items():
        env = result["env"][k]
        procs = f"{k} process{'es' if k > 1 else ''}"
        lines += [
            f"  env steps, {procs:<12} {env['frames_per_s']:8.1f} frames/s  "
            f"{env['frames_per_cpu_s']:8.1f} frames/CPU-s",
            f"  dataset, {procs:<14} {r['frames_per_s']:8.1f} frames/s  {r['frames_per_cpu_s']:8.1f} frames/CPU-s  "
            f"ratio {r['ratio']:.2f} wall, {r['ratio_cpu']:.2f} CPU (target >= 0.80)",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bench":
        bench_parser = argparse.ArgumentParser(prog="python -m tdwgym.dataset bench")
        bench_parser.add_argument("--compression", default="gzip", type=lambda s: None if s == "none" else s)
        bench_parser.add_argument("--episodes", type=int, default=12)
        bench_parser.add_argument("--rounds", type=int, default=3)
        bench_args = bench_parser.parse_args(sys.argv[2:])
        try:
            DatasetConfig(out=Path("."), episodes=bench_args.episodes, compression=bench_args.compression)
            if bench_args.rounds < 1:
                raise ValueError(f"--rounds must be >= 1, got {bench_args.rounds}")
        except ValueError as error:
            bench_parser.error(str(error))
        print(
            format_benchmark(
                benchmark(episodes=bench_args.episodes, rounds=bench_args.rounds, compression=bench_args.compression)
            )
        )
        raise SystemExit(0)
    raise SystemExit("python -m tdwgym.dataset takes `bench` only; generate datasets with `tdwgym dataset`")


__all__ = [
    "CLIP_KEYS",
    "LEVELS",
    "SPLITS",
    "DatasetConfig",
    "benchmark",
    "boxes_from_segmentation",
    "episode_files",
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
