"""What makes VoE twins fair: the rules :mod:`tdwgym.envs.twins` applies to the clips and scenes it makes, split out
of it (they read clips, segmentation and the simulation's positions; they render nothing).

An item counts only when an observer that sees only its clips could tell its possible clips from its impossible ones
by the probed property alone: the twins show their difference on enough pixels for enough frames
(:func:`frames_showing_difference`), the probed object was seen before the event (:func:`seen_before`) and comes out
from behind the occluder after it (:func:`comes_out`), no other object's path changes with the probed property
(:func:`others_unchanged`), colliding twins move alike (:func:`matched_motion`), and a slider behind an occluder
keeps its speed (:func:`slide_friction`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tdwgym.envs.common import ROUND_SHAPES
from tdwgym.sim.scene import ObjectSpec, SceneSpec

VISIBLE_MAX_EXTRA = 120
"""Frames ``make_pairs(visible=True)`` may add to a pair whose twins do not differ yet (e.g. an object that stays
hidden behind the occluder) before it drops the pair."""

VISIBLE_FRAMES = 8
"""Frames from the event on in which the twins must show their difference (``visible=True``): an object where the
other clip has none or another one, or the event's object in another colour, on at least :func:`visible_pixels`
pixels. A difference of a pixel or two, or of shading only (a hidden object's shadow), tells no observer anything,
and an object that re-emerges in the last frame of the clip hardly more."""


def visible_pixels(height: int, width: int) -> int:
    """Pixels a difference must cover to count as seen: 4 at 64x64, scaled with the image's area (at least 1)."""
    return max(1, round(4 * height * width / 4096))


def frames_showing_difference(
    rgb: tuple[np.ndarray, np.ndarray], seg: tuple[np.ndarray, np.ndarray], frame: int, targets: Any
) -> int:
    """Frames from ``frame`` on in which two clips (``(T, H, W, 3)`` RGB, ``(T, H, W)`` segmentation) visibly differ
    on the probed objects ``targets`` (ids: the event's object, and the object an ``appear`` adds): on
    :func:`visible_pixels` pixels or more, one clip shows a target where the other shows something else, or both
    show it in colours more than 24/255 apart. Other objects (whose paths may differ a frame where a target is
    missing) and what the room shows (shadows, shading) do not count."""
    sa, sb = seg[0][frame:], seg[1][frame:]
    if len(sa) == 0:
        return 0
    ids = np.atleast_1d(np.asarray(targets, dtype=sa.dtype))
    ta, tb = np.isin(sa, ids), np.isin(sb, ids)
    moved = (sa != sb) & (ta | tb)
    shade = np.abs(rgb[0][frame:].astype(np.int16) - rgb[1][frame:].astype(np.int16)).max(-1) > 24
    n = (moved | ((sa == sb) & ta & shade)).reshape(len(sa), -1).sum(1)
    return int((n >= visible_pixels(*sa.shape[1:])).sum())


SEEN_FRAMES = 8
"""Frames before the event in which the event's object must be in view (``visible=True``): an object first seen
after the event comes from nowhere as far as any observer can tell, and one glimpsed in a frame or two has no
motion to extrapolate."""


def seen_before(seg: np.ndarray, oid: int, frame: int) -> bool:
    """Whether object ``oid`` covers :func:`visible_pixels` pixels of segmentation ``seg`` in :data:`SEEN_FRAMES`
    frames before ``frame``."""
    if frame <= 0:
        return False
    n = (seg[:frame] == oid).reshape(frame, -1).sum(1)
    return int((n >= visible_pixels(*seg.shape[1:])).sum()) >= SEEN_FRAMES


CLEAR_FRAMES = 4
"""Frames after the event (the splice) in which a probed object must be seen clear of the occluder in every possible
clip that holds it (``visible=True``; :func:`comes_out`)."""


def comes_out(seg: np.ndarray, oid: int, frame: int, occluder: int | None) -> bool:
    """Whether object ``oid`` comes out from behind the ``occluder`` after ``frame`` in segmentation ``seg``
    (``(T, H, W)``): in :data:`CLEAR_FRAMES` frames it covers :func:`visible_pixels` pixels or more, none of them
    next to (or on) a pixel of the occluder. True when there is no occluder.

    A possible clip whose object stays behind the occluder to the end, or peeks out from behind its edge only as
    the clip ends, looks like a vanish to any observer that sees only the clip (and a shape cannot be judged from a
    sliver): its twins are not fair."""
    if occluder is None:
        return True
    s = seg[frame:]
    if len(s) == 0:
        return False
    mask = s == oid
    near = np.pad(s == occluder, ((0, 0), (1, 1), (1, 1)))
    touch = near[:, :-2, 1:-1] | near[:, 2:, 1:-1] | near[:, 1:-1, :-2] | near[:, 1:-1, 2:] | near[:, 1:-1, 1:-1]
    n = mask.reshape(len(s), -1).sum(1)
    clear = (n >= visible_pixels(*s.shape[1:])) & ~(mask & touch).reshape(len(s), -1).any(1)
    return int(clear.sum()) >= CLEAR_FRAMES


OTHERS_TOLERANCE = 0.05
"""Metres an object a quadruplet does not probe may stray from its path in the other possible clip (``visible=True``;
:func:`others_unchanged`)."""


def others_unchanged(positions: tuple[list[dict[int, Any]], list[dict[int, Any]]], probed: Any) -> bool:
    """Whether every object both clips hold, other than the ``probed`` ids, takes the same path in both: per frame
    (``positions``: per clip, per frame, id -> position in metres, from the simulation), its horizontal distance to
    itself in the other clip stays within :data:`OTHERS_TOLERANCE`.

    The two possible clips of a quadruplet must differ by the probed property alone. Where the change knocks into
    another object (``appear``'s added object on its track beside the target meets a third object or a distractor
    behind the occluder; a vanished object no longer does), that object comes out late, early or not at all in one
    possible clip, which to an observer is as surprising as the violation, and the impossible clips, spliced from
    both, show it jump."""
    skip = {int(i) for i in np.atleast_1d(probed)}
    for pa, pb in zip(positions[0], positions[1], strict=False):
        for oid in (set(pa) & set(pb)) - skip:
            d = np.asarray(pa[oid], float) - np.asarray(pb[oid], float)
            if math.hypot(float(d[0]), float(d[2])) > OTHERS_TOLERANCE:
                return False
    return True


SLIDE_DISTANCE = 12.0
"""Metres the probed object of twins behind an occluder slides before friction stops it, at least
(:func:`slide_far`)."""


def slide_friction(obj: ObjectSpec, distance: float = SLIDE_DISTANCE) -> float | None:
    """The friction of ``obj`` in twins behind an occluder: its own if it rolls (a round shape), has none set or is
    at rest, else at most ``v^2 / (2 g d)`` at its starting speed ``v``, so that it slides ``distance`` metres ``d``
    before it stops (at :data:`SLIDE_DISTANCE` it keeps at least 85 % of its speed over the 3 metres it may travel
    behind and past an occluder: sqrt(1 - 3/12)). Occlusion's ``slide_distance`` gives every slider of a scene the
    same."""
    v2 = float(obj.velocity[0]) ** 2 + float(obj.velocity[2]) ** 2
    if obj.shape in ROUND_SHAPES or obj.friction is None or v2 == 0:
        return None if obj.friction is None else float(obj.friction)
    return min(float(obj.friction), v2 / (2 * 9.81 * distance))


def slide_far(scene: SceneSpec, oid: int) -> SceneSpec:
    """``scene`` with object ``oid`` on :func:`slide_friction`.

    Occlusion gives its sliders friction to stop about 0.8 m past the panel's middle, so a slow one stops behind
    the panel or comes out late, nearly at rest, and a fast one may lose a third of its speed while hidden: in a
    possible clip it then looks like a vanish (or a re-emergence no one could time from what was seen), and no
    observer that sees only the clip can tell it from its impossible twin. A rolling ball does not slow down."""
    obj = scene.object(oid)
    new = dataclasses.replace(obj, friction=slide_friction(obj))
    return dataclasses.replace(scene, objects=tuple(new if o.id == oid else o for o in scene.objects))


def matched_motion(scene: SceneSpec) -> SceneSpec:
    """``scene`` with its ``pass_through_pair`` made into one elastic body launched head-on: the same shape (a
    round one becomes a cube, since a rolling ball keeps its spin through a bounce), size and mass, restitution 1,
    little friction, equal and opposite velocities from equal distances to the meeting point, each its own colour.
    An elastic equal-mass bounce swaps the velocities, so the bounce and the pass-through move the same amount:
    only which colour goes where differs, and a score that counts moving pixels cannot tell the twins apart."""
    a, b = (scene.object(i) for i in scene.labels["pass_through_pair"])
    meet = np.array(scene.labels["meeting_point"], dtype=np.float64)
    shape = "cube" if a.shape in ("sphere", "cylinder", "capsule", "cone") or a.parts else a.shape
    side = max(a.size) if shape != a.shape else None
    size = (side, side, side) if side is not None else a.size
    y = size[1] / 2 + 0.002
    common = {"shape": shape, "size": size, "parts": (), "mass": a.mass, "restitution": 1.0, "friction": 0.02}
    common |= {"angular_velocity": (0.0, 0.0, 0.0), "rotation": (0.0, 0.0, 0.0)}
    pa = np.array(a.position, dtype=np.float64)
    pb = 2 * meet - pa
    new_a = dataclasses.replace(a, **common, position=(float(pa[0]), y, float(pa[2])))
    new_b = dataclasses.replace(
        b, **common, position=(float(pb[0]), y, float(pb[2])), velocity=tuple(-float(v) for v in a.velocity)
    )
    objects = tuple(new_a if o.id == a.id else new_b if o.id == b.id else o for o in scene.objects)
    return dataclasses.replace(scene, objects=objects, labels={**scene.labels, "matched_motion": True})
