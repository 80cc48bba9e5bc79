"""Recording and writing episodes: one HDF5 file per episode, written atomically
(:func:`tdwgym.util.files.atomic_path`: a temporary file in the output directory, then renamed), by one process or a
pool of workers; :func:`generate` resumes a directory by skipping the episodes already written."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.tools.dataset.config import (
    _LABEL_DEFAULTS,
    _TMP_RE,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PASSES,
    DatasetConfig,
    _dumps,
    _env_kwargs,
    episode_path,
    episode_seeds,
)
from tdwgym.tools.dataset.reader import episode_fingerprint, episode_is_valid
from tdwgym.tools.policies import Policy, load_policy
from tdwgym.util.files import atomic_path, read_json, write_atomic
from tdwgym.util.processes import forkserver_context, init_worker
from tdwgym.util.progress_bar import progress_bar


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
    reflection). With :func:`tdwgym.sim.geometry.intrinsics` ``K``, a world point ``p`` lands on pixel
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

    # every frame array carries an HDF5 Fletcher-32 checksum per chunk: a flipped byte fails the read
    image_kw: dict[str, Any] = {"fletcher32": True}
    if config.compression is not None:
        image_kw["compression"] = config.compression
    depth_kw: dict[str, Any] = {"fletcher32": True}
    if config.depth_compression is not None:
        depth_kw.update(compression=config.depth_compression, shuffle=True)
    checked: dict[str, Any] = {"fletcher32": True}
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
            objects.create_dataset(key, data=value, **(checked if np.size(value) else {}))
        objects.create_dataset("present", data=present, **(checked if np.size(present) else {}))
        objects.create_dataset("bboxes", data=boxes, **(checked if np.size(boxes) else {}))
        objects.create_dataset("areas", data=areas, **(checked if np.size(areas) else {}))
        frames.create_dataset("actions", data=actions, **(checked if np.size(actions) else {}))
        frames.create_dataset("sim_time", data=np.array([s[1]["sim_time"] for s in steps], dtype=np.float64))
        frames.create_dataset(
            "objects_in_view", data=np.array([s[1].get("objects_in_view", -1) for s in steps], dtype=np.int32)
        )

        cams = f.create_group("camera_matrices")
        from tdwgym.sim.geometry import intrinsics

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
    with atomic_path(path, durable=True) as tmp:
        _write_episode(tmp, config, record, fingerprint, _WORKER["versions"])
    return index, len(record["steps"]), time.process_time() - cpu


def _mp_context() -> Any:
    """``forkserver`` with this module preloaded where the platform has it (workers start without re-importing
    numpy, pybullet and h5py), else ``spawn``. Neither forks this process, so neither inherits its threads or
    simulator clients; both need the usual ``if __name__ == "__main__":`` guard in scripts. The server and the
    workers end with this process, even after a kill -9 of it (:func:`tdwgym.util.processes.forkserver_context`)."""
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


def _check_episodes(config: DatasetConfig, fingerprint: str) -> None:
    """Refuse to replace episodes recorded with other settings (the fingerprint inside each file decides, whatever
    ``dataset.json`` says), unless ``config.overwrite``."""
    if config.overwrite:
        return
    other = [
        p
        for i in range(config.episodes)
        if (p := episode_path(config.out, i)).exists() and episode_fingerprint(p) not in (None, fingerprint)
    ]
    if other:
        raise ValueError(
            f"{config.out} holds {len(other)} episode(s) recorded with other settings (e.g. {other[0].name}; the "
            "settings fingerprint inside each file decides); use another --out, the settings they were made with, "
            "or --overwrite to record them again"
        )


def generate(config: DatasetConfig, progress: bool = True) -> list[Path]:
    """Generate (or resume) the dataset described by ``config``.

    Episodes whose final file exists and validates are skipped; the others are recorded by ``config.workers``
    processes (in this process when 1) and written atomically. The run's metadata goes to ``dataset.json``.

    Args:
        config: What to generate and where.
        progress: Show progress on stderr (:func:`tdwgym.util.progress_bar.progress_bar`).

    Returns:
        Paths of all ``config.episodes`` episode files, in episode order.

    Raises:
        ValueError: Bad config values, or ``config.out`` holds a dataset of different settings.
    """
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    if not config.overwrite:
        _check_manifest(config)
    _remove_stale_tmp(out)
    fingerprint = config.fingerprint()
    _check_episodes(config, fingerprint)

    env, _ = _make_env(config)  # validates the env kwargs here, before any worker starts
    backend_version = env.unwrapped.backend.version()
    env.close()

    done = [i for i in range(config.episodes) if episode_is_valid(episode_path(out, i), fingerprint, config.frames)]
    todo = [i for i in range(config.episodes) if i not in set(done)]
    write_atomic(out / MANIFEST_NAME, json.dumps(_manifest(config, backend_version, done), indent=2), durable=True)

    bar = progress_bar(
        total=config.episodes,
        initial=len(done),
        unit="episode",
        enabled=progress,
        desc=f"{config.scenario}/{config.split}/level{config.level}",
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
        write_atomic(out / MANIFEST_NAME, json.dumps(manifest, indent=2), durable=True)
    return [episode_path(out, i) for i in range(config.episodes)]


__all__ = ["boxes_from_segmentation", "generate", "world_to_camera"]
