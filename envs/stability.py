"""TDWRoom-Stability: towers of blocks, some stable, some that topple."""

from __future__ import annotations

import numpy as np

from tdwgym.envs.base import TDWRoomEnv
from tdwgym.envs.common import (
    camera_facing,
    camera_height,
    clutter_props,
    color_rgb,
    distractors,
    light_for_level,
    room_for_level,
)
from tdwgym.envs.factors import Factor, FactorSpace, color_factor, mass_factor
from tdwgym.envs.impossible import HIDDEN_KINDS
from tdwgym.envs.sampling import sample_until
from tdwgym.sim.geometry import camera_right
from tdwgym.sim.scene import Camera, ObjectSpec, SceneSpec

STABLE_RATIO = 0.35
"""A stable tower's centre of mass above every block stays within this fraction of the block's half-width."""
UNSTABLE_RATIO = (1.3, 1.7)
"""An unstable tower has one level whose load's centre of mass lies this many half-widths off its support."""


def overhang_ratios(offsets: list[float], masses: list[float], width: float) -> list[float]:
    """Per level k >= 1: |COM of blocks k..top - centre of block k-1| in half-widths (offsets along one axis)."""
    out = []
    for k in range(1, len(offsets)):
        com = float(np.average(offsets[k:], weights=masses[k:]))
        out.append(abs(com - offsets[k - 1]) / (width / 2))
    return out


