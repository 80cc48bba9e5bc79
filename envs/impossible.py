"""Matched possible/impossible clips for violation-of-expectation evaluation.

:func:`make_pairs` renders, for one seed, the possible episode (``impossible=None``) and its impossible twin (same
seed, one scripted violation) with a scripted camera: identical frames up to ``event_frame``, then differing only by
the violation. :func:`make_quadruplets` builds IntPhys-style quadruplets: two possible episodes that differ by the
probed property from the start (object present/absent, colour A/B, shape A/B, position A/B), and two impossible
clips spliced from their frames at the event frame, so the four clips hold the same frames.

This module owns impossible events: the kinds (:data:`IMPOSSIBLE_KINDS`, :data:`HIDDEN_KINDS`), staging one in a
scene (:func:`add_impossible_event`: after generating the possible scene, a dry run of its physics picks the frame of
the violation, while the object is hidden behind the occluder where the scenario has one, and the violation is
added to the scene as :class:`~tdwgym.sim.scene.SceneEvent` data) and applying a scripted event at its step through
the backend's edit methods (:func:`apply_event`). An env's ``impossible`` argument, its
:meth:`~tdwgym.envs.base.TDWRoomEnv.add_impossible_event` and its ``step`` call these; the same seed with
``impossible=None`` gives the possible twin.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from tdwgym.envs.factors import PALETTE
from tdwgym.sim.backends import Contact
from tdwgym.sim.geometry import camera_forward, camera_right
from tdwgym.sim.scene import SceneEvent, SceneSpec, object_from_dict

IMPOSSIBLE_KINDS: tuple[str, ...] = ("vanish", "appear", "teleport", "shape_change", "color_change", "pass_through")
"""Valid values of the ``impossible`` argument (besides None)."""

HIDDEN_KINDS: tuple[str, ...] = ("vanish", "appear", "teleport", "shape_change", "color_change")
"""Impossible kinds that happen while the object is hidden, where the scenario has an occluder."""

DRY_RUN_STEPS = 150
"""Steps of physics simulated to time an impossible event."""

CAMERAS: tuple[str, ...] = ("static", "orbit")
"""Scripted camera paths: the scene's camera held still, or swung +-20 degrees around the look-at point."""

QUADRUPLET_KINDS: tuple[str, ...] = HIDDEN_KINDS
"""Kinds :func:`make_quadruplets` supports (pass_through has no possible counterpart built from the same frames)."""


@dataclass
class MatchedPair:
    """A possible clip and its impossible twin.

    Attributes:
        kind: The impossible kind.
        seed: The reset seed of both episodes.
        possible: (T, H, W, 3) uint8 frames of the possible episode.
        impossible: (T, H, W, 3) uint8 frames of the impossible one.
        event_frame: First frame index the violation can affect (frames before it are identical).
        labels: The impossible episode's scene labels.
        actions: The T - 1 env actions stepped between the frames of both clips: no-ops of the env's action space,
            since the scripted camera is placed directly (with ``camera="static"`` they are exactly what a
            world model conditioned on actions should see).
    """

    kind: str
    seed: int
    possible: np.ndarray
    impossible: np.ndarray
    event_frame: int
    labels: dict[str, Any] = field(default_factory=dict)
    actions: list[Any] = field(default_factory=list)
    extended: int = 0
    """Frames added past the requested length because the twins did not yet differ visibly (``make_pairs`` with
    ``visible=True``); 0 when the pair differed within the length asked for."""

    @property
    def differs(self) -> bool:
        """Whether any pixel differs between the twins from the event frame on (an observer could tell them
        apart)."""
        return bool(np.any(self.possible[self.event_frame :] != self.impossible[self.event_frame :]))


VISIBLE_MAX_EXTRA = 120
"""Frames ``make_pairs(visible=True)`` may add to a pair whose twins do not differ yet (e.g. an object that stays
hidden behind the occluder) before it drops the pair."""


@dataclass
class Quadruplet:
    """Two possible and two impossible clips made of the same frames (IntPhys).

    ``possible[0]`` is the original episode, ``possible[1]`` its counterpart with the probed property changed from
    the start; ``impossible[0]`` is ``possible[0]`` up to ``event_frame`` then ``possible[1]``, and ``impossible[1]``
    the reverse.
    """

    kind: str
    seed: int
    possible: tuple[np.ndarray, np.ndarray]
    impossible: tuple[np.ndarray, np.ndarray]
    event_frame: int
    labels: dict[str, Any] = field(default_factory=dict)


def _check(kinds: Any, env_class: Any, camera: str, frames: int, only: tuple[str, ...] | None = None) -> list[str]:
    """The kinds asked for (default: all the env stages, of ``only``), each checked by the env class's
    ``check_impossible``; ``only`` narrows what this kind of clip supports."""
    supported = [k for k in env_class.SUPPORTED_IMPOSSIBLE if only is None or k in only]
    kinds = supported if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
    for k in kinds:
        if k is None or (only is not None and k not in only):
            raise ValueError(f"unknown impossible kind {k!r} for these clips; valid values are {supported}")
        env_class.check_impossible(k)
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; valid values are {list(CAMERAS)}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    return kinds


