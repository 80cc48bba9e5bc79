"""Object slots read from the simulator's render passes: the input of the object-centric world model.

The model reads object identities from the segmentation pass, as PLATO (Piloto et al. 2022) reads object masks and
Physion's state-based models read physical state: it is told which pixels belong to which object, not what the
objects are or where they are in the world. :func:`object_features` turns one frame's RGB, segmentation and depth
into a fixed table with one row (slot) per object id: slot ``s`` holds object id ``s + 1`` (ids are small integers
in every tdwgym scene; a new object, such as the one an ``appear`` event adds, has a new id and so a fresh slot; ids
beyond ``max_slots`` are left out). Row layout: :data:`FEATURES`.

Image coordinates are normalised to [-1, 1] (x right, y down); 3D positions are in camera coordinates in metres (X
right, Y up, Z along the view axis), back-projected from the depth pass with the camera's pinhole intrinsics
(:func:`tdwgym.sim.geometry.intrinsics`).
"""

from __future__ import annotations

import numpy as np

from tdwgym.sim.geometry import intrinsics
from tdwgym.sim.scene import DEFAULT_FOV

FEATURES: tuple[str, ...] = (
    "visible",
    "cx",
    "cy",
    "w",
    "h",
    "log_area",
    "fill",
    "r",
    "g",
    "b",
    "x",
    "y",
    "z",
    "clip_left",
    "clip_right",
    "clip_top",
    "clip_bottom",
    "box_x",
    "box_y",
)
"""Columns of a slot row:

* ``visible``: 1 when the object has at least one pixel, else 0 (and every other column 0).
* ``cx``, ``cy``: centroid of its pixels; ``w``, ``h``: width and height of its bounding box (image units: the image
  is 2 wide); ``box_x``, ``box_y``: centre of the box; ``log_area``: log of its pixel count over the image's;
  ``fill``: pixel count over the box's area; ``r``, ``g``, ``b``: mean colour in [0, 1].
* ``x``, ``y``, ``z``: mean of its pixels back-projected with their depth (the centroid of the visible surface), in
  metres; 0 without a depth pass.
* ``clip_left`` ... ``clip_bottom``: the fraction of its boundary on that side that borders the image edge or a
  pixel of another object nearer to the camera: on that side the object may go on behind something, so its box
  edge there is not its own (a box edge with 0 is exact).
"""

NUM_FEATURES = len(FEATURES)
VISIBLE, CX, CY, W, H, LOG_AREA, FILL, R, G, B, X, Y, Z, CLIP_L, CLIP_R, CLIP_T, CLIP_B, BOX_X, BOX_Y = range(
    NUM_FEATURES
)
MAX_SLOTS = 24
"""Default number of slots (object ids 1 .. 24; the scenes of every scenario and level use fewer)."""