class StabilityEnv(TDWRoomEnv):
    """Towers and stacks of blocks: some stand, some topple because a load's centre of mass overhangs its support.

    ## Description
    1 to 3 towers of 2 to 6 rectangular blocks stand on the floor. Each block is offset sideways from the one below
    (along the camera's right, so a fall is seen side-on). A tower is labelled stable when, for every block, the
    centre of mass of everything above it projects well inside it (within 0.35 half-widths); unstable when one
    level's load overhangs its support by 1.3 to 1.7 half-widths (its blocks above form a staircase), so it
    topples within the first second. The agent moves the camera and can push blocks.

    ## Action Space
    As :class:`tdwgym.envs.occlusion.OcclusionEnv`: ``Discrete(10)`` or ``Box(5)`` (``action_type``).

    ## Observation Space
    ``obs_mode="rgb"``: ``Box(0, 255, (H, W, 3), uint8)``; ``"rgbd"`` adds depth in metres; ``"rgb_seg"`` adds
    segmentation of scene ids. H = W = 64 by default.

    ## Rewards
    0.0 (self-supervised); with ``push_reward=r``, r on a step whose push moved an object.

    ## Starting State
    Towers stand in a row across the camera's view, far enough apart not to knock each other over. The camera
    stands 2.5 to 3.5 m from the row's centre, 0.9 to 1.3 m high (0.7 to 2.0 m at level 3). Blocks have friction
    0.8 and restitution 0.1. Levels: 0: bare room, one tower of cubes-like blocks; 1: 1 or 2 towers, block heights
    vary, room size and colours vary; 2: 2 or 3 towers, per-block mass (which moves the centre of mass), patterned
    floor and walls, distractors; 3: as 2 plus clutter, varied light and camera height.

    Factors: :attr:`FACTORS` (``split`` draws them, labels record them; bands and held-out values are tabled in
    docs/scenarios.md, which a test keeps equal to the code).

    ## Episode End
    Never terminated. Truncated after 180 steps (6 simulated seconds). The reset ``info["labels"]`` holds
    ``towers``: one dict per tower with ``ids`` (bottom to top), ``stable`` (bool), ``critical_level`` (the block
    index whose load overhangs, or None) and ``overhang`` (largest ratio); and ``stable`` (one bool per tower).

    ## Arguments
    ``gym.make("TDWRoom-Stability-v0", level=0, split="train", impossible=None, ...)`` with the shared arguments of
    :class:`tdwgym.envs.base.TDWRoomEnv`. Impossible kinds vanish, appear, teleport, shape_change and color_change
    happen to the top block of the first tower, in plain view, at frame 15.

    ## Version History
    * v0: Initial version.
    """

    SCENARIO = "stability"
    FACTORS = FactorSpace(
        factors=(
            Factor("blocks", "", train=(2, 4), high=(5, 6), integer=True, doc="blocks in a tower"),
            Factor(
                "size",
                "m",
                train=(0.16, 0.3),
                gap=(0.22, 0.24),
                low=(0.1, 0.13),
                high=(0.34, 0.4),
                doc="block width and depth",
            ),
            mass_factor(doc="block mass"),
            color_factor(doc="named plain colour of a block"),
        ),
    )
    SUPPORTED_IMPOSSIBLE = HIDDEN_KINDS

    def _generate_scene(self, rng: np.random.Generator) -> SceneSpec:
        level, plan = self.level, self.plan
        assert plan is not None
        room = room_for_level(rng, level)
        n_towers = int(rng.integers(*((1, 2), (1, 3), (2, 4), (2, 4))[level]))
        centre = np.array([rng.uniform(-1, 1), 0.0, rng.uniform(-1, 1)])
        eye, yaw, pitch = camera_facing(
            rng,
            room,
            (centre[0], 0.4, centre[2]),
            (2.5, 3.5),
            camera_height(rng, level, 0.9, 1.3),
            margin=0.4,
            attempts=500,
        )
        right = camera_right(yaw)
        objects: list[ObjectSpec] = []
        towers = []
        specs = []
        for _ in range(n_towers):
            blocks = int(plan.draw("blocks", rng))
            width = float(plan.draw("size", rng))
            heights = [width * (0.6 if level == 0 else float(rng.uniform(0.5, 1.0))) for _ in range(blocks)]
            masses = [float(plan.draw("mass", rng)) for _ in range(blocks)]
            colors = [plan.draw("color", rng) for _ in range(blocks)]
            stable = bool(rng.random() < 0.5)
            offsets, critical = self._offsets(rng, blocks, width, masses, stable)
            specs.append((blocks, width, heights, masses, colors, stable, offsets, critical))
        reach = [sum(s[2]) + s[1] for s in specs]  # how far a falling tower can reach
        spacing = [0.0]
        for i in range(1, n_towers):
            spacing.append(spacing[-1] + max(reach[i - 1], reach[i]) + 0.4)
        shift = spacing[-1] / 2
        next_id = 1
        for (blocks, width, heights, masses, colors, stable, offsets, critical), x in zip(specs, spacing, strict=True):
            base = centre + right * (x - shift)
            y, ids = 0.0, []
            for k in range(blocks):
                at = base + right * offsets[k]
                objects.append(
                    ObjectSpec(
                        id=next_id,
                        shape="cube",
                        size=(width, heights[k], width),
                        mass=masses[k],
                        color=color_rgb(colors[k]),
                        friction=0.8,
                        restitution=0.1,
                        position=(float(at[0]), y + heights[k] / 2 + 0.001, float(at[2])),
                        rotation=(0.0, yaw, 0.0),
                        name=f"block_{k}",
                    )
                )
                ids.append(next_id)
                next_id += 1
                y += heights[k] + 0.001
            ratios = overhang_ratios(offsets, masses, width)
            towers.append(
                {"ids": ids, "stable": stable, "critical_level": critical, "overhang": max(ratios) if ratios else 0.0}
            )
        keep_out = [
            (float(centre[0] + right[0] * (x - shift)), float(centre[2] + right[2] * (x - shift)), r + 0.3)
            for x, r in zip(spacing, reach, strict=True)
        ]
        keep_out.append((float(eye[0]), float(eye[2]), 0.6))
        props = []
        if level >= 2:
            objects += distractors(rng, room, level, next_id, keep_out, int(rng.integers(1, 3)), plan)
        if level >= 3:
            props = clutter_props(rng, room, len(objects) + 1, keep_out, int(rng.integers(4, 8)), avoid=objects)
        return SceneSpec(
            room=room,
            objects=tuple(objects),
            props=tuple(props),
            camera=Camera(position=tuple(float(v) for v in eye), yaw=yaw, pitch=pitch),
            light=light_for_level(rng, level),
            labels={
                "towers": towers,
                "stable": [t["stable"] for t in towers],
                "event_object": towers[0]["ids"][-1],
                "look_at": [float(centre[0]), 0.4, float(centre[2])],
            },
        )

    @staticmethod
    def _offsets(
        rng: np.random.Generator, blocks: int, width: float, masses: list[float], stable: bool
    ) -> tuple[list[float], int | None]:
        """Sideways block offsets (bottom to top) and the critical level of an unstable tower."""
        half = width / 2
        if stable or blocks < 2:

            def draw(g: np.random.Generator) -> list[float]:
                return list(np.cumsum([0.0] + [float(g.uniform(-0.3, 0.3)) * half for _ in range(blocks - 1)]))

            offsets = sample_until(
                rng,
                draw,
                lambda o: max(overhang_ratios(o, masses, width), default=0.0) <= STABLE_RATIO,
                attempts=500,
                what="stable block offsets",
            )
            return [float(v) for v in offsets], None
        critical = int(rng.integers(1, blocks))
        sign = 1.0 if rng.random() < 0.5 else -1.0

        def draw_unstable(g: np.random.Generator) -> list[float]:
            steps = [0.0] + [float(g.uniform(-0.2, 0.2)) * half for _ in range(blocks - 1)]
            for k in range(critical + 1, blocks):
                steps[k] = sign * float(g.uniform(0.15, 0.5)) * half  # a staircase above the critical level
            offsets = list(np.cumsum(steps))
            target = sign * float(g.uniform(*UNSTABLE_RATIO)) * half
            rel = [o - offsets[critical] for o in offsets]
            com_rel = float(np.average(rel[critical:], weights=masses[critical:]))
            new_c = offsets[critical - 1] + target - com_rel
            delta = new_c - offsets[critical]
            return offsets[:critical] + [o + delta for o in offsets[critical:]]

        def accept(o: list[float]) -> bool:
            ratios = overhang_ratios(o, masses, width)
            supported = abs(o[critical] - o[critical - 1]) <= 0.9 * width
            return supported and ratios[critical - 1] >= UNSTABLE_RATIO[0] - 1e-9

        offsets = sample_until(rng, draw_unstable, accept, attempts=500, what="unstable block offsets")
        return [float(v) for v in offsets], critical