def _camera_path(scene: SceneSpec, camera: str, frames: int) -> list[tuple[np.ndarray, float, float]]:
    cam = scene.camera
    eye = np.array(cam.position, dtype=np.float64)
    if camera == "static":
        return [(eye, cam.yaw, cam.pitch)] * frames
    look = scene.labels.get("look_at")
    if look is None:
        look = eye + camera_forward(cam.yaw, cam.pitch) * 3.0
    look = np.array(look, dtype=np.float64)
    rel = eye - look
    path = []
    for t in range(frames):
        angle = math.radians(20.0 * math.sin(2 * math.pi * t / max(frames - 1, 1)))
        c, s = math.cos(angle), math.sin(angle)
        pos = look + np.array([c * rel[0] + s * rel[2], rel[1], -s * rel[0] + c * rel[2]])
        d = look - pos
        yaw = math.degrees(math.atan2(d[0], d[2]))
        pitch = math.degrees(math.atan2(d[1], math.hypot(d[0], d[2])))
        path.append((pos, yaw, pitch))
    return path


def _noop(space: gym.Space) -> Any:
    """The no-op action of a tdwgym action space (discrete 0, ``noop``; continuous all zeros)."""
    return 0 if isinstance(space, gym.spaces.Discrete) else np.zeros(space.shape, dtype=space.dtype)


