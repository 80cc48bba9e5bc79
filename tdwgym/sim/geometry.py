"""Small rotation and camera helpers in ThreeDWorld's frame (numpy only).

ThreeDWorld (Unity) is left-handed with +x right, +y up and +z forward. Euler angles follow Unity: a rotation of
``z`` degrees about the z axis, then ``x`` about the x axis, then ``y`` about the y axis. Quaternions are stored
``(x, y, z, w)`` like TDW's ``Transforms`` output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
