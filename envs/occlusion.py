"""TDWRoom-Occlusion: objects roll or slide behind an occluder panel."""

from __future__ import annotations

import math

import numpy as np
from tdwgym.envs.base import TDWRoomEnv, sample_until

from tdwgym.geometry import camera_forward, camera_right
from tdwgym.scene import Camera, ObjectSpec, PropSpec, Room, SceneSpec

_ROLLING_SHAPES = ("sphere", "cylinder", "capsule")
_MAX_RADIUS = 0.5 * 0.45 * 1.8  # footprint radius of the largest object drawn


class OcclusionEnv(TDWRoomEnv):
    """Objects roll or slide across the floor and pass behind an occluder panel.

    ## Description
    A bare room holds one occluder panel standing on the floor and 1 to 3 primitive objects (cube, sphere,
    cylinder, cone, capsule). Every object starts to one side of the panel, behind it as seen from the camera, and
    moves across so that its path passes behind the panel: the scene probes object permanence and continuity. The
    agent moves the observer camera and can push objects. The layout, colours, sizes, masses and speeds are drawn
    at every reset from the environment's seeded generator.

    ## Action Space
    ``action_type="discrete"`` (default): ``Discrete(10)``: 0 no-op, 1 forward, 2 back, 3 strafe left, 4 strafe
    right, 5 turn left, 6 turn right, 7 look up, 8 look down, 9 push. ``action_type="continuous"``:
    ``Box([-1, -1, -1, -1, 0], [1, 1, 1, 1, 1], float32)``: forward, strafe (+ right), turn (+ right), pitch (+ up),
    push strength. Moves are horizontal at the camera's height; the camera cannot leave the room or enter an object
    (a move that would is refused). A push casts a ray from the camera centre and, if it meets a movable object
    within ``push_reach`` metres, applies an impulse of ``push_impulse * strength`` N*s along the ray at the hit
    point.

    ## Observation Space
    ``obs_mode="rgb"``: ``Box(0, 255, (H, W, 3), uint8)``, H = W = 64 by default (``resolution``).
    ``obs_mode="rgbd"``: ``Dict(rgb, depth)``, depth ``(H, W)`` float32 in metres along the view axis.
    ``obs_mode="rgb_seg"``: ``Dict(rgb, segmentation)``, segmentation ``(H, W)`` int32 of scene ids (0 is the
    room).

    ## Rewards
    Always 0.0: the environment is self-supervised. Curiosity rewards come from ``tdwgym.agents``.

    ## Starting State
    Room 7 to 10 m on a side. The camera stands 1.0 to 1.4 m high, 2.2 to 3.2 m in front of the occluder and looks at
    it. The occluder is 1.0 to 1.8 m wide and 0.6 to 1.0 m high. Objects are 0.2 to 0.45 m in size, 0.3 to 2 kg, and
    start 0.3 to 1.8 m behind the panel and 0.5 to 1.6 m beyond its edge, moving across at 0.8 to 2.5 m/s; round
    shapes roll (spin matched to speed), cubes and cones slide on low friction.

    ## Episode End
    Never terminated. Truncated after 300 steps (10 simulated seconds) by ``max_episode_steps``.

    ``info`` holds ``objects`` (id -> position, rotation (x, y, z, w), velocity, angular_velocity),
    ``camera`` (position, yaw, pitch), ``contacts`` (a, b, impulse, point, normal), ``push`` (attempted, hit,
    object_id, moved), ``objects_in_view`` and ``sim_time``.

    ## Arguments
    ``gym.make("TDWRoom-Occlusion-v0", render_mode=None, resolution=64, obs_mode="rgb", action_type="discrete",
    backend=None, backend_kwargs=None, render_size=256, substeps=8, move_step=0.15, turn_step=10.0, pitch_step=5.0,
    pitch_limit=60.0, push_reach=2.5, push_impulse=3.0, num_objects=(1, 3))``. ``num_objects`` is an inclusive
    (min, max) range. See :class:`tdwgym.envs.base.TDWRoomEnv` for the shared arguments.

    ## Version History
    * v0: Initial version.
    """

    def __init__(self, *, num_objects: int | tuple[int, int] = (1, 3), **kwargs) -> None:
        lo, hi = (num_objects, num_objects) if isinstance(num_objects, int) else tuple(num_objects)
        if not 1 <= lo <= hi <= 3:
            raise ValueError(f"num_objects must be an int or (min, max) range within 1..3, got {num_objects!r}")
        self.num_objects = (int(lo), int(hi))
        super().__init__(**kwargs)

    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        room = Room(
            width=float(rng.uniform(7.0, 10.0)), length=float(rng.uniform(7.0, 10.0)),
            floor_color=tuple(rng.uniform(0.35, 0.65, 3)), wall_color=tuple(rng.uniform(0.6, 0.9, 3)),
        )

        def draw_view(r: np.random.Generator) -> tuple[np.ndarray, float, float, float]:
            occluder_at = np.array([r.uniform(-1.0, 1.0), 0.0, r.uniform(-1.0, 1.0)])
            yaw, dist, width = float(r.uniform(0.0, 360.0)), float(r.uniform(2.2, 3.2)), float(r.uniform(1.0, 1.8))
            cam = occluder_at - camera_forward(yaw, 0.0) * dist
            cam[1] = r.uniform(1.0, 1.4)
            return cam, yaw, dist, width

        def view_fits(view: tuple[np.ndarray, float, float, float]) -> bool:
            cam, yaw, dist, width = view
            # every start drawn below must fit: the widest lateral offset and depth, and the largest object
            fwd, side = camera_forward(yaw, 0.0), camera_right(yaw) * (width / 2 + 1.6)
            corners = [cam + fwd * (dist + d) + s for d in (0.3, 1.8) for s in (side, -side)]
            return room.contains(cam[0], cam[2], margin=0.5) and all(
                room.contains(p[0], p[2], margin=_MAX_RADIUS + 0.1) for p in corners)

        cam_pos, yaw, dist, width = sample_until(rng, draw_view, view_fits, attempts=1000,
                                                 what="camera and occluder layout")
        fwd, right = camera_forward(yaw, 0.0), camera_right(yaw)
        height = float(rng.uniform(0.6, 1.0))
        centre = cam_pos + fwd * dist
        n = int(rng.integers(self.num_objects[0], self.num_objects[1] + 1))
        occluder = PropSpec(
            id=n + 1, size=(width, height, 0.05), position=(centre[0], height / 2, centre[2]),
            rotation=(0.0, yaw, 0.0), color=tuple(rng.uniform(0.1, 0.9, 3)), name="occluder",
        )

        shapes = [str(rng.choice(["cube", "sphere", "cylinder", "cone", "capsule"])) for _ in range(n)]
        sizes = []
        for shape in shapes:
            diameter = float(rng.uniform(0.2, 0.45))
            tall = float(rng.uniform(1.0, 1.8)) * diameter
            sizes.append({"sphere": (diameter,) * 3, "cube": (diameter, float(rng.uniform(0.2, 0.45)), diameter)}
                         .get(shape, (diameter, tall, diameter)))
        footprints = [0.5 * max(size) for size in sizes]  # round shapes lie down, so their height becomes length

        def draw_starts(r: np.random.Generator) -> list[tuple[np.ndarray, float]]:
            starts = []
            for _ in range(n):
                side = 1.0 if r.random() < 0.5 else -1.0
                lateral = side * (width / 2 + r.uniform(0.5, 1.6))
                starts.append((centre + fwd * r.uniform(0.3, 1.8) + right * lateral, side))
            return starts

        def starts_fit(starts: list[tuple[np.ndarray, float]]) -> bool:
            return all(
                math.dist(starts[i][0][::2], starts[j][0][::2]) > footprints[i] + footprints[j] + 0.05
                for i in range(n) for j in range(i + 1, n)
            )

        starts = sample_until(rng, draw_starts, starts_fit, attempts=1000,
                              what=f"non-overlapping starts of {n} objects")
        objects: list[ObjectSpec] = []
        for oid, shape, size, (start, side) in zip(range(1, n + 1), shapes, sizes, starts, strict=True):
            speed = float(rng.uniform(0.8, 2.5))
            velocity = -side * speed * right
            if shape in _ROLLING_SHAPES:
                rotation = (0.0, 0.0, 0.0) if shape == "sphere" else (90.0, yaw, 0.0)  # lie along fwd, roll across
                radius = size[0] / 2
                spin = np.cross(velocity, [0.0, 1.0, 0.0]) / radius  # rolling without slipping: v = w x (-r up)
                friction = float(rng.uniform(0.3, 0.6))
                y = radius
            else:
                rotation, spin, friction = (0.0, yaw, 0.0), np.zeros(3), float(rng.uniform(0.02, 0.08))
                y = size[1] / 2
            objects.append(ObjectSpec(
                id=oid, shape=shape, size=size, mass=float(rng.uniform(0.3, 2.0)),
                color=tuple(rng.uniform(0.05, 0.95, 3)), friction=friction,
                restitution=float(rng.uniform(0.1, 0.6)), position=(start[0], y + 0.002, start[2]),
                rotation=rotation, velocity=tuple(velocity), angular_velocity=tuple(spin),
            ))

        pitch = -math.degrees(math.atan2(cam_pos[1] - height / 2, dist))
        camera = Camera(position=tuple(cam_pos), yaw=yaw, pitch=pitch)
        return SceneSpec(room=room, objects=tuple(objects), props=(occluder,), camera=camera,
                         labels={"scenario": "occlusion", "occluder_id": occluder.id})
