"""Matched possible/impossible clips for violation-of-expectation evaluation.

:func:`make_pairs` renders, for one seed, the possible episode (``impossible=None``) and its impossible twin (same
seed, one scripted violation, :mod:`tdwgym.envs.impossible`) with a scripted camera: identical frames up to
``event_frame``, then differing only by the violation. :func:`make_quadruplets` builds IntPhys-style quadruplets: two
possible episodes that differ by the probed property from the start (object present/absent, colour A/B, shape A/B,
position A/B), and two impossible clips spliced from their frames at the event frame, so the four clips hold the same
frames. Both return RGB and, when asked, the segmentation and depth passes of the same frames.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from tdwgym.envs.impossible import HIDDEN_KINDS, rolling_spin
from tdwgym.envs.twin_rules import (  # noqa: F401 - the rules are part of this module's interface too
    CLEAR_FRAMES,
    OTHERS_TOLERANCE,
    SEEN_FRAMES,
    SLIDE_DISTANCE,
    VISIBLE_FRAMES,
    VISIBLE_MAX_EXTRA,
    comes_out,
    frames_showing_difference,
    matched_motion,
    others_unchanged,
    seen_before,
    slide_far,
    slide_friction,
    visible_pixels,
)
from tdwgym.sim.geometry import camera_forward
from tdwgym.sim.scene import SceneError, SceneSpec, object_from_dict

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
    passes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Other render passes asked for (``make_pairs(passes=...)``), by name: ``(possible, impossible)`` clips,
    ``"segmentation"`` as (T, H, W) int32 object ids (0 is the room), ``"depth"`` as (T, H, W) float32 metres."""

    @property
    def differs(self) -> bool:
        """Whether any pixel differs between the twins from the event frame on (an observer could tell them
        apart)."""
        return bool(np.any(self.possible[self.event_frame :] != self.impossible[self.event_frame :]))


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
    extended: int = 0
    """Frames added past the requested length because the clips did not yet differ after the event."""
    passes: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    """Other render passes asked for (``make_quadruplets(passes=...)``), by name: ``(possible, impossible)``, each a
    pair of clips laid out as :attr:`possible` and :attr:`impossible` (segmentation int32 ids, depth float32 m)."""


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


EXTRA_PASSES: tuple[str, ...] = ("segmentation", "depth")
"""Render passes :func:`make_pairs` and :func:`make_quadruplets` can return beside RGB (``passes=...``)."""


def _check_passes(passes: Any) -> tuple[str, ...]:
    names = (passes,) if isinstance(passes, str) else tuple(passes)
    bad = [p for p in names if p not in ("rgb", *EXTRA_PASSES)]
    if bad:
        raise ValueError(f"unknown render pass {bad[0]!r}; valid passes are {['rgb', *EXTRA_PASSES]}")
    return tuple(p for p in EXTRA_PASSES if p in names)


def _splice(x: np.ndarray, y: np.ndarray, frame: int) -> np.ndarray:
    """``x`` up to ``frame``, then ``y``."""
    return np.concatenate([x[:frame], y[frame:]])


def splice_frame(seg: tuple[np.ndarray, np.ndarray], frame: int, targets: Any) -> int | None:
    """Where to splice two possible clips into impossible ones so that no pixel jump gives the splice away: a frame
    ``k`` such that the probed objects ``targets`` (ids) cover no pixel of either clip's segmentation (``(T, H, W)``
    each) in frames ``k - 1`` and ``k``. Then the frames on either side of the cut show the same scene in both
    clips (the probed objects hidden), and the step across the cut changes about as many pixels as the possible
    clips' own steps there: copy-last and motion energy cannot find the impossible clip by its jump.

    Returns:
        ``frame`` itself when it qualifies; else the middle of the run of qualifying frames nearest to ``frame``
        (earlier on a tie); None when no frame from 1 on qualifies (the probed objects are in view in one clip or
        the other at every frame: e.g. a teleported object already out on the far side while the original is still
        behind the occluder).
    """
    ids = np.atleast_1d(np.asarray(targets, dtype=seg[0].dtype))
    n = min(len(seg[0]), len(seg[1]))
    shows = np.zeros(n, dtype=bool)
    for s in seg:
        shows |= np.isin(s[:n], ids).reshape(n, -1).any(1)
    ok = np.zeros(n, dtype=bool)
    ok[1:] = ~shows[1:] & ~shows[:-1]
    if 0 < frame < n and ok[frame]:
        return int(frame)
    runs, k = [], 1
    while k < n:
        if not ok[k]:
            k += 1
            continue
        start = k
        while k < n and ok[k]:
            k += 1
        runs.append((start, k - 1))
    if not runs:
        return None

    def distance(run: tuple[int, int]) -> tuple[int, int]:
        lo, hi = run
        return (max(lo - frame, frame - hi, 0), lo)

    lo, hi = min(runs, key=distance)
    return (lo + hi) // 2


