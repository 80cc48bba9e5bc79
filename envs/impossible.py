"""Matched possible/impossible clips for violation-of-expectation evaluation.

:func:`make_pairs` renders, for one seed, the possible episode (``impossible=None``) and its impossible twin (same
seed, one scripted violation) with a scripted camera: identical frames up to ``event_frame``, then differing only by
the violation. :func:`make_quadruplets` builds IntPhys-style quadruplets: two possible episodes that differ by the
probed property from the start (object present/absent, colour A/B, shape A/B, position A/B), and two impossible
clips spliced from their frames at the event frame, so the four clips hold the same frames.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from tdwgym.envs.base import HIDDEN_KINDS
from tdwgym.sim.geometry import camera_forward
from tdwgym.sim.scene import SceneSpec, object_from_dict

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
