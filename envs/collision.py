"""TDWRoom-Collision: 2 to 4 objects launched toward each other."""

from __future__ import annotations

import math

import numpy as np

from tdwgym.envs.base import TDWRoomEnv
from tdwgym.envs.common import (
    camera_facing,
    camera_height,
    clutter_props,
    distractors,
    footprint,
    light_for_level,
    make_object,
    room_for_level,
    shape_size,
)
from tdwgym.envs.factors import (
    Factor,
    FactorSpace,
    color_factor,
    mass_factor,
    shape_color_combinations,
    shape_factor,
)
from tdwgym.envs.impossible import IMPOSSIBLE_KINDS
from tdwgym.sim.scene import Camera, SceneSpec


class CollisionEnv(TDWRoomEnv):
    """Objects slide or roll toward a common point and collide, elastically or not.

    ## Description
    2 to 4 primitive (or, at level 3, compound) objects start on a circle around a meeting point on the floor and
    are launched toward it so that they arrive at about the same time. Objects 1 and 2 always meet head-on.
    Restitution varies per object, so some contacts are nearly elastic and others nearly inelastic (Bullet
    multiplies the two bodies' restitutions). The agent moves the observer camera and can push objects.

    ## Action Space
    As :class:`tdwgym.envs.occlusion.OcclusionEnv`: ``Discrete(10)`` (no-op, forward, back, strafe left/right,
    turn left/right, look up/down, push) or, with ``action_type="continuous"``, ``Box(5)`` (forward, strafe, turn,
    pitch, push strength).

    ## Observation Space
    ``obs_mode="rgb"``: ``Box(0, 255, (H, W, 3), uint8)``; ``"rgbd"`` adds depth in metres; ``"rgb_seg"`` adds
    segmentation of scene ids (0 is the room). H = W = 64 by default (``resolution``).

    ## Rewards
    0.0: the environment is self-supervised. Curiosity rewards come from ``tdwgym.agents``. With
    ``push_reward=r``, r on a step whose push moved an object.

    ## Starting State
    The meeting point lies within 1 m of the room's centre; objects start 0.5 to 2 m from it, 0.6 to 1 s of travel
    away, round shapes rolling and others sliding on low friction. The camera stands 3 to 4.5 m from the meeting
    point, 1.2 to 1.7 m high (0.7 to 2.0 m at level 3), and looks at it. Levels: 0: bare room, two cubes or spheres
    head-on; 1: 2 or 3 objects, all primitives, room size and colours vary; 2: 2 to 4 objects, varied mass and
    friction, patterned floor and walls, distractors at rest; 3: 3 or 4 objects, clutter, varied light and camera
    height, compound shapes.

    Factors: :attr:`FACTORS` (``split`` draws them, labels record them; bands and held-out values are tabled in
    docs/scenarios.md, which a test keeps equal to the code).

    ## Episode End
    Never terminated. Truncated after 150 steps (5 simulated seconds) by ``max_episode_steps``. ``info`` is as in
    Occlusion; the reset ``info["labels"]`` also holds ``meeting_point`` and ``pass_through_pair`` (1, 2).

    ## Arguments
    ``gym.make("TDWRoom-Collision-v0", level=0, split="train", impossible=None, ...)`` with the shared arguments of
    :class:`tdwgym.envs.base.TDWRoomEnv`. ``impossible="pass_through"`` lets objects 1 and 2 pass through each
    other; the other kinds (vanish, appear, teleport, shape_change, color_change) happen to object 1 in plain view
    a few frames before its first contact.

    ## Version History
    * v0: Initial version.
    """

    SCENARIO = "collision"
    FACTORS = FactorSpace(
        factors=(
            Factor(
                "speed",
                "m/s",
                train=(1.0, 3.0),
                gap=(1.8, 2.1),
                low=(0.3, 0.7),
                high=(3.5, 4.5),
                doc="launch speed toward the meeting point",
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
            Factor(
                "restitution",
                "",
                train=(0.2, 0.9),
                gap=(0.5, 0.6),
                low=(0.0, 0.1),
                high=(0.95, 1.0),
                doc="bounciness (Bullet multiplies the two bodies' values)",
            ),
            mass_factor(),
            shape_factor(),
            color_factor(),
        ),
        combinations=shape_color_combinations(),
    )
    SUPPORTED_IMPOSSIBLE = IMPOSSIBLE_KINDS

    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        level, plan = self.level, self.plan
        assert plan is not None
        room = room_for_level(rng, level)
        n = int(rng.integers(*((2, 3), (2, 4), (2, 5), (3, 5))[level]))
        kinds = [plan.draw_pair("shape", "color", rng) for _ in range(n)]
        diameters = [float(plan.draw("size", rng)) for _ in range(n)]
        speeds = [float(plan.draw("speed", rng)) for _ in range(n)]
        restitutions = [float(plan.draw("restitution", rng)) for _ in range(n)]
        masses = [float(plan.draw("mass", rng)) for _ in range(n)]
        sizes = [shape_size(s, d, rng, level) for (s, _), d in zip(kinds, diameters, strict=True)]
        feet = [footprint(s, size) for (s, _), size in zip(kinds, sizes, strict=True)]

        span_x, span_z = max(room.width / 2 - 3.0, 0.0), max(room.length / 2 - 3.0, 0.0)
        meet = np.array([rng.uniform(-1, 1) * min(1.0, span_x), 0.0, rng.uniform(-1, 1) * min(1.0, span_z)])
        t_hit = float(rng.uniform(0.6, 1.0))
        theta = float(rng.uniform(0.0, 2 * math.pi))
        # objects 1 and 2 head-on; 3 and 4 across, with some jitter
        angles = [theta, theta + math.pi, theta + math.pi / 2, theta - math.pi / 2][:n]
        angles = [a + (float(rng.uniform(-0.25, 0.25)) if i >= 2 else 0.0) for i, a in enumerate(angles)]
        objects = []
        for i in range(n):
            shape, color = kinds[i]
            reach = float(np.clip(speeds[i] * t_hit, feet[i] + 0.35, 2.0))
            direction = np.array([math.cos(angles[i]), 0.0, math.sin(angles[i])])
            start = meet + direction * reach
            velocity = -direction * speeds[i]
            friction = None if level >= 2 else (0.4 if shape in ("sphere", "cylinder", "capsule") else 0.02)
            objects.append(
                make_object(
                    i + 1,
                    shape,
                    diameters[i],
                    color,
                    rng,
                    level,
                    position_xz=(start[0], start[2]),
                    velocity=velocity,
                    mass=masses[i],
                    restitution=restitutions[i],
                    friction=friction,
                    size=sizes[i],
                )
            )

        eye, yaw, pitch = camera_facing(
            rng,
            room,
            (meet[0], 0.2, meet[2]),
            (3.0, 4.5),
            camera_height(rng, level, 1.2, 1.7),
            margin=0.4,
            attempts=500,
        )
        keep_out = [(float(meet[0]), float(meet[2]), 2.6), (float(eye[0]), float(eye[2]), 0.6)]
        props = []
        if level >= 2:
            objects += distractors(rng, room, level, n + 1, keep_out, int(rng.integers(1, 3)), plan)
        if level >= 3:
            props = clutter_props(rng, room, len(objects) + 1, keep_out, int(rng.integers(4, 8)), avoid=objects)
        return SceneSpec(
            room=room,
            objects=tuple(objects),
            props=tuple(props),
            camera=Camera(position=tuple(float(v) for v in eye), yaw=yaw, pitch=pitch),
            light=light_for_level(rng, level),
            labels={
                "meeting_point": [float(v) for v in meet],
                "pass_through_pair": [1, 2],
                "event_object": 1,
                "look_at": [float(meet[0]), 0.2, float(meet[2])],
                "num_moving": n,
            },
        )
