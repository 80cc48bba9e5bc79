"""TDWRoom-Playroom: many objects at rest; the agent's pushes set them moving."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tdwgym.envs.base import TDWRoomEnv
from tdwgym.envs.common import (
    camera_height,
    clutter_props,
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
from tdwgym.envs.impossible import HIDDEN_KINDS
from tdwgym.envs.sampling import sample_until
from tdwgym.sim.scene import Camera, SceneSpec


class PlayroomEnv(TDWRoomEnv):
    """A room with many objects of varied shapes at rest: the agent's pushes are the main source of motion.

    ## Description
    2 to 12 objects rest on the floor in front of the camera, within 0.9 to 4.2 m of it. Nothing moves until the
    agent pushes: a push casts a ray from the camera centre and, if it meets an object within ``push_reach``,
    applies an impulse there. The scenario is made for curiosity-driven exploration.

    ## Action Space
    As :class:`tdwgym.envs.occlusion.OcclusionEnv`: ``Discrete(10)`` or ``Box(5)`` (``action_type``).

    ## Observation Space
    ``obs_mode="rgb"``: ``Box(0, 255, (H, W, 3), uint8)``; ``"rgbd"`` adds depth in metres; ``"rgb_seg"`` adds
    segmentation of scene ids. H = W = 64 by default.

    ## Rewards
    0.0 (self-supervised); with ``push_reward=r``, r on a step whose push moved an object.

    ## Starting State
    The camera stands at a random spot at least 1 m from the walls, 1.0 to 1.4 m high (0.7 to 2.0 m at level 3),
    pitched down 15 to 25 degrees. Objects lie within 45 degrees of its view axis. Levels: 0: bare room, 2 cubes or
    spheres in plain colours; 1: 4 to 6 objects, all primitives, room size and colours vary; 2: 6 to 8 objects,
    varied mass, friction and restitution, patterned floor and walls; 3: 8 to 12 objects, compound shapes, clutter,
    varied light and camera height.

    Factors: :attr:`FACTORS` (``split`` draws them, labels record them; bands and held-out values are tabled in
    docs/scenarios.md, which a test keeps equal to the code).

    ## Episode End
    Never terminated. Truncated after 500 steps by ``max_episode_steps``.

    ## Arguments
    ``gym.make("TDWRoom-Playroom-v0", level=0, split="train", impossible=None, ...)`` with the shared arguments of
    :class:`tdwgym.envs.base.TDWRoomEnv`. Impossible kinds vanish, appear, teleport, shape_change and color_change
    happen to the object nearest the view axis, in plain view, at frame 15.

    ## Version History
    * v0: Initial version.
    """

    SCENARIO = "playroom"
    FACTORS = FactorSpace(
        factors=(
            Factor(
                "size",
                "m",
                train=(0.15, 0.4),
                gap=(0.26, 0.29),
                low=(0.08, 0.12),
                high=(0.45, 0.55),
                doc="footprint diameter",
            ),
            mass_factor(),
            shape_factor(),
            color_factor(),
        ),
        combinations=shape_color_combinations(),
    )
    SUPPORTED_IMPOSSIBLE = HIDDEN_KINDS

    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        level, plan = self.level, self.plan
        assert plan is not None
        room = room_for_level(rng, level)
        n = int(rng.integers(*((2, 3), (4, 7), (6, 9), (8, 13))[level]))
        height = camera_height(rng, level)
        eye = np.array(
            [rng.uniform(-1, 1) * (room.width / 2 - 1.0), height, rng.uniform(-1, 1) * (room.length / 2 - 1.0)]
        )
        yaw = float(math.degrees(math.atan2(-eye[0], -eye[2]))) % 360.0  # roughly toward the room's centre
        yaw = (yaw + float(rng.uniform(-30, 30))) % 360.0
        placed: list[tuple[float, float, float]] = [(float(eye[0]), float(eye[2]), 0.5)]
        objects = []
        for i in range(n):
            shape, color = plan.draw_pair("shape", "color", rng)
            d = float(plan.draw("size", rng))
            mass = float(plan.draw("mass", rng))
            size = shape_size(shape, d, rng, level)
            r = footprint(shape, size)

            def draw(g: np.random.Generator) -> tuple[float, float]:
                a = math.radians(yaw + float(g.uniform(-45, 45)))
                dist = float(g.uniform(0.9, 4.2))
                return float(eye[0] + math.sin(a) * dist), float(eye[2] + math.cos(a) * dist)

            def fits(p: tuple[float, float], r: float = r) -> bool:
                return room.contains(p[0], p[1], margin=r + 0.1) and all(
                    math.hypot(p[0] - x, p[1] - z) > r + rr + 0.1 for x, z, rr in placed
                )

            xz = sample_until(rng, draw, fits, attempts=500, what=f"placement of {n} objects")
            placed.append((xz[0], xz[1], r))
            objects.append(
                make_object(
                    i + 1,
                    shape,
                    d,
                    color,
                    rng,
                    level,
                    position_xz=xz,
                    mass=mass,
                    size=size,
                    roll=False,
                    friction=None if level >= 2 else 0.4,
                )
            )
        pitch = -float(rng.uniform(15, 25))
        props = []
        if level >= 3:
            props = clutter_props(
                rng, room, n + 1, [*placed, *[(float(eye[0]), float(eye[2]), 0.8)]], int(rng.integers(4, 8))
            )
        look = eye + np.array([math.sin(math.radians(yaw)), 0, math.cos(math.radians(yaw))]) * 2.0
        look[1] = 0.2
        return SceneSpec(
            room=room,
            objects=tuple(objects),
            props=tuple(props),
            camera=Camera(position=tuple(float(v) for v in eye), yaw=yaw, pitch=pitch),
            light=light_for_level(rng, level),
            labels={"event_object": self._most_central(objects, eye, yaw), "look_at": [float(v) for v in look]},
        )

    @staticmethod
    def _most_central(objects: list, eye: np.ndarray, yaw: float) -> int:
        """Id of the object nearest the camera's view axis (the one impossible events happen to)."""

        def off_axis(o: Any) -> float:
            a = math.degrees(math.atan2(o.position[0] - eye[0], o.position[2] - eye[2]))
            return abs((a - yaw + 180.0) % 360.0 - 180.0)

        return min(objects, key=off_axis).id