def _clip(env: gym.Env, scene: SceneSpec, path: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """Frames of ``scene`` (events included) under a scripted camera, no-op actions."""
    base = env.unwrapped
    obs, _ = env.reset(seed=0, options={"scene": scene})
    out = []
    for t, (pos, yaw, pitch) in enumerate(path):
        if t:
            base.set_camera_pose(pos, yaw, pitch)
            obs = base.step(_noop(env.action_space))[0]
        else:
            base.set_camera_pose(pos, yaw, pitch)
            obs = base._observe()
        out.append(obs["rgb"] if isinstance(obs, dict) else obs)
    return np.stack(out)


def _scenes(env_id: str, seed: int, kind: str, env_kwargs: dict[str, Any]) -> tuple[SceneSpec, SceneSpec]:
    """(possible scene, impossible scene) for ``seed``."""
    env = gym.make(env_id, **{**env_kwargs, "resolution": 8})
    try:
        base = env.unwrapped
        base.check_impossible(kind)
        possible = base.sample_scene(seed)
        return possible, base.add_impossible_event(possible, kind)
    finally:
        env.close()


def make_pairs(
    env_id: str,
    seed: int,
    kinds: str | list[str] | None = None,
    frames: int = 60,
    camera: str = "static",
    resolution: int | tuple[int, int] = 64,
    post_frames: int | None = None,
    visible: bool = True,
    **env_kwargs: Any,
) -> list[MatchedPair]:
    """Matched possible/impossible clips of one seed, one pair per kind (a kind the seed's scene cannot stage,
    such as ``pass_through`` for a pair that never meets, is left out).

    Args:
        env_id: A registered ``TDWRoom-*`` id.
        seed: Reset seed; the possible clip is ``reset(seed=seed)`` with ``impossible=None``.
        kinds: Impossible kinds (default: every kind the scenario supports).
        frames: Frames per clip (observation 0 included); must exceed the event frame.
        camera: ``"static"`` or ``"orbit"`` (the same path in both clips).
        resolution: Frame size, an int or (height, width).
        post_frames: Instead of ``frames``: end each pair ``post_frames`` steps after its event, i.e.
            ``event_frame + post_frames + 1`` frames (clips of different kinds then differ in length).
        visible: Guarantee that the twins differ visibly after the event: a pair whose clips are still identical
            at the requested length is extended 30 frames at a time, up to :data:`VISIBLE_MAX_EXTRA` more
            (``MatchedPair.extended`` says by how much), and left out if they never differ. No observer could tell
            such a pair apart. False keeps every pair at the requested length.
        **env_kwargs: More env arguments (``level``, ``split``, ...); ``impossible`` is set here.

    Raises:
        ValueError: On an unknown kind or camera, or when a clip is too short to contain its event.
    """
    env_kwargs.pop("impossible", None)
    env_class = load_env_creator(gym.spec(env_id).entry_point)
    if post_frames is not None and (isinstance(post_frames, bool) or post_frames < 0):
        raise ValueError(f"post_frames must be an int >= 0, got {post_frames!r}")
    kinds_list = _check(kinds, env_class, camera, frames if post_frames is None else 2)
    env = gym.make(env_id, resolution=resolution, obs_mode="rgb", **env_kwargs)
    out = []
    try:
        for kind in kinds_list:
            possible, impossible = _scenes(env_id, seed, kind, env_kwargs)
            if impossible.labels.get("impossible") is None:
                continue  # this seed's scene cannot stage the kind (labels["impossible_skipped"] says why)
            frame = int(impossible.labels["event_frame"])
            n = frames if post_frames is None else frame + int(post_frames) + 1
            if frame >= n:
                raise ValueError(f"{kind}: the event falls at frame {frame}; ask for frames > {frame}")
            extra = 0
            while True:
                path = _camera_path(possible, camera, n + extra)
                pair = MatchedPair(
                    kind=kind,
                    seed=seed,
                    possible=_clip(env, possible, path),
                    impossible=_clip(env, impossible, path),
                    event_frame=frame,
                    labels=dict(impossible.labels),
                    actions=[_noop(env.action_space)] * (n + extra - 1),
                    extended=extra,
                )
                if not visible or pair.differs or extra >= VISIBLE_MAX_EXTRA:
                    break
                extra += 30
            if visible and not pair.differs:
                continue  # the twins never differ: no observer could tell them apart
            out.append(pair)
    finally:
        env.close()
    return out


def _counterpart(scene: SceneSpec, impossible: SceneSpec) -> SceneSpec:
    """The possible scene with the probed property changed from the start."""
    event = impossible.events[0]
    target = scene.object(event.object_id) if event.kind != "add" else None
    if event.kind == "remove":
        return dataclasses.replace(scene, objects=tuple(o for o in scene.objects if o.id != event.object_id))
    if event.kind == "add":
        return dataclasses.replace(scene, events=(dataclasses.replace(event, frame=1),))
    assert target is not None
    if event.kind == "recolor":
        new = dataclasses.replace(target, color=tuple(event.params["color"]))
    elif event.kind == "teleport":
        new = dataclasses.replace(target, position=tuple(np.array(target.position) + event.params["offset"]))
    else:  # replace: the new shape from the start, resting where the old one started
        spec = object_from_dict(event.params["object"])
        y = spec.size[1] / 2 + 0.002 if event.params.get("on_floor") else target.position[1]
        new = dataclasses.replace(
            spec,
            position=(target.position[0], y, target.position[2]),
            velocity=target.velocity,
            angular_velocity=(0.0, 0.0, 0.0),
        )
    return dataclasses.replace(scene, objects=tuple(new if o.id == target.id else o for o in scene.objects))


def make_quadruplets(
    env_id: str,
    seed: int,
    kinds: str | list[str] | None = None,
    frames: int = 60,
    camera: str = "static",
    resolution: int | tuple[int, int] = 64,
    **env_kwargs: Any,
) -> list[Quadruplet]:
    """IntPhys-style quadruplets of one seed, one per kind (arguments as :func:`make_pairs`).

    For ``appear`` the counterpart has the extra object from frame 1; for ``vanish`` it lacks the object from the
    start; ``color_change``, ``shape_change`` and ``teleport`` start the object with the new colour, shape or
    position. Splicing happens while the object is hidden where the scenario has an occluder.
    """
    env_kwargs.pop("impossible", None)
    kinds_list = _check(kinds, load_env_creator(gym.spec(env_id).entry_point), camera, frames, QUADRUPLET_KINDS)
    env = gym.make(env_id, resolution=resolution, obs_mode="rgb", **env_kwargs)
    out = []
    try:
        for kind in kinds_list:
            possible, impossible = _scenes(env_id, seed, kind, env_kwargs)
            if impossible.labels.get("impossible") is None:
                continue  # this seed's scene cannot stage the kind (labels["impossible_skipped"] says why)
            frame = int(impossible.labels["event_frame"])
            if frame >= frames:
                raise ValueError(f"{kind}: the event falls at frame {frame}; ask for frames > {frame}")
            path = _camera_path(possible, camera, frames)
            a = _clip(env, possible, path)
            b = _clip(env, _counterpart(possible, impossible), path)
            i1 = np.concatenate([a[:frame], b[frame:]])
            i2 = np.concatenate([b[:frame], a[frame:]])
            out.append(
                Quadruplet(
                    kind=kind,
                    seed=seed,
                    possible=(a, b),
                    impossible=(i1, i2),
                    event_frame=frame,
                    labels=dict(impossible.labels),
                )
            )
    finally:
        env.close()
    return out


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
        new = dataclasses.replace(
            spec,
            shape=new_shape,
            size=(d, d, d),
            rotation=(0.0, 0.0, 0.0),
            parts=(),
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
    :meth:`~tdwgym.envs.base.TDWRoomEnv.step` calls this at the event's frame)."""
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
        be.remove_object(oid)
        be.add_object(
            dataclasses.replace(
                new,
                position=(float(st.position[0]), y, float(st.position[2])),
                velocity=tuple(float(v) for v in st.velocity),
                angular_velocity=(0.0, 0.0, 0.0),
            )
        )
    elif event.kind == "teleport":
        st = be.object_states()[oid]
        be.set_object_state(oid, position=st.position + np.array(event.params["offset"], dtype=np.float64))
    elif event.kind == "recolor":
        be.set_object_color(oid, event.params["color"])
    elif event.kind == "collision":
        be.set_collision_enabled(oid, int(event.params["other"]), bool(event.params["enabled"]))
