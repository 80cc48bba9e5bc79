"""Impossible events: the kinds (:data:`IMPOSSIBLE_KINDS`, :data:`HIDDEN_KINDS`), staging one in a scene
(:func:`add_impossible_event`: after generating the possible scene, a dry run of its physics picks the frame of the
violation, while the object is hidden behind the occluder where the scenario has one, and the violation is added to
the scene as :class:`~tdwgym.sim.scene.SceneEvent` data) and applying a scripted event at its step through the
backend's edit methods (:func:`apply_event`). An env's ``impossible`` argument, its
:meth:`~tdwgym.envs.base.TDWRoomEnv.add_impossible_event` and its ``step`` call these; the same seed with
``impossible=None`` gives the possible twin. Matched clips of both twins: :mod:`tdwgym.envs.twins`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tdwgym.envs.common import SLIDING_FRICTION
from tdwgym.envs.factors import PALETTE
from tdwgym.sim.backends import Contact
from tdwgym.sim.geometry import camera_right
from tdwgym.sim.scene import SceneEvent, SceneSpec, object_from_dict

IMPOSSIBLE_KINDS: tuple[str, ...] = ("vanish", "appear", "teleport", "shape_change", "color_change", "pass_through")
"""Valid values of the ``impossible`` argument (besides None)."""

HIDDEN_KINDS: tuple[str, ...] = ("vanish", "appear", "teleport", "shape_change", "color_change")
"""Impossible kinds that happen while the object is hidden, where the scenario has an occluder."""

DRY_RUN_STEPS = 150
"""Steps of physics simulated to time an impossible event."""


def rolling_spin(velocity: Any, radius: float) -> tuple[float, float, float]:
    """The spin of a ball of ``radius`` rolling without slipping at ``velocity`` on the floor: up x v / r."""
    v = np.array(velocity, dtype=np.float64) * [1, 0, 1]
    return tuple(float(x) for x in np.cross([0.0, 1.0, 0.0], v) / max(float(radius), 1e-9))  # type: ignore[return-value]


# -- staging an impossible event in a scene, and applying scripted events ---------------------------------------------


def add_impossible_event(env: Any, scene: SceneSpec, kind: str) -> SceneSpec:
    """``scene`` with the events of impossible ``kind`` added, timed by a dry run of its physics in ``env`` (a
    :class:`~tdwgym.envs.base.TDWRoomEnv`; :meth:`~tdwgym.envs.base.TDWRoomEnv.add_impossible_event` calls this).

    The dry run steps the possible scene with a still camera. For the hidden kinds in a scene with an occluder
    (``labels["occluder_id"]``), the event falls in the middle of the first interval in which the target object
    (``labels["event_object"]``, default 1) is hidden behind it after having been seen; otherwise a few frames
    before the target's first contact. ``pass_through`` disables contacts between ``labels["pass_through_pair"]``
    one frame before they would first touch; when they never touch in the dry run the scene is returned
    without an event, labelled ``impossible=None`` with the reason in ``impossible_skipped``. The labels gain
    ``impossible``, ``event_frame``, ``event_object`` and ``event_hidden``.
    """
    if kind is None:
        raise ValueError(f"add_impossible_event needs a kind; valid values are {list(env.SUPPORTED_IMPOSSIBLE)}")
    env.check_impossible(kind)
    base = dataclasses.replace(scene, events=())
    labels = dict(scene.labels)
    target = int(labels.get("event_object", 1))
    spec = scene.object(target)
    run = _dry_run(env, base, target, labels.get("pass_through_pair"))
    hidden = False
    if kind == "pass_through":
        a, b = labels["pass_through_pair"]
        touch = next((k for k, r in enumerate(run) if k >= 1 and (min(a, b), max(a, b)) in r["pairs"]), None)
        if touch is None:
            # the pair never meets: there is no solidity to violate, so the episode stays possible and says so
            labels.update(
                {
                    "impossible": None,
                    "event_frame": None,
                    "impossible_skipped": f"pass_through: objects {a} and {b} never touch in {DRY_RUN_STEPS} steps",
                }
            )
            return dataclasses.replace(scene, events=(), labels=labels)
        frame = max(1, touch - 1)
        events = [SceneEvent(frame, "collision", int(a), {"other": int(b), "enabled": False})]
        target = int(a)
    else:
        frame, hidden = _event_frame(run, labels)
        events = [_impossible_event(kind, frame, base, spec, run, labels)]
    labels.update({"impossible": kind, "event_frame": frame, "event_object": target, "event_hidden": hidden})
    return dataclasses.replace(scene, events=tuple(events), labels=labels)


def _dry_run(env: Any, scene: SceneSpec, target: int, pair: Any) -> list[dict[str, Any]]:
    """Per frame 0..DRY_RUN_STEPS: the target's state, whether it is hidden, and the contact pairs."""
    be = env.backend
    be.load(scene)
    cam = scene.camera
    be.set_camera(cam.position, cam.yaw, cam.pitch)
    occluder = scene.labels.get("occluder_id")
    size = np.array(scene.object(target).size)
    eye = np.array(cam.position)
    out = []
    contacts: list[Contact] = []
    for k in range(DRY_RUN_STEPS + 1):
        if k:
            contacts = be.step(env.substeps)
        states = be.object_states()
        st = states[target]
        out.append(
            {
                "states": states,
                "hidden": _hidden(be, target, st.position, size, eye, occluder),
                "pairs": {(c.a, c.b) for c in contacts},
            }
        )
    return out


