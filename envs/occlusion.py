"""TDWRoom-Occlusion: objects roll or slide behind an occluder panel."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tdwgym.envs.base import TDWRoomEnv
from tdwgym.envs.common import (
    ROUND_SHAPES,
    camera_height,
    clutter_props,
    distractors,
    footprint,
    light_for_level,
    make_object,
    room_for_level,
    shape_size,
    sight_line,
)
from tdwgym.envs.factors import (
    Factor,
    FactorSpace,
    color_factor,
    mass_factor,
    shape_color_combinations,
    shape_factor,
)
from tdwgym.envs.impossible import HIDDEN_KINDS
from tdwgym.envs.sampling import sample_until
from tdwgym.envs.twin_rules import slide_friction
from tdwgym.sim.geometry import camera_forward, camera_right
from tdwgym.sim.scene import Camera, ObjectSpec, PropSpec, SceneSpec


class OcclusionEnv(TDWRoomEnv):
    """Objects roll or slide across the floor and pass behind an occluder panel.

    ## Description
    A room holds one occluder panel standing on the floor and 1 to 3 objects (cube, sphere, cylinder, cone,
    capsule; compound L-blocks and dumbbells at level 3). Every object starts to one side of the panel, behind it
    as seen from the camera, and moves across so that its path passes behind the panel: the scene probes object
    permanence and continuity. The agent moves the observer camera and can push objects. The layout, colours,
    sizes, masses and speeds are drawn at every reset from the environment's seeded generator.

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
    ``obs_mode="rgbd"``: ``Dict(rgb, depth)``, depth ``(H, W, 1)`` float32 in metres along the view axis, in
    ``[0, DEPTH_MAX]``.
    ``obs_mode="rgb_seg"``: ``Dict(rgb, segmentation)``, segmentation ``(H, W, 1)`` int32 of scene ids (0 is the
    room).

    ## Rewards
    0.0: the environment is self-supervised. Curiosity rewards come from ``tdwgym.agents``. With
    ``push_reward=r``, r on a step whose push moved an object.

    ## Starting State
    The camera stands 1.0 to 1.4 m high (0.7 to 2.0 m at level 3), 2.2 to 3.2 m in front of the occluder, and looks
    at it. The occluder is 1.0 to 1.8 m wide and tall enough to hide every object passing behind it from the
    starting camera. Objects start 0.3 m or more behind the panel (up to 1.0, 1.4 or 1.8 m for 1, 2 or 3 objects)
    and 0.3 to 1.0 m beyond its edge, and move across behind it; round shapes roll (spin matched to speed), other
    shapes slide on friction low enough to get across. Sizes, speeds, masses, shapes and colours come from the
    factors below and the curriculum ``level``:

    * level 0: bare 8 x 8 m room, one cube or sphere in one of four plain colours.
    * level 1: room size and colours vary; 1 or 2 objects; all primitive shapes, eight colours.
    * level 2: 2 or 3 objects moving at once; mass, friction and restitution vary; patterned floor and walls;
      1 or 2 distractor objects at rest.
    * level 3: as level 2 plus clutter along the walls, varied lighting and camera height, compound shapes.

    Factors: :attr:`FACTORS` (``split`` draws them, labels record them; bands and held-out values are tabled in
    docs/scenarios.md, which a test keeps equal to the code).

    ## Episode End
    Never terminated. Truncated after 300 steps (10 simulated seconds) by ``max_episode_steps``.

    ``info`` holds ``objects`` (id -> position, rotation (x, y, z, w), velocity, angular_velocity),
    ``camera`` (position, yaw, pitch), ``contacts`` (a, b, impulse, point, normal), ``push`` (attempted, hit,
    object_id, moved), ``objects_in_view`` and ``sim_time``; the reset ``info`` also holds ``labels`` (scenario,
    level, split, factors, ood_factors, factor_bands, impossible, event_frame, occluder_id, ...) and every step's
    ``info["events"]`` lists the scripted edits applied in it.

    ## Arguments
    ``gym.make("TDWRoom-Occlusion-v0", render_mode=None, resolution=64, obs_mode="rgb", action_type="discrete",
    backend=None, backend_kwargs=None, render_size=256, substeps=8, move_step=0.15, turn_step=10.0, pitch_step=5.0,
    pitch_limit=60.0, push_reach=2.5, push_impulse=3.0, level=0, split="train", impossible=None, extra_passes=(),
    ceiling=True, num_objects=None, slide_distance=None)``. ``num_objects`` is an int or inclusive (min, max) range
    within 1..3 (default: set by the level). ``slide_distance`` (metres, > 0): moving sliders get friction low enough
    to slide at least that far before they stop, ``v^2 / (2 g d)`` at their speed ``v`` (capped by the level's own),
    as the probed object of the impossible twins does (12 m: it keeps 85 % of its speed across the panel); None (the
    default) gives them friction that stops a slow one about 0.8 m past the panel's middle. ``impossible`` is one of
    "vanish", "appear", "teleport", "shape_change", "color_change": object 1 vanishes, gains a twin, jumps ahead,
    turns into a cube or sphere, or changes colour while hidden behind the occluder. See
    :class:`tdwgym.envs.base.TDWRoomEnv` for the shared arguments.

    ## Version History
    * v0: Initial version (levels, splits and impossible events added before the first release).
    """

    SCENARIO = "occlusion"
    FACTORS = FactorSpace(
        factors=(
            Factor(
                "speed",
                "m/s",
                train=(0.8, 2.5),
                gap=(1.5, 1.7),
                low=(0.3, 0.6),
                high=(2.8, 3.5),
                doc="speed across the floor",
            ),
            Factor(
                "size",
                "m",
                train=(0.2, 0.4),
                gap=(0.28, 0.31),
                low=(0.12, 0.17),
                high=(0.44, 0.5),
                doc="footprint diameter",
            ),
            mass_factor(),
            shape_factor(),
            color_factor(),
        ),
        combinations=shape_color_combinations(),
    )
    SUPPORTED_IMPOSSIBLE = HIDDEN_KINDS

    def __init__(
        self, *, num_objects: int | tuple[int, int] | None = None, slide_distance: float | None = None, **kwargs
    ) -> None:
        if slide_distance is not None:
            number = isinstance(slide_distance, int | float) and not isinstance(slide_distance, bool)
            if not (number and math.isfinite(slide_distance) and slide_distance > 0):
                raise ValueError(f"slide_distance must be a number of metres > 0 or None, got {slide_distance!r}")
            slide_distance = float(slide_distance)
        self.slide_distance = slide_distance
        if num_objects is not None:
            lo, hi = (num_objects, num_objects) if isinstance(num_objects, int) else tuple(num_objects)
            if not 1 <= lo <= hi <= 3:
                raise ValueError(f"num_objects must be an int or (min, max) range within 1..3, got {num_objects!r}")
            num_objects = (int(lo), int(hi))
        self.num_objects = num_objects
        super().__init__(**kwargs)

    def sample_scene(self, seed: int | None = None, rng: np.random.Generator | None = None) -> SceneSpec:
        """As :meth:`TDWRoomEnv.sample_scene`; with ``slide_distance``, the drawn scene's moving sliders then get
        friction ``min(own, v^2 / (2 g d))`` (:func:`~tdwgym.envs.twin_rules.slide_friction`: rolling shapes and
        objects at rest keep theirs). The split is decided
        on the scene as drawn, so a seed's scene is in the same split (train, test_id) with or without the option, and
        no test_id layout enters training through it."""
        scene = super().sample_scene(seed=seed, rng=rng)
        if self.slide_distance is None:
            return scene
        objects = tuple(
            dataclasses.replace(obj, friction=slide_friction(obj, self.slide_distance)) for obj in scene.objects
        )
        return dataclasses.replace(scene, objects=objects)

    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        level, plan = self.level, self.plan
        assert plan is not None
        room = room_for_level(rng, level)
        lo, hi = self.num_objects or ((1, 1), (1, 2), (2, 3), (2, 3))[level]
        n = int(rng.integers(lo, hi + 1))
        kinds = [plan.draw_pair("shape", "color", rng) for _ in range(n)]
        diameters = [float(plan.draw("size", rng)) for _ in range(n)]
        speeds = [float(plan.draw("speed", rng)) for _ in range(n)]
        masses = [float(plan.draw("mass", rng)) for _ in range(n)]
        sizes = [shape_size(shape, d, rng, level) for (shape, _), d in zip(kinds, diameters, strict=True)]
        feet = [footprint(shape, size) for (shape, _), size in zip(kinds, sizes, strict=True)]
        widest = max(feet)
        eye_height = camera_height(rng, level)

        def draw_view(r: np.random.Generator) -> tuple[np.ndarray, float, float, float]:
            occluder_at = np.array([r.uniform(-1.0, 1.0), 0.0, r.uniform(-1.0, 1.0)])
            yaw, dist, width = float(r.uniform(0.0, 360.0)), float(r.uniform(2.2, 3.2)), float(r.uniform(1.0, 1.8))
            cam = occluder_at - camera_forward(yaw, 0.0) * dist
            cam[1] = eye_height
            return cam, yaw, dist, width

        def view_fits(view: tuple[np.ndarray, float, float, float]) -> bool:
            cam, yaw, dist, width = view
            fwd, side = camera_forward(yaw, 0.0), camera_right(yaw) * (width / 2 + 1.0 + widest)
            corners = [cam + fwd * (dist + d) + s for d in (0.3, 0.6 + 0.4 * n) for s in (side, -side)]
            return room.contains(cam[0], cam[2], margin=0.5) and all(
                room.contains(p[0], p[2], margin=widest + 0.1) for p in corners
            )

        cam_pos, yaw, dist, width = sample_until(
            rng, draw_view, view_fits, attempts=1000, what="camera and occluder layout"
        )
        fwd, right = camera_forward(yaw, 0.0), camera_right(yaw)
        centre = cam_pos + fwd * dist

        deepest = 0.6 + 0.4 * n

        def draw_starts(r: np.random.Generator) -> list[tuple[float, float, float]]:
            return [
                (float(r.uniform(0.3, deepest)), 1.0 if r.random() < 0.5 else -1.0, float(r.uniform(0.3, 1.0)))
                for _ in range(n)
            ]

        def place(start: tuple[float, float, float], foot: float) -> np.ndarray:
            depth, side, beyond = start
            return centre + fwd * depth + right * side * (width / 2 + beyond + foot)

        def starts_fit(starts: list[tuple[float, float, float]]) -> bool:
            at = [place(s, f) for s, f in zip(starts, feet, strict=True)]
            return all(
                math.dist(at[i][::2], at[j][::2]) > feet[i] + feet[j] + 0.05
                and abs(starts[i][0] - starts[j][0]) > 0.5 * (feet[i] + feet[j])
                for i in range(n)
                for j in range(i + 1, n)
            )

        starts = sample_until(
            rng, draw_starts, starts_fit, attempts=1000, what=f"non-overlapping starts of {n} objects"
        )
        objects: list[ObjectSpec] = []
        needed = 0.0
        for i in range(n):
            (shape, color), speed, start = kinds[i], speeds[i], starts[i]
            at = place(start, feet[i])
            velocity = -start[1] * speed * right
            travel = width / 2 + start[2] + feet[i] + 0.8  # to get well past the panel's middle
            friction = None
            if shape not in ROUND_SHAPES:  # sliders: low enough friction to get across
                friction = min(0.05 if level < 2 else float(rng.uniform(0.02, 0.08)), speed**2 / (2 * 9.81 * travel))
            obj = make_object(
                i + 1,
                shape,
                diameters[i],
                color,
                rng,
                level,
                position_xz=(at[0], at[2]),
                velocity=velocity,
                yaw=yaw,
                mass=masses[i],
                friction=friction,
                size=sizes[i],
            )
            objects.append(obj)
            top = obj.position[1] + (obj.size[0] / 2 if shape in ROUND_SHAPES else obj.size[1] / 2)
            behind = dist + start[0] + feet[i]  # the nearest the object's top gets to the camera beyond the panel
            needed = max(needed, eye_height - (eye_height - top) * dist / behind + 0.06)
        height = max(float(rng.uniform(0.6, 1.0)), needed)
        occluder = PropSpec(
            id=n + 1,
            size=(width, height, 0.05),
            position=(centre[0], height / 2, centre[2]),
            rotation=(0.0, yaw, 0.0),
            color=tuple(float(v) for v in rng.uniform(0.1, 0.9, 3)),
            name="occluder",
        )
        props = [occluder]
        keep_out = [(float(cam_pos[0]), float(cam_pos[2]), 0.6), *sight_line(cam_pos, centre, 0.4)]
        ends = (centre - right * width / 2, centre + right * width / 2)
        keep_out += sight_line(*ends, 0.1, step=0.1)  # the panel itself: nothing may stand in it
        for i, s in enumerate(starts):
            a, b = place(s, feet[i]), place((s[0], -s[1], s[2]), feet[i])
            keep_out += sight_line(a, b, feet[i] + 0.2)
        if level >= 2:
            objects += distractors(rng, room, level, n + 2, keep_out, int(rng.integers(1, 3)), plan)
        if level >= 3:
            props += clutter_props(rng, room, len(objects) + 2, keep_out, int(rng.integers(4, 8)), avoid=objects)

        look_at = [float(centre[0]), height / 2, float(centre[2])]
        pitch = -math.degrees(math.atan2(cam_pos[1] - height / 2, dist))
        camera = Camera(position=tuple(float(v) for v in cam_pos), yaw=yaw, pitch=pitch)
        return SceneSpec(
            room=room,
            objects=tuple(objects),
            props=tuple(props),
            camera=camera,
            light=light_for_level(rng, level),
            labels={
                "occluder_id": occluder.id,
                "occluder_width": width,
                "event_object": 1,
                "look_at": look_at,
                "num_moving": n,
            },
        )
