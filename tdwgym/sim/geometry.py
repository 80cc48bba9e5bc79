"""Small rotation and camera helpers in ThreeDWorld's frame (numpy only), and how deep bodies interpenetrate
(:func:`overlaps`, pure Python: the scene check runs it on every scene).

ThreeDWorld (Unity) is left-handed with +x right, +y up and +z forward. Euler angles follow Unity: a rotation of
``z`` degrees about the z axis, then ``x`` about the x axis, then ``y`` about the y axis. Quaternions are stored
``(x, y, z, w)`` like TDW's ``Transforms`` output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


def quat_multiply(a: Sequence[float], b: Sequence[float]) -> Quat:
    """Hamilton product ``a * b`` of two ``(x, y, z, w)`` quaternions (``b`` is applied first)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def axis_angle_quat(axis: Sequence[float], degrees: float) -> Quat:
    """Quaternion for a rotation of ``degrees`` about a unit ``axis``."""
    half = math.radians(degrees) / 2.0
    s = math.sin(half)
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(half))


def euler_to_quat(euler_degrees: Sequence[float]) -> Quat:
    """Unity Euler angles (degrees; applied z, then x, then y) to an ``(x, y, z, w)`` quaternion."""
    ex, ey, ez = euler_degrees
    qx = axis_angle_quat((1.0, 0.0, 0.0), ex)
    qy = axis_angle_quat((0.0, 1.0, 0.0), ey)
    qz = axis_angle_quat((0.0, 0.0, 1.0), ez)
    return quat_multiply(qy, quat_multiply(qx, qz))


def quat_matrix(q: Sequence[float]) -> tuple[Vec3, Vec3, Vec3]:
    """The rotation matrix of an ``(x, y, z, w)`` quaternion as three rows of plain floats (``rotate(q, v)`` is the
    matrix times ``v``); pure Python, for checks that run on every scene."""
    x, y, z, w = (float(c) for c in q)
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
        (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
        (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
    )


def rotate(q: Sequence[float], v: Sequence[float]) -> np.ndarray:
    """Rotate vector ``v`` by quaternion ``q``."""
    x, y, z, w = q
    u = np.array([x, y, z], dtype=np.float64)
    vec = np.asarray(v, dtype=np.float64)
    return vec + 2.0 * np.cross(u, np.cross(u, vec) + w * vec)


def camera_forward(yaw: float, pitch: float) -> np.ndarray:
    """Unit view direction for a camera ``yaw`` (degrees about +y, 0 looks along +z, 90 along +x) and ``pitch``
    (degrees, positive looks up)."""
    y, p = math.radians(yaw), math.radians(pitch)
    return np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])


def camera_right(yaw: float) -> np.ndarray:
    """Unit horizontal vector to the camera's right for a given ``yaw`` (degrees)."""
    y = math.radians(yaw)
    return np.array([math.cos(y), 0.0, -math.sin(y)])


def intrinsics(width: int, height: int, fov: float) -> np.ndarray:
    """3x3 pinhole intrinsics for an image of ``width`` x ``height`` pixels and vertical field of view ``fov``."""
    fy = (height / 2.0) / math.tan(math.radians(fov) / 2.0)
    return np.array([[fy, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])


# -- how deep bodies interpenetrate -----------------------------------------------------------------------------------

Solid = tuple[Any, ...]
"""``("box", centre, axes, half_extents)`` (axes: three unit vectors) or ``("sphere", centre, radius)``."""


def _add(a: Sequence[float], b: Sequence[float], k: float = 1.0) -> Vec3:
    return (a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2])


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Sequence[float], b: Sequence[float]) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def solids_inside(shape: str, size: Sequence[float], centre: Sequence[float], axes: Sequence[Vec3]) -> list[Solid]:
    """Boxes and spheres inside a primitive ``shape`` (``"cube"``, ``"sphere"``, ``"cylinder"``, ``"cone"``,
    ``"capsule"``) of bounding extents ``size`` centred at ``centre`` with local axes ``axes``; round shapes stand
    along the local y axis, as the backends build them. Cubes and spheres are their own solid; the others get the
    largest box (and, for capsules, the cap spheres) inside them, so solids that interpenetrate prove the shapes do.
    """
    sx, sy, _ = size
    r = sx / 2
    if shape == "cube":
        return [("box", tuple(centre), axes, (sx / 2, sy / 2, size[2] / 2))]
    if shape == "sphere":
        return [("sphere", tuple(centre), r)]
    square = r / math.sqrt(2.0)  # half the side of the square inscribed in the circle of radius r
    if shape == "cylinder":
        return [("box", tuple(centre), axes, (square, sy / 2, square))]
    if shape == "cone":  # base at -sy/2: the largest box inside stands on the base, a third of the height tall
        low = _add(centre, axes[1], -sy / 3)
        return [("box", low, axes, (r * math.sqrt(2.0) / 3, sy / 6, r * math.sqrt(2.0) / 3))]
    if shape == "capsule":
        reach = sy / 2 - r
        out: list[Solid] = [("sphere", _add(centre, axes[1], k * reach), r) for k in (-1.0, 1.0)]
        if reach > 0:
            out.append(("box", tuple(centre), axes, (square, reach, square)))
        return out
    raise ValueError(f"no solids for shape {shape!r}")


