"""Episodes of any env and any policy to video, optionally beside a world model's view (``tdwgym record``).

Without a world model a frame is the env's render with a caption strip (env id, step, push events). With a
:class:`ModelView` (``tdwgym.agents.panels`` makes one from a world model or a run folder), a frame has four panels
side by side: the observation, the world model's prediction of it, a per-pixel error heatmap, and a running plot of
the intrinsic reward (the model's surprise); see :func:`tdwgym.tools.video.compose_panels`.

Policies (see :mod:`tdwgym.tools.policies`): the built-in ``random``, ``static``, ``orbit`` (a scripted camera orbit)
and ``seek`` (a scripted pusher), or a stored one (a stable-baselines3 ``.zip``, a training run folder). Files are
named ``<root>/videos/<env_id>-<policy>-seed<seed>.mp4`` (root: ``runs``, or the run folder of
``tdwgym record --run``).

:func:`record_with_gym` records through Gymnasium's own ``RecordVideo`` wrapper instead.

    record_episode("TDWRoom-Occlusion-v0", policy="orbit", steps=120)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.tools.policies import BUILTIN_POLICIES, load_policy
from tdwgym.tools.video import (
    BOX_PANEL_TITLES,
    CAPTION_HEIGHT,
    PANEL_TITLES,
    compose_panels,
    error_heatmap,
    fit_text,
    fits,
    reward_plot,
    write_video,
)
from tdwgym.util.progress_bar import progress_bar

__all__ = [
    "DEFAULT_ENV",
    "PUSH_MARKERS",
    "ModelView",
    "caption",
    "check_recording",
    "default_video_path",
    "mark_push",
    "record_episode",
    "record_with_gym",
]

DEFAULT_ENV = "TDWRoom-Occlusion-v0"
"""Env of ``tdwgym record`` when neither ``--env`` nor ``--run`` names one."""

PUSH_MARKERS: dict[str, tuple[int, int, int]] = {"moved": (0, 200, 0), "hit": (200, 200, 0)}
"""Border colours of a frame whose step pushed: green when the push moved an object, yellow when it only hit one."""


def mark_push(frame: np.ndarray, info: dict[str, Any], top: int = 0, width: int = 4) -> np.ndarray:
    """Frame a picture in the colour of the step's push (:data:`PUSH_MARKERS`); unchanged when nothing was hit.

    Args:
        frame: ``(h, w, 3)`` uint8, drawn on in place.
        info: The step's ``info`` (its ``push`` entry).
        top: First row of the picture (below a caption strip).
        width: Border width in pixels.

    Returns:
        ``frame``.
    """
    push = info.get("push") or {}
    colour = PUSH_MARKERS["moved"] if push.get("moved") else PUSH_MARKERS["hit"] if push.get("hit") else None
    if colour is not None:
        frame[top : top + width] = colour
        frame[-width:] = colour
        frame[top:, :width] = colour
        frame[top:, -width:] = colour
    return frame


def default_video_path(
    env_id: str,
    policy: str,
    seed: int,
    run_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = "runs",
    ext: str = ".mp4",
) -> Path:
    """``<run_dir or root>/videos/<env_id>-<policy>-seed<seed><ext>``."""
    base = Path(run_dir) if run_dir is not None else Path(root)
    safe_policy = "".join(c if c.isalnum() or c in "-_." else "_" for c in policy)
    return base / "videos" / f"{env_id}-{safe_policy}-seed{seed}{ext}"


def _push_text(info: dict[str, Any]) -> str:
    push = info.get("push") or {}
    if not push.get("attempted"):
        text = ""
    elif push.get("moved"):
        text = f"push: moved #{push.get('object_id')}"
    elif push.get("hit"):
        text = f"push: hit #{push.get('object_id')}"
    else:
        text = "push: missed"
    events = info.get("events") or []
    if events:
        text = (text + "  " if text else "") + "event: " + ", ".join(map(str, events))
    return text


def caption(env_id: str, label: str, t: int, steps: int, note: str, width: int) -> list[str]:
    """The two caption lines of a recorded frame, made to fit a strip ``width`` pixels wide.

    The first layout whose fixed part (env, step counter at its widest, policy) fits is taken, so the layout stays
    the same through a video: the full id with ``step t/steps  policy NAME``; the short env name
    (:func:`tdwgym.registration.short_names`) with ``t/steps`` and the policy name, on one line or two; the short
    name over ``t/steps``. ``note`` (the push, events, episode end) follows on the second line when it fits, else
    without its ``push:``/``event:`` labels, else its first part only, else it is left out (the frame's coloured
    border still marks a push). A name that fits no layout is cut with ``..``.
    """
    from tdwgym.registration import short_names

    short = {v: k for k, v in short_names().items()}.get(env_id, env_id)

    def layouts(step: str) -> list[tuple[str, str]]:
        return [
            (f"{env_id}  step {step}  policy {label}", ""),
            (f"{short}  step {step}  {label}", ""),
            (f"{short}  {step}  {label}", ""),
            (f"{short}  {step}", label),
            (short, f"{step}  {label}"),
            (short, step),
        ]

    widest = layouts(f"{steps}/{steps}")
    pick = next((i for i, lines in enumerate(widest) if fits(lines, width)), len(widest) - 1)
    first, second = layouts(f"{t}/{steps}")[pick]
    if note:
        bare = note.replace("push: ", "").replace("event: ", "")
        for text in (note, bare, bare.split("  ")[0]):
            joined = f"{second}  {text}" if second else text
            if fits([joined], width):
                second = joined
                break
    return [fit_text(first, width), fit_text(second, width)]


class ModelView(Protocol):
    """A world model's view of an episode, drawn in panels beside the observation (``tdwgym.agents.panels`` makes
    one from a world model)."""

    @property
    def seen(self) -> np.ndarray:
        """The latest observation as the model saw it, ``(h, w, 3)`` uint8."""

    def reset(self, obs: np.ndarray) -> None:
        """Start an episode at ``obs``."""

    def step(self, action: Any, obs: np.ndarray, action_space: gym.Space) -> tuple[float, np.ndarray | None]:
        """Score the transition to ``obs`` after ``action``: the surprise and the predicted frame (or None).

        A view whose ``passes`` attribute names more than ``"rgb"`` gets ``obs`` as a dict of those render passes,
        and one whose ``draws_boxes`` is true returns in place of a predicted frame a picture of what it expected
        (no error panel is drawn then)."""


def check_recording(steps: int, out: str | os.PathLike | None) -> None:
    """Refuse a recording's arguments before anything is loaded or recorded.

    Raises:
        ValueError: ``steps`` below 1, or ``out`` neither .mp4 nor .gif.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if out is not None and Path(out).suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"unsupported video extension {Path(out).suffix!r}; use .mp4 or .gif")


