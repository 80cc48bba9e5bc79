"""Evaluation metrics as pure numpy functions (no torch, no env).

Conventions:

* Images are ``(..., H, W, C)`` arrays; ``uint8`` is read as ``[0, 255]`` and divided by 255, floats are taken as
  already in ``[0, 1]``. Per-frame metrics reduce the last three axes and keep the leading ones.
* Video prediction metrics follow OpenSTL: MSE and MAE are *summed* over the pixels (and channels) of a frame,
  PSNR comes from the per-pixel mean squared error, SSIM is the Wang et al. (2004) index with scikit-image's
  defaults (7x7 uniform window, sample covariance, ``K1 = 0.01``, ``K2 = 0.03``), averaged over channels.
* Violation of expectation (IntPhys, V-JEPA): a clip's surprise is its prediction error aggregated over time
  (:func:`aggregate_surprise`); metrics are :func:`pairwise_accuracy` within matched possible/impossible pairs and
  :func:`auroc` over all clips.
* Physical-law probes (Kang et al. 2024): object positions parsed from frames by colour masks or segmentation
  (:func:`color_mask_positions`, :func:`segmentation_positions`), velocities from trajectories
  (:func:`fit_velocity`, :func:`velocities`) and their error (:func:`velocity_error`).
* Exploration: :func:`floor_coverage` of the camera's view, :func:`exploration_counts` from step infos.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PSNR_MAX_DB",
    "aggregate_surprise",
    "auroc",
    "color_mask_positions",
    "constant_velocity_rollout",
    "copy_last_rollout",
    "exploration_counts",
    "fit_velocity",
    "floor_coverage",
    "mae",
    "mse",
    "pairwise_accuracy",
    "project_points",
    "psnr",
    "segmentation_positions",
    "ssim",
    "velocities",
    "velocity_error",
]

PSNR_MAX_DB = 100.0
"""PSNR of identical frames (instead of infinity, so that means and JSON stay finite)."""


def as_unit_float(images: np.ndarray) -> np.ndarray:
    """Images as float64 in [0, 1]: uint8 is divided by 255, floats are returned as float64 unchanged."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    return arr.astype(np.float64, copy=False)


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_unit_float(pred), as_unit_float(true)
    if p.shape != t.shape:
        raise ValueError(f"prediction and target shapes differ: {p.shape} vs {t.shape}")
    if p.ndim < 3:
        raise ValueError(f"images must be (..., H, W, C), got shape {p.shape}")
    return p, t


# ------------------------------------------------------------------------------------------ prediction quality