def _body_solids(body: Any) -> list[Solid]:
    """The solids inside a scene object (every part of a compound) or, without a ``shape``, a static box."""
    m = quat_matrix(euler_to_quat(body.rotation))
    axes = tuple((m[0][i], m[1][i], m[2][i]) for i in range(3))
    parts = getattr(body, "parts", ())
    if not parts:
        return solids_inside(getattr(body, "shape", "cube"), body.size, body.position, axes)
    out = []
    for part in parts:
        at = body.position
        for k in range(3):
            at = _add(at, axes[k], part.offset[k])
        out += solids_inside(part.shape, part.size, at, axes)
    return out


def penetration(a: Solid, b: Solid) -> float:
    """How deep two solids interpenetrate, in metres (<= 0: they do not); exact for these convex solids."""
    if a[0] == "sphere" and b[0] == "sphere":
        return a[2] + b[2] - math.dist(a[1], b[1])
    if a[0] == "sphere":
        a, b = b, a
    if b[0] == "sphere":  # a box and a sphere
        _, centre, axes, half = a
        rel = _add(b[1], centre, -1.0)
        local = [_dot(rel, u) for u in axes]
        if all(abs(p) <= h for p, h in zip(local, half, strict=True)):
            return b[2] + min(h - abs(p) for p, h in zip(local, half, strict=True))
        outside = math.sqrt(sum(max(abs(p) - h, 0.0) ** 2 for p, h in zip(local, half, strict=True)))
        return b[2] - outside
    # two boxes: the separating axis test over the 15 candidate axes gives the penetration depth
    _, ca, ua, ha = a
    _, cb, ub, hb = b
    d = _add(cb, ca, -1.0)
    depth = math.inf
    for n in (*ua, *ub, *(_cross(u, v) for u in ua for v in ub)):
        length = math.sqrt(_dot(n, n))
        if length < 1e-9:
            continue
        n = (n[0] / length, n[1] / length, n[2] / length)
        ra = sum(h * abs(_dot(u, n)) for h, u in zip(ha, ua, strict=True))
        rb = sum(h * abs(_dot(u, n)) for h, u in zip(hb, ub, strict=True))
        overlap = ra + rb - abs(_dot(d, n))
        if overlap <= 0:
            return overlap
        depth = min(depth, overlap)
    return depth


def overlaps(
    movers: Sequence[Any], statics: Sequence[Any] = (), tolerance: float = 0.0
) -> list[tuple[float, Any, Any]]:
    """The pairs of bodies that interpenetrate deeper than ``tolerance`` metres, deepest first: each of ``movers``
    against every later one and against every one of ``statics`` (statics among themselves are not compared).

    Bodies are scene specs, read by attribute: ``size``, ``position``, ``rotation``, and for movers ``shape`` and
    ``parts`` (:class:`~tdwgym.sim.scene.ObjectSpec`); statics are boxes (:class:`~tdwgym.sim.scene.PropSpec`). The
    depth is measured on :func:`solids_inside` each body, so it never exceeds the true one: resting contact and
    round shapes whose bounding boxes overlap give no pair.

    Returns:
        ``(depth, a, b)`` per pair, ``a`` a mover.
    """
    bodies = [*movers, *statics]
    reach = [0.5 * math.sqrt(sum(s * s for s in b.size)) for b in bodies]
    solids: dict[int, list[Solid]] = {}
    found = []
    for i, a in enumerate(movers):
        for j in range(i + 1, len(bodies)):
            b = bodies[j]
            if math.dist(a.position, b.position) >= reach[i] + reach[j] + tolerance:
                continue
            for k in (i, j):
                if k not in solids:
                    solids[k] = _body_solids(bodies[k])
            depth = max(penetration(s, t) for s in solids[i] for t in solids[j])
            if depth > tolerance:
                found.append((depth, a, b))
    return sorted(found, key=lambda f: -f[0])