def _noop(space: gym.Space) -> Any:
    """The no-op action of a tdwgym action space (discrete 0, ``noop``; continuous all zeros)."""
    return 0 if isinstance(space, gym.spaces.Discrete) else np.zeros(space.shape, dtype=space.dtype)


class _Film:
    """The clip of one scene under a scripted camera (no-op actions), filmed in an env of its own: asked again for a
    path that begins with the path already filmed (a clip extended by ``visible=True``), it films only the new
    frames, going on from where the simulation stopped. Those are the frames a new take from the reset would
    replay, bit for bit: the env is left alone in between and the same steps run in the same order. A path that
    does not begin so (the orbit camera's path changes with the clip's length) starts a new take."""

    def __init__(self, env: gym.Env, scene: SceneSpec, passes: tuple[str, ...] = ()) -> None:
        self.env, self.scene = env, scene
        self.passes = tuple(dict.fromkeys((*passes, "segmentation")))  # every env renders it; visible=True reads it
        self.path: list[tuple[np.ndarray, float, float]] = []
        self.rgb: list[np.ndarray] = []
        self.extra: dict[str, list[np.ndarray]] = {name: [] for name in self.passes}
        self.positions: list[dict[int, np.ndarray]] = []
        """Per frame filmed: every object's position (metres), from the simulation."""

    def clip(self, path: list[tuple[np.ndarray, float, float]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Frames of the scene (events included) along ``path``: the RGB clip and the clips of the other passes
        and segmentation (rendered by the same calls, so every pass shows the same instant)."""
        done = len(self.path)
        if done > len(path) or not all(_same_pose(a, b) for a, b in zip(self.path, path, strict=False)):
            self.path, self.rgb, self.extra = [], [], {name: [] for name in self.passes}
            self.positions = []
        base = self.env.unwrapped
        for t in range(len(self.path), len(path)):
            pos, yaw, pitch = path[t]
            if t == 0:
                self.env.reset(seed=0, options={"scene": self.scene})
            base.set_camera_pose(pos, yaw, pitch)
            obs = base.step(_noop(self.env.action_space))[0] if t else base._observe()
            self.rgb.append(obs["rgb"] if isinstance(obs, dict) else obs)
            for name in self.passes:
                frame = base.last_frames[name]
                self.extra[name].append(frame.astype(np.int32 if name == "segmentation" else np.float32, copy=False))
            self.positions.append({k: np.array(v.position, float) for k, v in base.backend.object_states().items()})
            self.path.append(path[t])
        n = len(path)
        return np.stack(self.rgb[:n]), {name: np.stack(v[:n]) for name, v in self.extra.items()}


def _same_pose(a: tuple[np.ndarray, float, float], b: tuple[np.ndarray, float, float]) -> bool:
    return bool(np.array_equal(a[0], b[0])) and a[1] == b[1] and a[2] == b[2]


def _scenes(env_id: str, seed: int, kind: str, env_kwargs: dict[str, Any]) -> tuple[SceneSpec, SceneSpec]:
    """(possible scene, impossible scene) for ``seed``; pass_through twins get :func:`matched_motion`, and twins
    behind an occluder :func:`slide_far` (the event's object, and the cube a ``shape_change`` makes of a ball)."""
    env = gym.make(env_id, **{**env_kwargs, "resolution": 8})
    try:
        base = env.unwrapped
        base.check_impossible(kind)
        possible = base.sample_scene(seed)
        if kind == "pass_through" and "pass_through_pair" in possible.labels and "meeting_point" in possible.labels:
            possible = matched_motion(possible)
        hidden = kind in HIDDEN_KINDS and possible.labels.get("occluder_id") is not None
        target = int(possible.labels.get("event_object", 1))
        if hidden:
            possible = slide_far(possible, target)
        impossible = base.add_impossible_event(possible, kind)
        event = impossible.events[0] if impossible.events else None
        if hidden and event is not None and event.kind == "replace":
            # the new shape slows as little as the old one: a ball turned cube slides as far as a slider would
            new = object_from_dict(event.params["object"])
            friction = slide_friction(dataclasses.replace(new, velocity=possible.object(target).velocity))
            params = {**event.params, "object": {**event.params["object"], "friction": friction}}
            impossible = dataclasses.replace(impossible, events=(dataclasses.replace(event, params=params),))
        return possible, impossible
    finally:
        env.close()


def _probed(impossible: SceneSpec) -> set[int]:
    """The objects a twin probes: the event's object, and the object an ``add`` event brings."""
    ids = {int(impossible.labels["event_object"])}
    event = impossible.events[0] if impossible.events else None
    if event is not None and event.kind == "add":
        ids.add(int(event.object_id))
    return ids


def _shown(rgb: tuple, passes: tuple, frame: int, impossible: SceneSpec) -> int:
    seg = (passes[0]["segmentation"], passes[1]["segmentation"])
    return frames_showing_difference(rgb, seg, frame, sorted(_probed(impossible)))


def _out(seg: np.ndarray, impossible: SceneSpec, frame: int, scene: SceneSpec | None = None) -> bool:
    """Whether the probed objects the clip of ``scene`` holds (default: the possible scene's event object) come
    out from behind the occluder after ``frame`` (:func:`comes_out`)."""
    ids = _probed(impossible) if scene is not None else {int(impossible.labels["event_object"])}
    present = {o.id for o in scene.objects} if scene is not None else ids
    occluder = impossible.labels.get("occluder_id")
    return all(comes_out(seg, oid, frame, occluder) for oid in ids & present)


def _seen(seg: np.ndarray, impossible: SceneSpec, frame: int, scene: SceneSpec | None = None) -> bool:
    """Whether the probed objects the clip of ``scene`` holds (default: the possible scene, which holds the event's
    object) are seen before the event."""
    ids = _probed(impossible) if scene is not None else {int(impossible.labels["event_object"])}
    present = {o.id for o in scene.objects} if scene is not None else ids
    return all(seen_before(seg, oid, frame) for oid in ids & present)


def make_pairs(
    env_id: str,
    seed: int,
    kinds: str | list[str] | None = None,
    frames: int = 60,
    camera: str = "static",
    resolution: int | tuple[int, int] = 64,
    post_frames: int | None = None,
    visible: bool = True,
    passes: str | tuple[str, ...] = ("rgb",),
    **env_kwargs: Any,
) -> list[MatchedPair]:
    """Matched possible/impossible clips of one seed, one pair per kind (a kind the seed's scene cannot stage,
    such as ``pass_through`` for a pair that never meets, is left out). ``pass_through`` twins are staged on the
    seed's scene with :func:`matched_motion`, so that bouncing and passing through move the same amount.

    Args:
        env_id: A registered ``TDWRoom-*`` id.
        seed: Reset seed; the possible clip is ``reset(seed=seed)`` with ``impossible=None``.
        kinds: Impossible kinds (default: every kind the scenario supports).
        frames: Frames per clip (observation 0 included); must exceed the event frame.
        camera: ``"static"`` or ``"orbit"`` (the same path in both clips).
        resolution: Frame size, an int or (height, width).
        post_frames: Instead of ``frames``: end each pair ``post_frames`` steps after its event, i.e.
            ``event_frame + post_frames + 1`` frames (clips of different kinds then differ in length).
        visible: Guarantee that the twins differ in view after the event: a pair whose clips do not yet show their
            difference in :data:`VISIBLE_FRAMES` frames (:func:`frames_showing_difference`: on the probed
            objects, not shading) at the requested length is extended 30 frames at a time, up to
            :data:`VISIBLE_MAX_EXTRA` more
            (``MatchedPair.extended`` says by how much), and left out if they never do, if the event's object
            is not seen in :data:`SEEN_FRAMES` frames before the event (:func:`seen_before`), or if in the possible
            clip it does not come out from behind the occluder after the event (:func:`comes_out`; the pair is
            extended while it has not yet). No observer could tell such a pair apart. The rule reads the clips
            only. False keeps every pair at the requested length. Behind an occluder the event's object slides on
            :func:`slide_friction` either way.
        passes: Render passes to return: RGB always (``possible``, ``impossible``), and ``"segmentation"`` and
            ``"depth"`` in :attr:`MatchedPair.passes` when named (object-centric models read them).
        **env_kwargs: More env arguments (``level``, ``split``, ...); ``impossible`` is set here.

    Returns:
        One :class:`MatchedPair` per kind the seed can stage. Both clips of a pair have the same length
        ``T = frames + pair.extended`` (with ``post_frames``: ``event_frame + post_frames + 1 + pair.extended``).
        ``frames`` is therefore the shortest length, not the length: with ``visible=True`` (the default) a pair whose
        twins do not differ yet is longer by a multiple of 30 up to :data:`VISIBLE_MAX_EXTRA` (``frames=60`` can
        give 90-frame clips). Pass ``visible=False`` for clips of exactly ``frames``.

    Raises:
        ValueError: On an unknown kind, camera or pass, or when a clip is too short to contain its event.
    """
    env_kwargs.pop("impossible", None)
    extra_passes = _check_passes(passes)
    env_class = load_env_creator(gym.spec(env_id).entry_point)
    if post_frames is not None and (isinstance(post_frames, bool) or post_frames < 0):
        raise ValueError(f"post_frames must be an int >= 0, got {post_frames!r}")
    kinds_list = _check(kinds, env_class, camera, frames if post_frames is None else 2)
    # one env per clip of a pair, so that each can go on filming when the pair is extended (_Film)
    envs = [
        gym.make(env_id, resolution=resolution, obs_mode="rgb", extra_passes=extra_passes, **env_kwargs)
        for _ in range(2)
    ]
    env = envs[0]
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
            films = (_Film(envs[0], possible, extra_passes), _Film(envs[1], impossible, extra_passes))
            extra = 0
            while True:
                path = _camera_path(possible, camera, n + extra)
                (a, a_extra), (b, b_extra) = (films[0].clip(path), films[1].clip(path))
                pair = MatchedPair(
                    kind=kind,
                    seed=seed,
                    possible=a,
                    impossible=b,
                    event_frame=frame,
                    labels=dict(impossible.labels),
                    actions=[_noop(env.action_space)] * (n + extra - 1),
                    extended=extra,
                    passes={name: (a_extra[name], b_extra[name]) for name in extra_passes},
                )
                shown = pair.differs and _shown((a, b), (a_extra, b_extra), frame, impossible) >= VISIBLE_FRAMES
                out_again = _out(a_extra["segmentation"], impossible, frame)
                if not visible or (shown and out_again) or extra >= VISIBLE_MAX_EXTRA:
                    break
                extra += 30
            if visible and not (shown and out_again and _seen(a_extra["segmentation"], impossible, frame)):
                continue  # the twins never differ in view, the target is never seen before, or the possible one
            out.append(pair)  # never comes out from behind the occluder: no observer could tell them apart
    finally:
        for e in envs:
            e.close()
    return out


def _counterpart(env: gym.Env, scene: SceneSpec, impossible: SceneSpec) -> SceneSpec:
    """The possible scene with the probed property changed from the start (``env`` runs the possible scene up to
    the event where the counterpart needs to know where the target is then)."""
    event = impossible.events[0]
    if event.kind == "remove":
        return dataclasses.replace(scene, objects=tuple(o for o in scene.objects if o.id != event.object_id))
    if event.kind == "add":
        # the added object on a parallel track from the start: where the target starts, shifted by the offset at
        # which the event places it beside the target, moving as the target moves; it comes in, hides and comes
        # out with the target (added at its event-time place instead, it would come out of nowhere, early)
        tgt = int(impossible.labels["event_object"])
        env.reset(seed=0, options={"scene": dataclasses.replace(scene, events=())})
        for _ in range(int(impossible.labels["event_frame"]) - 1):
            env.unwrapped.step(_noop(env.action_space))
        at = np.array(env.unwrapped.backend.object_states()[tgt].position)
        spec = object_from_dict(event.params["object"])
        start = scene.object(tgt)
        offset = (np.array(spec.position) - at) * [1, 0, 1]
        added = dataclasses.replace(
            spec,
            position=tuple(float(v) for v in np.array(start.position) + offset),
            velocity=start.velocity,
            angular_velocity=start.angular_velocity,
            rotation=start.rotation,
        )
        return dataclasses.replace(scene, objects=(*scene.objects, added), events=())
    target = scene.object(event.object_id)
    if event.kind == "recolor":
        new = dataclasses.replace(target, color=tuple(event.params["color"]))
    elif event.kind == "teleport":
        # behind an occluder the teleport jumps along the path; the counterpart starts that far *back* along it
        # (it comes into view, hides and comes out as the original does, later): shifted forward it would often
        # start behind the occluder, never seen before the splice (splice_frame needs it hidden in both clips)
        sign = -1.0 if impossible.labels.get("event_hidden") else 1.0
        shift = sign * np.array(event.params["offset"], dtype=np.float64)
        new = dataclasses.replace(target, position=tuple(float(v) for v in np.array(target.position) + shift))
    else:  # replace: the new shape from the start, where the old one started, moving as the event's object moves
        spec = object_from_dict(event.params["object"])
        y = spec.size[1] / 2 + 0.002 if event.params.get("on_floor") else target.position[1]
        spin = rolling_spin(target.velocity, spec.size[0] / 2) if spec.shape == "sphere" else (0.0, 0.0, 0.0)
        new = dataclasses.replace(
            spec,
            position=(target.position[0], y, target.position[2]),
            velocity=target.velocity,
            angular_velocity=spin if event.params.get("on_floor") else (0.0, 0.0, 0.0),
        )
    return dataclasses.replace(scene, objects=tuple(new if o.id == target.id else o for o in scene.objects))


def make_quadruplets(
    env_id: str,
    seed: int,
    kinds: str | list[str] | None = None,
    frames: int = 60,
    camera: str = "static",
    resolution: int | tuple[int, int] = 64,
    passes: str | tuple[str, ...] = ("rgb",),
    post_frames: int | None = None,
    visible: bool = True,
    **env_kwargs: Any,
) -> list[Quadruplet]:
    """IntPhys-style quadruplets of one seed, one per kind (arguments as :func:`make_pairs`; with ``visible`` a
    quadruplet whose two possible clips do not yet show their difference after the event in :data:`VISIBLE_FRAMES`
    frames is extended 30 frames at a time, up to :data:`VISIBLE_MAX_EXTRA` more, and left out if they never do,
    or if either possible clip does not show the event's object (and the object an ``appear`` adds) in
    :data:`SEEN_FRAMES` frames before the event: a possible clip in which it first comes into view after the event
    is, to any observer, a clip in which it comes from nowhere), or if in either possible clip a probed object it
    holds does not come out from behind the occluder after the splice (:func:`comes_out`; extended while it has not
    yet: a possible clip whose object stays hidden is a vanish to any observer), or if the change moves another
    object off its path (:func:`others_unchanged`, from the simulation's positions: the possible clips must differ
    by the probed property alone). Behind an occluder the event's object, and the cube ``shape_change`` makes of a
    ball, slide on :func:`slide_friction` (they keep their speed while hidden, as a rolling ball does). A kind whose
    counterpart scene is not valid (the changed object starts interpenetrating another or outside the room, which
    :class:`~tdwgym.sim.scene.SceneSpec` refuses) is left out too.

    For ``appear`` the counterpart has the extra object from the start on a track beside the target's (it comes in,
    hides and comes out with the target); for ``vanish`` it lacks the object from the start; ``color_change`` and
    ``shape_change`` start the object with the new colour or shape; for ``teleport`` behind an occluder the object
    starts as far back along its path as the teleport would jump it forward (seen coming in, hiding and coming out
    later than in the original; elsewhere it starts where the teleport moves it). Every frame after
    the event appears once among the possible clips and once among the impossible ones. Where the event happens
    behind an occluder (``labels["event_hidden"]``), the clips are spliced at a frame where the probed objects are
    hidden in *both* possible clips (:func:`splice_frame`; the event frame itself when it is one), and
    :attr:`Quadruplet.event_frame` is that frame: spliced where one clip shows the object (a teleported object
    already out on the far side), the impossible clips would jump by visible pixels, which copy-last and motion
    energy score without any physics. With ``visible``, a quadruplet without such a frame is left out.
    """
    env_kwargs.pop("impossible", None)
    extra_passes = _check_passes(passes)
    if post_frames is not None and (isinstance(post_frames, bool) or post_frames < 0):
        raise ValueError(f"post_frames must be an int >= 0, got {post_frames!r}")
    env_class = load_env_creator(gym.spec(env_id).entry_point)
    kinds_list = _check(kinds, env_class, camera, frames if post_frames is None else 2, QUADRUPLET_KINDS)
    # one env per clip of a pair, so that each can go on filming when the pair is extended (_Film)
    envs = [
        gym.make(env_id, resolution=resolution, obs_mode="rgb", extra_passes=extra_passes, **env_kwargs)
        for _ in range(2)
    ]
    env = envs[0]
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
            try:
                counterpart = _counterpart(env, possible, impossible)
            except SceneError:
                continue  # its counterpart starts with bodies interpenetrating or outside the room: no valid scene
            hidden = bool(impossible.labels.get("event_hidden"))
            films = (_Film(envs[0], possible, extra_passes), _Film(envs[1], counterpart, extra_passes))
            extra = 0
            while True:
                path = _camera_path(possible, camera, n + extra)
                (a, a_extra), (b, b_extra) = (films[0].clip(path), films[1].clip(path))
                cut, hidden_cut = frame, True
                if hidden:  # splice where the probed objects are hidden in both clips (no jump of visible pixels)
                    found = splice_frame(
                        (a_extra["segmentation"], b_extra["segmentation"]), frame, sorted(_probed(impossible))
                    )
                    cut = frame if found is None or found >= n + extra - 1 else found
                    hidden_cut = found is not None and cut == found
                differ = bool(np.any(a[cut:] != b[cut:]))
                shown = differ and _shown((a, b), (a_extra, b_extra), cut, impossible) >= VISIBLE_FRAMES
                out_again = _out(a_extra["segmentation"], impossible, cut, possible) and _out(
                    b_extra["segmentation"], impossible, cut, counterpart
                )
                if not visible or (shown and out_again) or extra >= VISIBLE_MAX_EXTRA:
                    break
                extra += 30
            seen = _seen(a_extra["segmentation"], impossible, cut) and _seen(
                b_extra["segmentation"], impossible, cut, counterpart
            )
            alone = others_unchanged((films[0].positions, films[1].positions), sorted(_probed(impossible)))
            if visible and not (shown and seen and out_again and alone and hidden_cut):
                continue  # the counterparts never differ in view after the event, what they probe is not seen
                # before it or does not come out from behind the occluder after it in a possible clip, the change
                # moves other objects too, or no frame hides it in both clips: no observer could tell the clips
                # apart, or any could by the jump at the splice
            frame = cut
            out.append(
                Quadruplet(
                    kind=kind,
                    seed=seed,
                    possible=(a, b),
                    impossible=(_splice(a, b, frame), _splice(b, a, frame)),
                    event_frame=frame,
                    labels=dict(impossible.labels),
                    extended=extra,
                    passes={
                        name: (
                            (a_extra[name], b_extra[name]),
                            (
                                _splice(a_extra[name], b_extra[name], frame),
                                _splice(b_extra[name], a_extra[name], frame),
                            ),
                        )
                        for name in extra_passes
                    },
                )
            )
    finally:
        for e in envs:
            e.close()
    return out