def _hidden(backend: Any, oid: int, centre: np.ndarray, size: np.ndarray, eye: np.ndarray, occluder: Any) -> bool:
    """Whether no ray from ``eye`` reaches the object and the ray to its centre meets the occluder first."""
    if occluder is None:
        return False
    r = 0.42 * float(min(size))
    top = 0.45 * float(size[1])
    points = [
        centre,
        centre + [0, top, 0],
        centre + [r, 0, 0],
        centre - [r, 0, 0],
        centre + [0, 0, r],
        centre - [0, 0, r],
        centre + [r, top * 0.6, 0],
        centre + [-r, top * 0.6, 0],
    ]
    for i, p in enumerate(points):
        rel = p - eye
        hit = backend.ray_cast(eye, rel, float(np.linalg.norm(rel)) + 1.0)
        if hit is not None and hit.id == oid:
            return False
        if i == 0 and (hit is None or hit.id != occluder):
            return False
    return True


def _event_frame(run: list[dict[str, Any]], labels: dict[str, Any]) -> tuple[int, bool]:
    """(frame, hidden): mid-way through the first hidden interval after a visible frame, else before contact."""
    seen = False
    k = 0
    while k < len(run):
        if not run[k]["hidden"]:
            seen = True
            k += 1
            continue
        start = k
        while k < len(run) and run[k]["hidden"]:
            k += 1
        if seen and k - start >= 4 and start >= 1:
            return start + (k - start) // 2, True
    target = int(labels.get("event_object", 1))
    initial = run[1]["pairs"] if len(run) > 1 else set()  # resting contacts (on the floor) do not count
    touch = next(
        (k for k, r in enumerate(run) if k >= 3 and any(target in p and p not in initial for p in r["pairs"])), None
    )
    frame = 15 if touch is None else touch - 3
    return int(np.clip(frame, 3, len(run) - 2)), False