def object_features(
    rgb: np.ndarray,
    segmentation: np.ndarray,
    depth: np.ndarray | None = None,
    fov: float = DEFAULT_FOV,
    max_slots: int = MAX_SLOTS,
) -> np.ndarray:
    """The slot table of one frame.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        segmentation: ``(H, W)`` or ``(H, W, 1)`` integer object ids (0 is the room: no slot).
        depth: ``(H, W)`` or ``(H, W, 1)`` metres along the view axis, or None (3D columns 0, and a nearer object is
            then any other object).
        fov: The camera's vertical field of view in degrees.
        max_slots: Slots in the table; object ids above it are left out.

    Returns:
        ``(max_slots, len(FEATURES))`` float32; row ``s`` describes object id ``s + 1`` (:data:`FEATURES`).

    Raises:
        ValueError: When the passes' shapes do not match.
    """
    seg = np.asarray(segmentation)
    if seg.ndim == 3:
        seg = seg[..., 0]
    hgt, wid = seg.shape
    if rgb.shape[:2] != (hgt, wid) or (depth is not None and np.asarray(depth).shape[:2] != (hgt, wid)):
        raise ValueError(
            f"render passes of different sizes: rgb {rgb.shape}, segmentation {np.shape(segmentation)}, "
            f"depth {None if depth is None else np.shape(depth)}"
        )
    out = np.zeros((max_slots, NUM_FEATURES), np.float32)
    ids = seg.astype(np.int64).ravel()
    ids = np.where((ids > 0) & (ids <= max_slots), ids, 0)
    n = max_slots + 1
    count = np.bincount(ids, minlength=n).astype(np.float64)
    present = np.flatnonzero(count[1:]) + 1
    if len(present) == 0:
        return out
    ys, xs = np.divmod(np.arange(hgt * wid), wid)
    col = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    safe = np.maximum(count, 1.0)
    rows = present - 1
    out[rows, VISIBLE] = 1.0
    out[rows, CX] = (np.bincount(ids, xs + 0.5, n)[present] / safe[present]) / wid * 2 - 1
    out[rows, CY] = (np.bincount(ids, ys + 0.5, n)[present] / safe[present]) / hgt * 2 - 1
    x0 = np.full(n, wid, np.int64)
    x1 = np.full(n, -1, np.int64)
    y0 = np.full(n, hgt, np.int64)
    y1 = np.full(n, -1, np.int64)
    np.minimum.at(x0, ids, xs)
    np.maximum.at(x1, ids, xs)
    np.minimum.at(y0, ids, ys)
    np.maximum.at(y1, ids, ys)
    bw, bh = (x1 - x0 + 1)[present], (y1 - y0 + 1)[present]
    out[rows, W] = bw / wid * 2
    out[rows, H] = bh / hgt * 2
    out[rows, BOX_X] = (x0[present] + x1[present] + 1) / wid - 1
    out[rows, BOX_Y] = (y0[present] + y1[present] + 1) / hgt - 1
    out[rows, LOG_AREA] = np.log(count[present] / (hgt * wid))
    out[rows, FILL] = count[present] / (bw * bh)
    for c in range(3):
        out[rows, R + c] = np.bincount(ids, col[:, c], n)[present] / safe[present]
    z = None
    if depth is not None:
        z = np.asarray(depth, dtype=np.float64).reshape(hgt, wid)
        k = intrinsics(wid, hgt, fov)
        zf = z.ravel()
        px = (xs + 0.5 - k[0, 2]) / k[0, 0] * zf
        py = -(ys + 0.5 - k[1, 2]) / k[1, 1] * zf
        out[rows, X] = np.bincount(ids, px, n)[present] / safe[present]
        out[rows, Y] = np.bincount(ids, py, n)[present] / safe[present]
        out[rows, Z] = np.bincount(ids, zf, n)[present] / safe[present]
    # clip flags: boundary pixels whose outer neighbour on a side is the image edge or a nearer object
    grid = ids.reshape(hgt, wid)
    raw = seg.astype(np.int64)
    for column, (dy, dx) in zip((CLIP_L, CLIP_R, CLIP_T, CLIP_B), ((0, -1), (0, 1), (-1, 0), (1, 0)), strict=True):
        nb = _shifted(np.pad(raw, 1, constant_values=-1), dy, dx, hgt, wid)
        edge = (grid > 0) & (nb != raw)
        nearer = nb > 0
        if z is not None:
            nearer &= _shifted(np.pad(z, 1, mode="edge"), dy, dx, hgt, wid) < z
        occluded = edge & ((nb == -1) | nearer)
        e = np.bincount(grid[edge], minlength=n).astype(np.float64)
        o = np.bincount(grid[occluded], minlength=n).astype(np.float64)
        out[rows, column] = o[present] / np.maximum(e[present], 1.0)
    return out


def _shifted(padded: np.ndarray, dy: int, dx: int, hgt: int, wid: int) -> np.ndarray:
    """Each pixel's neighbour at ``(dy, dx)`` in an array padded by one on every side."""
    return padded[1 + dy : 1 + dy + hgt, 1 + dx : 1 + dx + wid]


def clip_features(
    rgb: np.ndarray,
    segmentation: np.ndarray,
    depth: np.ndarray | None = None,
    fov: float = DEFAULT_FOV,
    max_slots: int = MAX_SLOTS,
) -> np.ndarray:
    """:func:`object_features` of every frame of a clip: ``(T, H, W, 3)``, ``(T, H, W[, 1])``, ``(T, H, W[, 1])``
    or None -> ``(T, max_slots, len(FEATURES))`` float32."""
    return np.stack(
        [
            object_features(rgb[t], segmentation[t], None if depth is None else depth[t], fov, max_slots)
            for t in range(len(rgb))
        ]
    )
