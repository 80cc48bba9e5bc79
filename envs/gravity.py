"""TDWRoom-Gravity: objects dropped from a height or launched on parabolic arcs."""

from __future__ import annotations

import math

import numpy as np

from tdwgym.envs.base import TDWRoomEnv
from tdwgym.envs.common import (
    camera_facing,
    camera_height,
    clutter_props,
    distractors,
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
from tdwgym.sim.scene import Camera, SceneSpec

G = 9.81


class GravityEnv(TDWRoomEnv):
    """Objects fall: dropped from rest or launched on parabolic arcs; bouncy ones bounce.

    ## Description
    1 to 3 objects start in mid-air above a landing area. Each is either dropped from rest (its height follows
    ``h0 - g t^2 / 2`` until it lands) or launched horizontally, with an upward kick from level 1, on a parabolic
    arc. Restitution varies per object, so some bounce and some land dead. The agent moves the observer camera and
    can push objects once they rest.

    ## Action Space
    As :class:`tdwgym.envs.occlusion.OcclusionEnv`: ``Discrete(10)`` or ``Box(5)`` (``action_type``).

    ## Observation Space
    ``obs_mode="rgb"``: ``Box(0, 255, (H, W, 3), uint8)``; ``"rgbd"`` adds depth in metres; ``"rgb_seg"`` adds
    segmentation of scene ids. H = W = 64 by default.

    ## Rewards
    0.0 (self-supervised); with ``push_reward=r``, r on a step whose push moved an object.

    ## Starting State
    Objects start in lanes 0.8 m apart around a point within 1 m of the room's centre. A dropped object starts at
    rest; a launched one moves along its lane and is placed so that its arc is centred on the lane's middle. The
    camera stands 3.5 to 4.5 m away, 1.0 to 1.5 m high (0.7 to 2.0 m at level 3), looking at the landing area.
    Levels: 0: bare room, one cube or sphere, launched flat or dropped; 1: 1 or 2 objects, all primitives, upward
    kicks, room size and colours vary; 2: 2 or 3 objects, varied mass and friction, patterned floor and walls,
    distractors; 3: as 2 plus clutter, varied light and camera height, compound shapes.

    Factors: :attr:`FACTORS` (``split`` draws them, labels record them; bands and held-out values are tabled in
    docs/scenarios.md, which a test keeps equal to the code). A test_ood scene whose held-out factor is ``speed``
    launches every object (``speed`` is None for dropped objects).

    ## Episode End
    Never terminated. Truncated after 150 steps (5 simulated seconds). The reset ``info["labels"]`` also holds
    ``motions`` ("drop" or "arc" per moving object) and ``heights``.

    ## Arguments
    ``gym.make("TDWRoom-Gravity-v0", level=0, split="train", impossible=None, ...)`` with the shared arguments of
    :class:`tdwgym.envs.base.TDWRoomEnv`. Impossible kinds vanish, appear, teleport, shape_change and color_change
    happen to object 1 in plain view, a few frames before it lands.

    ## Version History
    * v0: Initial version.
    """

    SCENARIO = "gravity"
    FACTORS = FactorSpace(
        factors=(
            Factor(
                "height",
                "m",
                train=(0.8, 2.0),
                gap=(1.3, 1.45),
                low=(0.3, 0.6),
                high=(2.2, 2.6),
                doc="starting height of the object's centre",
            ),
            Factor(
                "speed",
                "m/s",
                train=(0.5, 2.0),
                gap=(1.1, 1.3),
                low=(0.1, 0.35),
                high=(2.4, 3.0),
                doc="horizontal launch speed (launched objects)",
            ),
            Factor(
                "size",
                "m",
                train=(0.15, 0.35),
                gap=(0.24, 0.27),
                low=(0.08, 0.12),
                high=(0.4, 0.45),
                doc="footprint diameter",
            ),
            Factor(
                "restitution", "", train=(0.1, 0.8), gap=(0.4, 0.5), low=(0.0, 0.05), high=(0.9, 0.97), doc="bounciness"
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
        n = int(rng.integers(*((1, 2), (1, 3), (2, 4), (2, 4))[level]))
        kinds = [plan.draw_pair("shape", "color", rng) for _ in range(n)]
        diameters = [float(plan.draw("size", rng)) for _ in range(n)]
        heights = [float(plan.draw("height", rng)) for _ in range(n)]
        restitutions = [float(plan.draw("restitution", rng)) for _ in range(n)]
        masses = [float(plan.draw("mass", rng)) for _ in range(n)]
        launch_all = plan.bands["speed"] != "train"
        motions = ["arc" if launch_all or rng.random() < 0.5 else "drop" for _ in range(n)]
        speeds: list[float | None] = []
        for m in motions:
            if m == "arc":
                speeds.append(float(plan.draw("speed", rng)))
            else:
                plan.values.setdefault("speed", []).append(None)
                speeds.append(None)

        centre = np.array([rng.uniform(-1, 1), 0.0, rng.uniform(-1, 1)])
        heading = float(rng.uniform(0.0, 2 * math.pi))
        along = np.array([math.cos(heading), 0.0, math.sin(heading)])
        across = np.array([-along[2], 0.0, along[0]])
        objects = []
        for i in range(n):
            shape, color = kinds[i]
            size = shape_size(shape, diameters[i], rng, level)
            lane = centre + across * 0.8 * (i - (n - 1) / 2)
            h = max(heights[i], 0.5 * max(size) + 0.05)
            if motions[i] == "arc":
                vy = float(rng.uniform(0.0, 1.5)) if level >= 1 else 0.0
                t_flight = (vy + math.sqrt(vy * vy + 2 * G * (h - size[1] / 2))) / G
                run = speeds[i] * t_flight  # type: ignore[operator]
                start = lane - along * run / 2
                velocity = along * speeds[i] + np.array([0.0, vy, 0.0])  # type: ignore[operator]
            else:
                start, velocity = lane, np.zeros(3)
            objects.append(
                make_object(
                    i + 1,
                    shape,
                    diameters[i],
                    color,
                    rng,
                    level,
                    position_xz=(start[0], start[2]),
                    y=h,
                    velocity=velocity,
                    mass=masses[i],
                    restitution=restitutions[i],
                    roll=False,
                    size=size,
                    friction=None if level >= 2 else 0.4,
                )
            )

        look = (float(centre[0]), 0.8, float(centre[2]))
        eye, yaw, pitch = camera_facing(
            rng, room, look, (3.5, 4.5), camera_height(rng, level, 1.0, 1.5), margin=0.4, attempts=500
        )
        keep_out = [(float(centre[0]), float(centre[2]), 2.5), (float(eye[0]), float(eye[2]), 0.6)]
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
                "motions": motions,
                "heights": [o.position[1] for o in objects[:n]],
                "event_object": 1,
                "look_at": list(look),
                "num_moving": n,
            },
        )