def _impossible_event(
    kind: str, frame: int, scene: SceneSpec, spec: Any, run: list[dict[str, Any]], labels: dict[str, Any]
) -> SceneEvent:
    state = run[frame - 1]["states"][spec.id]
    vel = np.array(state.velocity)
    heading = np.array([vel[0], 0.0, vel[2]])
    if np.linalg.norm(heading) < 1e-6:
        heading = camera_right(scene.camera.yaw)
    heading = heading / np.linalg.norm(heading)
    side = np.cross([0.0, 1.0, 0.0], heading)
    pos = np.array(state.position)
    if side @ (-pos * [1, 0, 1]) < 0:  # the side towards the room's centre
        side = -side
    if kind == "vanish":
        return SceneEvent(frame, "remove", spec.id)
    if kind == "color_change":
        current = np.array(spec.color)
        far = max(PALETTE.values(), key=lambda c: float(np.linalg.norm(np.array(c) - current)))
        return SceneEvent(frame, "recolor", spec.id, {"color": list(far)})
    if kind == "teleport":
        if run[frame - 1]["hidden"]:
            offset = heading * 0.5 * float(labels.get("occluder_width", 1.0))
        else:
            offset = side * 0.5
        return SceneEvent(frame, "teleport", spec.id, {"offset": [float(v) for v in offset]})
    if kind == "shape_change":
        d = float(spec.size[0])
        new_shape = "cube" if spec.shape == "sphere" else "sphere"
        # the new shape keeps moving as the old one did: a new cube slides on the sliders' friction (a rolling
        # sphere's would stop it dead behind the occluder), a new sphere rolls (apply_event gives it the spin)
        new = dataclasses.replace(
            spec,
            shape=new_shape,
            size=(d, d, d),
            rotation=(0.0, 0.0, 0.0),
            parts=(),
            friction=spec.friction if new_shape == "sphere" else min(float(spec.friction), SLIDING_FRICTION),
            name=f"{spec.name}->{new_shape}",
        )
        on_floor = (0, spec.id) in run[frame - 1]["pairs"] or (0, spec.id) in run[max(frame - 2, 0)]["pairs"]
        return SceneEvent(frame, "replace", spec.id, {"object": dataclasses.asdict(new), "on_floor": bool(on_floor)})
    # appear: a twin of the target pops into existence beside it, away from the camera where possible
    new_id = max([o.id for o in scene.objects] + [p.id for p in scene.props]) + 1
    eye = np.array(scene.camera.position)
    away = (pos - eye) * [1, 0, 1]
    away = away / max(float(np.linalg.norm(away)), 1e-9)
    reach = 2.0 * max(spec.size) + 0.05
    others = [
        (np.array(st.position), 0.5 * max(scene.object(oid).size))
        for oid, st in run[frame - 1]["states"].items()
        if oid != spec.id
    ]
    candidates = [pos + away * reach * f for f in (1.0, 1.5)] + [pos - heading * reach * f for f in (1.0, 1.5)]
    room = scene.room

    def free(p: np.ndarray) -> bool:
        return room.contains(p[0], p[2], margin=max(spec.size)) and all(
            float(np.linalg.norm((p - q) * [1, 0, 1])) > r + max(spec.size) for q, r in others
        )

    where = next((p for p in candidates if free(p)), candidates[0])
    new = dataclasses.replace(
        spec,
        id=new_id,
        position=tuple(float(v) for v in where),
        velocity=tuple(float(v) for v in state.velocity),
        angular_velocity=tuple(float(v) for v in state.angular_velocity),
        name=f"{spec.name} (appeared)",
    )
    return SceneEvent(frame, "add", new_id, {"object": dataclasses.asdict(new)})


def apply_event(env: Any, event: SceneEvent) -> None:
    """Apply one scripted edit to ``env`` (a :class:`~tdwgym.envs.base.TDWRoomEnv`) through its backend (its
    :meth:`~tdwgym.envs.base.TDWRoomEnv.step` calls this at the event's frame).

    Raises:
        ~tdwgym.sim.scene.SceneError: A teleport whose target lies outside the room (where the object is at the
            event's frame is known only then); nothing is moved.
    """
    be = env.backend
    oid = event.object_id
    if event.kind == "remove":
        be.remove_object(oid)
        env._movable_ids.discard(oid)
    elif event.kind == "add":
        be.add_object(object_from_dict(event.params["object"]))
        env._movable_ids.add(oid)
    elif event.kind == "replace":
        new = object_from_dict(event.params["object"])
        st = be.object_states()[oid]
        y = new.size[1] / 2 + 0.002 if event.params.get("on_floor") else float(st.position[1])
        rolls = new.shape == "sphere" and bool(event.params.get("on_floor"))
        be.remove_object(oid)
        be.add_object(
            dataclasses.replace(
                new,
                position=(float(st.position[0]), y, float(st.position[2])),
                velocity=tuple(float(v) for v in st.velocity),
                angular_velocity=rolling_spin(st.velocity, new.size[0] / 2) if rolls else (0.0, 0.0, 0.0),
            )
        )
    elif event.kind == "teleport":
        # the object jumps and keeps moving as it moved (a backend's reset of the pose may zero the velocity)
        st = be.object_states()[oid]
        target = st.position + np.array(event.params["offset"], dtype=np.float64)
        env.scene.room.check_inside(
            target,
            f"SceneEvent.params['offset'] {event.params['offset']!r} of the teleport at frame {event.frame} moves "
            f"object {oid} from {tuple(round(float(v), 3) for v in st.position)!r}; its target",
        )
        be.set_object_state(
            oid,
            position=target,
            velocity=st.velocity,
            angular_velocity=st.angular_velocity,
        )
    elif event.kind == "recolor":
        be.set_object_color(oid, event.params["color"])
    elif event.kind == "collision":
        be.set_collision_enabled(oid, int(event.params["other"]), bool(event.params["enabled"]))