def mse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Squared error summed over the pixels and channels of each frame (OpenSTL's MSE).

    Args:
        pred: ``(..., H, W, C)`` predicted frames.
        true: Target frames of the same shape.

    Returns:
        ``(...)`` per-frame sums (a 0-d array for a single frame).
    """
    p, t = _pair(pred, true)
    return ((p - t) ** 2).sum(axis=(-3, -2, -1))


def mae(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Absolute error summed over the pixels and channels of each frame (OpenSTL's MAE)."""
    p, t = _pair(pred, true)
    return np.abs(p - t).sum(axis=(-3, -2, -1))


def psnr(pred: np.ndarray, true: np.ndarray, max_db: float = PSNR_MAX_DB) -> np.ndarray:
    """Peak signal-to-noise ratio per frame, ``10 log10(1 / mean squared error)`` on [0, 1] images.

    Args:
        pred: ``(..., H, W, C)`` predicted frames.
        true: Target frames of the same shape.
        max_db: Value for identical frames (and the cap of every frame).

    Returns:
        ``(...)`` PSNR in dB.
    """
    p, t = _pair(pred, true)
    m = ((p - t) ** 2).mean(axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        db = np.where(m > 0, -10.0 * np.log10(np.maximum(m, 1e-300)), np.inf)
    return np.minimum(db, max_db)


def _window_mean(x: np.ndarray, win: int) -> np.ndarray:
    """Mean over every ``win`` x ``win`` window fully inside the image; ``x`` is ``(N, H, W)``."""
    c = np.cumsum(np.cumsum(np.pad(x, ((0, 0), (1, 0), (1, 0))), axis=1), axis=2)
    s = c[:, win:, win:] - c[:, :-win, win:] - c[:, win:, :-win] + c[:, :-win, :-win]
    return s / (win * win)


def ssim(pred: np.ndarray, true: np.ndarray, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """Structural similarity per frame (mean over valid windows and channels), data range 1.

    Matches ``skimage.metrics.structural_similarity(..., channel_axis=-1, data_range=1)`` with its defaults:
    a ``win_size`` x ``win_size`` uniform window, sample (N-1) covariances, and only windows that lie fully
    inside the image. Frames smaller than the window use a window as large as the frame's shorter side (odd).

    Returns:
        ``(...)`` SSIM in [-1, 1].
    """
    p, t = _pair(pred, true)
    lead, (h, w, c) = p.shape[:-3], p.shape[-3:]
    win = min(win_size, h, w)
    win -= 1 - win % 2  # odd
    if win < 1:
        raise ValueError(f"frames of size {h}x{w} are too small for SSIM")
    x = np.moveaxis(p.reshape(-1, h, w, c), -1, 1).reshape(-1, h, w)
    y = np.moveaxis(t.reshape(-1, h, w, c), -1, 1).reshape(-1, h, w)
    n = win * win
    cov_norm = n / (n - 1) if n > 1 else 1.0
    ux, uy = _window_mean(x, win), _window_mean(y, win)
    vx = cov_norm * (_window_mean(x * x, win) - ux * ux)
    vy = cov_norm * (_window_mean(y * y, win) - uy * uy)
    vxy = cov_norm * (_window_mean(x * y, win) - ux * uy)
    c1, c2 = k1**2, k2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    per_channel = s.mean(axis=(1, 2)).reshape(-1, c)
    return per_channel.mean(axis=1).reshape(lead)


def copy_last_rollout(context: np.ndarray, horizon: int) -> np.ndarray:
    """Copy-last-frame baseline: ``horizon`` copies of the newest context frame.

    Args:
        context: ``(k, H, W, C)`` context frames, oldest first (k >= 1).
        horizon: Frames to predict.

    Returns:
        ``(horizon, H, W, C)`` float frames in [0, 1].
    """
    last = as_unit_float(context)[-1]
    return np.repeat(last[None], horizon, axis=0)


def constant_velocity_rollout(context: np.ndarray, horizon: int) -> np.ndarray:
    """Constant-velocity baseline in pixel space, rolled on its own predictions: ``x[t+1] = clip(2 x[t] - x[t-1])``.

    Args:
        context: ``(k, H, W, C)`` context frames, oldest first; with one frame it is the copy-last baseline.
        horizon: Frames to predict.

    Returns:
        ``(horizon, H, W, C)`` float frames in [0, 1].
    """
    ctx = as_unit_float(context)
    prev, cur = (ctx[-2], ctx[-1]) if len(ctx) >= 2 else (ctx[-1], ctx[-1])
    out = []
    for _ in range(horizon):
        nxt = np.clip(2.0 * cur - prev, 0.0, 1.0)
        out.append(nxt)
        prev, cur = cur, nxt
    return np.stack(out)


# ------------------------------------------------------------------------------------ violation of expectation


def aggregate_surprise(per_step: np.ndarray | Sequence[float], how: str = "mean") -> float:
    """A clip's surprise from its per-step prediction errors: ``"mean"`` or ``"max"`` over time (NaNs ignored)."""
    arr = np.asarray(per_step, dtype=np.float64)
    if arr.size == 0 or np.all(np.isnan(arr)):
        raise ValueError("no finite per-step surprise to aggregate")
    if how == "mean":
        return float(np.nanmean(arr))
    if how == "max":
        return float(np.nanmax(arr))
    raise ValueError(f"unknown aggregation {how!r}; use 'mean' or 'max'")


def auroc(positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of scores that should be higher for ``positive`` (e.g. impossible clips).

    Computed as the Mann-Whitney U statistic from ranks (ties share their average rank, i.e. count 1/2): the
    probability that a random positive outscores a random negative.

    Raises:
        ValueError: Either group is empty or a score is NaN.
    """
    pos, neg = np.asarray(positive, dtype=np.float64).ravel(), np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUROC needs at least one positive and one negative score")
    scores = np.concatenate([pos, neg])
    if np.isnan(scores).any():
        raise ValueError("AUROC scores contain NaN")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(scores):  # average ranks over runs of ties (1-based)
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def pairwise_accuracy(
    impossible: Sequence[float] | np.ndarray, possible: Sequence[float] | np.ndarray, tie: float = 0.5
) -> float:
    """Fraction of matched pairs whose impossible clip is more surprising than its possible twin.

    Args:
        impossible: Surprise of each pair's impossible clip.
        possible: Surprise of each pair's possible clip (same order and length).
        tie: Credit of a pair with equal surprise (0.5: a coin flip).
    """
    imp, pos = np.asarray(impossible, dtype=np.float64), np.asarray(possible, dtype=np.float64)
    if imp.shape != pos.shape or imp.ndim != 1 or imp.size == 0:
        raise ValueError(f"need two equal-length non-empty 1-d arrays, got shapes {imp.shape} and {pos.shape}")
    return float(np.mean(np.where(imp > pos, 1.0, np.where(imp == pos, tie, 0.0))))


# -------------------------------------------------------------------------------------- physical-law probes


def _centroids(masks: np.ndarray, min_pixels: int) -> np.ndarray:
    """(T, 2) (x, y) pixel centroids of boolean masks ``(T, H, W)``; NaN where fewer than ``min_pixels``."""
    t, h, w = masks.shape
    counts = masks.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = np.arange(h, dtype=np.float64) + 0.5, np.arange(w, dtype=np.float64) + 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (masks.sum(axis=1) * xs).sum(axis=1) / counts
        cy = (masks.sum(axis=2) * ys).sum(axis=1) / counts
    out = np.stack([cx, cy], axis=1)
    out[counts < max(min_pixels, 1)] = np.nan
    return out


def color_mask_positions(
    frames: np.ndarray, color: Sequence[float], tolerance: float = 0.12, min_pixels: int = 1
) -> np.ndarray:
    """Image positions of an object found by its colour: the centroid of the pixels close to ``color``.

    Args:
        frames: ``(T, H, W, 3)`` frames (uint8 or [0, 1] floats), or one ``(H, W, 3)`` frame.
        color: The object's RGB in [0, 1].
        tolerance: Largest Euclidean RGB distance (in [0, 1] units) of a pixel counted as the object.
        min_pixels: Fewer matching pixels than this means "not found" (NaN).

    Returns:
        ``(T, 2)`` ``(x, y)`` pixel coordinates (pixel centres at +0.5; x right, y down), NaN where not found.
    """
    f = as_unit_float(frames)
    single = f.ndim == 3
    f = f[None] if single else f
    dist = np.linalg.norm(f - np.asarray(color, dtype=np.float64)[None, None, None], axis=-1)
    out = _centroids(dist <= tolerance, min_pixels)
    return out[0] if single else out


def segmentation_positions(segmentation: np.ndarray, object_id: int, min_pixels: int = 1) -> np.ndarray:
    """Image positions of ``object_id`` in segmentation frames ``(T, H, W)`` (centroid of its pixels).

    Returns:
        ``(T, 2)`` ``(x, y)`` pixel coordinates, NaN where the object is not visible.
    """
    seg = np.asarray(segmentation)
    single = seg.ndim == 2
    seg = seg[None] if single else seg
    out = _centroids(seg == object_id, min_pixels)
    return out[0] if single else out


def velocities(positions: np.ndarray, dt: float = 1.0) -> np.ndarray:
    """Finite-difference velocities ``(p[t+1] - p[t]) / dt`` of a ``(T, D)`` trajectory, ``(T-1, D)``."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    return np.diff(p, axis=0) / dt


def fit_velocity(positions: np.ndarray, dt: float = 1.0, min_points: int = 2) -> np.ndarray:
    """Least-squares constant velocity of a ``(T, D)`` trajectory (rows with NaN are skipped).

    For a uniform motion ``p[t] = p0 + v t dt`` it returns ``v`` exactly.

    Returns:
        ``(D,)`` velocity per ``dt``; all NaN when fewer than ``min_points`` rows are finite.
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    t = np.arange(len(p), dtype=np.float64) * dt
    ok = np.all(np.isfinite(p), axis=1)
    if ok.sum() < max(min_points, 2):
        return np.full(p.shape[1], np.nan)
    tt = t[ok] - t[ok].mean()
    if not np.any(tt):
        return np.full(p.shape[1], np.nan)
    pp = p[ok] - p[ok].mean(axis=0)
    return (tt[:, None] * pp).sum(axis=0) / (tt**2).sum()


def velocity_error(pred_positions: np.ndarray, true_positions: np.ndarray, dt: float = 1.0) -> float:
    """Mean Euclidean error between finite-difference velocities of two ``(T, D)`` trajectories.

    Steps where either trajectory is NaN at either end are skipped; NaN when no step is left.
    """
    vp, vt = velocities(pred_positions, dt), velocities(true_positions, dt)
    if vp.shape != vt.shape:
        raise ValueError(f"trajectories differ in shape: {vp.shape} vs {vt.shape}")
    err = np.linalg.norm(vp - vt, axis=1)
    err = err[np.isfinite(err)]
    return float(err.mean()) if err.size else float("nan")


def project_points(
    points: np.ndarray, cam_position: Sequence[float], yaw: float, pitch: float, fov: float, width: int, height: int
) -> np.ndarray:
    """Pinhole projection of world points (ThreeDWorld axes) into ``(x, y)`` pixel coordinates (x right, y down).

    Args:
        points: ``(N, 3)`` or ``(3,)`` world positions in metres.
        cam_position: Camera eye position.
        yaw: Camera yaw in degrees (0 looks along +z, 90 along +x).
        pitch: Camera pitch in degrees (positive looks up).
        fov: Vertical field of view in degrees.
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        ``(N, 2)`` (or ``(2,)``) pixel coordinates; NaN for points behind the camera.
    """
    from tdwgym.sim.geometry import camera_forward, camera_right

    pts = np.asarray(points, dtype=np.float64)
    single = pts.ndim == 1
    pts = pts[None] if single else pts
    f = camera_forward(yaw, pitch)
    r = camera_right(yaw)
    u = np.cross(f, r)
    d = pts - np.asarray(cam_position, dtype=np.float64)
    x, y, z = d @ r, d @ u, d @ f
    focal = (height / 2.0) / math.tan(math.radians(fov) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        px = width / 2.0 + focal * x / z
        py = height / 2.0 - focal * y / z
    out = np.stack([px, py], axis=1)
    out[z <= 1e-6] = np.nan
    return out[0] if single else out


# --------------------------------------------------------------------------------------------- exploration


def floor_coverage(
    camera_poses: Iterable[tuple[Sequence[float], float, float]],
    room_size: tuple[float, float],
    fov: float,
    aspect: float = 1.0,
    cell: float = 0.25,
    max_distance: float = 10.0,
) -> float:
    """Fraction of the floor the camera has had in view (frustum test of floor cells; occlusion ignored).

    Args:
        camera_poses: ``(position, yaw, pitch)`` of every step.
        room_size: ``(width, length)`` of the room in metres (floor centred on the origin, x by z).
        fov: Vertical field of view in degrees.
        aspect: Image width / height.
        cell: Edge of the floor grid cells in metres.
        max_distance: Cells farther than this (along the view axis) do not count as seen.

    Returns:
        Seen cells / all cells, in [0, 1].
    """
    width, length = room_size
    nx, nz = max(1, int(round(width / cell))), max(1, int(round(length / cell)))
    xs = (np.arange(nx) + 0.5) * (width / nx) - width / 2
    zs = (np.arange(nz) + 0.5) * (length / nz) - length / 2
    gx, gz = np.meshgrid(xs, zs, indexing="ij")
    pts = np.stack([gx.ravel(), np.zeros(gx.size), gz.ravel()], axis=1)
    seen = np.zeros(len(pts), dtype=bool)
    h = 100
    w = max(1, int(round(h * aspect)))
    from tdwgym.sim.geometry import camera_forward

    for position, yaw, pitch in camera_poses:
        pix = project_points(pts, position, yaw, pitch, fov, w, h)
        depth = (pts - np.asarray(position, dtype=np.float64)) @ camera_forward(yaw, pitch)
        inside = (pix[:, 0] >= 0) & (pix[:, 0] <= w) & (pix[:, 1] >= 0) & (pix[:, 1] <= h) & (depth <= max_distance)
        seen |= np.nan_to_num(inside, nan=0).astype(bool)
    return float(seen.mean())


def exploration_counts(infos: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Counts over the step infos of one or more episodes.

    Returns:
        ``steps``, ``pushes_attempted``, ``pushes_hit``, ``pushes_moved`` (pushes that moved an object),
        ``objects_seen`` (distinct ids in ``visible_ids``), ``frames_with_object`` (fraction of steps with an
        object in view).
    """
    steps = attempted = hit = moved = with_object = 0
    seen: set[Any] = set()
    for info in infos:
        steps += 1
        push = info.get("push") or {}
        attempted += bool(push.get("attempted", False))
        hit += bool(push.get("hit", False))
        moved += bool(push.get("moved", False))
        ids = info.get("visible_ids") or []
        seen.update(ids)
        with_object += int(info.get("objects_in_view", len(ids)) or 0) > 0
    return {
        "steps": float(steps),
        "pushes_attempted": float(attempted),
        "pushes_hit": float(hit),
        "pushes_moved": float(moved),
        "objects_seen": float(len(seen)),
        "frames_with_object": with_object / steps if steps else 0.0,
    }