def record_episode(
    env_id: str,
    out: str | os.PathLike | None = None,
    policy: str = "random",
    steps: int = 300,
    seed: int = 0,
    panel_size: int = 128,
    fps: float | None = None,
    gif: bool = False,
    progress: bool = True,
    device: str = "auto",
    env_kwargs: dict[str, Any] | None = None,
    model_view: ModelView | None = None,
    root: str | os.PathLike = "runs",
    pushes: list[int] | None = None,
) -> Path:
    """Record one episode (``steps`` steps from ``reset(seed=seed)``) to video.

    A frame whose step pushed is framed in green when the push moved an object, in yellow when it only hit one
    (:func:`mark_push`), and its caption says which object.

    Args:
        env_id: Gymnasium id.
        out: Output file (.mp4 or .gif); default :func:`default_video_path` under ``root``.
        policy: Built-in name, or a stored policy (see :func:`tdwgym.tools.policies.load_policy`).
        steps: Env steps; the video has ``steps + 1`` frames (the reset frame first).
        seed: Seed of the scene and the policy.
        panel_size: Pixel edge of each panel (plain recordings render the env at this size).
        fps: Frames per second; default the env's ``metadata["render_fps"]``.
        gif: Write a GIF instead of an mp4 when ``out`` is not given.
        progress: Show a progress bar.
        device: Torch device of a stored policy (``"auto"``: CUDA when available).
        env_kwargs: Extra ``gym.make`` arguments.
        model_view: A world model's view: adds the prediction, error and reward panels (the env then observes
            rgb). ``tdwgym.agents.panels.record_episode`` makes it from a world model or a run folder.
        root: Folder of the default file name.
        pushes: If given, the steps whose push moved an object are appended to it.

    Returns:
        The video's path.
    """
    check_recording(steps, out)
    kwargs = dict(env_kwargs or {})
    stepper = model_view
    wants: tuple[str, ...] = tuple(getattr(stepper, "passes", ("rgb",))) if stepper is not None else ("rgb",)
    boxes = bool(getattr(stepper, "draws_boxes", False))
    if stepper is not None:
        kwargs["obs_mode"] = "rgb"  # the policy sees RGB; a model that reads more takes it from the same render
        if "depth" in wants:
            kwargs["extra_passes"] = ("depth",)
    env = gym.make(env_id, render_mode="rgb_array", render_size=panel_size, **kwargs)
    try:
        pol = load_policy(policy, env, seed=None, device=device)
        label = pol.name
        if out is None:
            out = default_video_path(env_id, label, seed, root=root, ext=".gif" if gif else ".mp4")
        fps = float(fps or env.metadata.get("render_fps", 30))
        obs, info = env.reset(seed=seed)
        pol.reset(seed)
        rewards: list[float] = []
        frames = []

        width = panel_size * (1 if stepper is None else 4)

        def frame(obs: Any, info: dict[str, Any], t: int, pred: np.ndarray | None, end: bool = False) -> np.ndarray:
            note = "  ".join(x for x in (_push_text(info), "episode end" if end else "") if x)
            lines = caption(env_id, label, t, steps, note, width)
            if stepper is None:
                picture = compose_panels([env.render()], lines, panel_size)
            else:
                seen = stepper.seen  # the observation at the world model's size (it may be smaller)
                err = error_heatmap(pred, seen) if pred is not None and not boxes else None
                plot = reward_plot(rewards, panel_size, length=steps + 1)
                titles = BOX_PANEL_TITLES if boxes else PANEL_TITLES
                picture = compose_panels([seen, pred, err, plot], lines, panel_size, titles=titles)
            return mark_push(picture, info, top=CAPTION_HEIGHT) if t > 0 else picture

        def view(obs: Any) -> Any:
            """What the world model reads of an observation: RGB, or the render passes it asks for."""
            if len(wants) <= 1:
                return obs
            last = env.unwrapped.last_frames
            return {"rgb": obs, **{k: last[k] for k in wants if k != "rgb"}}

        if stepper is not None:
            stepper.reset(view(obs))
        frames.append(frame(obs, info, 0, None))
        with progress_bar(total=steps, desc=f"record {env_id} ({label})", unit="step", enabled=progress) as bar:
            for t in range(1, steps + 1):
                action = pol(obs)
                obs, _, terminated, truncated, info = env.step(action)
                pred = None
                if stepper is not None:
                    surprise, pred = stepper.step(action, view(obs), env.action_space)
                    rewards.append(surprise)
                frames.append(frame(obs, info, t, pred, end=terminated or truncated))
                if pushes is not None and (info.get("push") or {}).get("moved"):
                    pushes.append(t)
                if terminated or truncated:
                    obs, info = env.reset()
                    pol.reset()
                    if stepper is not None:
                        stepper.reset(view(obs))
                bar.update()
    finally:
        env.close()
    return write_video(frames, out, fps=fps)


def record_with_gym(
    env_id: str,
    video_folder: str | os.PathLike,
    policy: str = "random",
    steps: int = 300,
    seed: int = 0,
    render_size: int = 256,
    name_prefix: str | None = None,
    **env_kwargs: Any,
) -> list[Path]:
    """Record with Gymnasium's ``RecordVideo`` wrapper (plain frames, one file per episode, its own file names).

    Returns:
        The video files written (``<name_prefix>-episode-<n>.mp4``).
    """
    from gymnasium.wrappers import RecordVideo

    env = gym.make(env_id, render_mode="rgb_array", render_size=render_size, **env_kwargs)
    prefix = name_prefix or f"{env_id}-{policy if policy in BUILTIN_POLICIES else 'agent'}-seed{seed}"
    env = RecordVideo(env, str(video_folder), episode_trigger=lambda _: True, name_prefix=prefix, disable_logger=True)
    try:
        pol = load_policy(policy, env, seed=None)
        obs, _ = env.reset(seed=seed)
        pol.reset(seed)
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(pol(obs))
            if terminated or truncated:
                obs, _ = env.reset()
                pol.reset()
    finally:
        env.close()
    return sorted(Path(video_folder).glob(f"{prefix}-episode-*.mp4"))
