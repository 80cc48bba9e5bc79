"""Keyboard play: drive the camera and push objects with the keyboard (Gymnasium's play utility on pygame); the
``tdwgym play`` command is :mod:`tdwgym.commands.play`.

Keys (discrete actions): W/S forward/back, A/D strafe, left/right arrows turn, up/down arrows look up/down, space
pushes, Esc quits. One key at a time; with no key held the camera stands still (no-op). ``--save PATH`` writes the
session (every rendered frame from the reset on) to an mp4 or GIF when the window closes.

Needs pygame (``pip install pygame``). Without a display, set ``SDL_VIDEODRIVER=dummy`` (as the tests do).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.envs.base import keys_to_action as env_keys_to_action
from tdwgym.envs.window import KEY_MAP
from tdwgym.tools.video import write_video

__all__ = ["KEY_MAP", "FrameRecorder", "format_key_map", "format_key_map_static", "keys_to_action", "play_env"]


def _pygame():
    try:
        import pygame
    except ImportError as exc:
        raise ImportError("tdwgym play needs pygame: pip install pygame") from exc
    return pygame


def keys_to_action() -> dict[tuple[int, ...], int]:
    """The key map as Gymnasium's ``play`` wants it: (pygame key code,) -> discrete action index (the envs'
    ``get_keys_to_action()``)."""
    _pygame()
    return env_keys_to_action("discrete")


def format_key_map() -> str:
    """The key map as printable lines."""
    names = {"left": "Left arrow", "right": "Right arrow", "up": "Up arrow", "down": "Down arrow", "space": "Space"}
    lines = ["Keys:"] + [f"  {names.get(k, k.upper()):<12} {a.replace('_', ' ')}" for k, a in KEY_MAP.items()]
    lines.append(f"  {'(none)':<12} stand still")
    lines.append(f"  {'Esc':<12} quit (closing the window too)")
    return "\n".join(lines)


class FrameRecorder(gym.Wrapper):
    """Keeps the frame ``render()`` returns after every reset and step (what the player saw), for ``--save``.

    A reset followed by another reset with no step between (Gymnasium's play resets once before its loop and once
    in it) keeps only the later frame, so a session of ``n`` steps in one episode has ``n + 1`` frames.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []
        self.steps = 0
        self._fresh = False
        self._from_reset = False
        self._unstepped_reset_frame: int | None = None

    def reset(self, **kwargs: Any):  # noqa: D102
        if self._unstepped_reset_frame is not None:
            del self.frames[self._unstepped_reset_frame]
            self._unstepped_reset_frame = None
        out = self.env.reset(**kwargs)
        self._fresh, self._from_reset = True, True
        return out

    def step(self, action: Any):  # noqa: D102
        out = self.env.step(action)
        self.steps += 1
        self._fresh, self._from_reset = True, False
        self._unstepped_reset_frame = None
        return out

    def render(self):  # noqa: D102
        frame = self.env.render()
        if self._fresh and frame is not None:
            self.frames.append(np.array(frame, dtype=np.uint8, copy=True))
            if self._from_reset:
                self._unstepped_reset_frame = len(self.frames) - 1
            self._fresh = False
        return frame


def play_env(
    env_id: str = "TDWRoom-Occlusion-v0",
    save: str | os.PathLike | None = None,
    seed: int | None = None,
    size: int = 384,
    fps: int | None = None,
    max_steps: int | None = None,
    callback: Callable[..., Any] | None = None,
    print_keys: bool = True,
    headless: bool = False,
    **env_kwargs: Any,
) -> FrameRecorder:
    """Open a window and play ``env_id`` with the keyboard until Esc, closing the window, or ``max_steps``.

    With ``headless`` there is no window and no key: the session is ``max_steps`` no-op steps (the camera stands
    still, as with no key held), a new episode at each episode's end, recorded to ``save``; pygame is not needed.

    Args:
        env_id: Gymnasium id (discrete actions).
        save: Write the session to this .mp4 or .gif when it ends.
        seed: Seed of the first scene.
        size: Window (render) size in pixels.
        fps: Steps per second; default the env's ``render_fps``.
        max_steps: End the session on its own after this many steps.
        callback: Called after every step as Gymnasium's play does: ``(obs_t, obs_tp1, action, reward,
            terminated, truncated, info)``.
        print_keys: Print the key map first.
        headless: Run without a window (needs ``max_steps``).
        **env_kwargs: Extra ``gym.make`` arguments.

    Returns:
        The recorder wrapper (``frames``, ``steps``), closed.
    """
    if env_kwargs.get("action_type", "discrete") != "discrete":
        raise ValueError("tdwgym play drives the discrete actions; do not pass action_type='continuous'")
    if headless:
        if max_steps is None:
            raise ValueError("a headless session needs max_steps: nobody is there to press Esc")
        return _play_headless(env_id, save, seed, size, fps, max_steps, callback, env_kwargs)
    pg = _pygame()
    from gymnasium.utils.play import play

    env = FrameRecorder(gym.make(env_id, render_mode="rgb_array", render_size=size, **env_kwargs))
    if print_keys:
        print(format_key_map(), flush=True)

    def on_step(*args: Any) -> None:
        if callback is not None:
            callback(*args)
        if max_steps is not None and env.steps >= max_steps:
            pg.event.post(pg.event.Event(pg.QUIT))

    try:
        play(env, seed=seed, noop=0, fps=fps, callback=on_step)
        _save(env, save, fps)
    finally:
        env.close()
    return env


def _save(env: FrameRecorder, save: str | os.PathLike | None, fps: int | None) -> None:
    """Write the frames ``env`` recorded to ``save`` (nothing without a path or frames)."""
    if save is not None and env.frames:
        path = write_video(env.frames, save, fps=float(fps or env.metadata.get("render_fps", 30)))
        print(f"wrote {path} ({len(env.frames)} frames)", flush=True)


def _play_headless(
    env_id: str,
    save: str | os.PathLike | None,
    seed: int | None,
    size: int,
    fps: int | None,
    steps: int,
    callback: Callable[..., Any] | None,
    env_kwargs: dict[str, Any],
) -> FrameRecorder:
    """:func:`play_env` without a window: ``steps`` no-op steps (action 0), every frame recorded, saved to ``save``."""
    env = FrameRecorder(gym.make(env_id, render_mode="rgb_array", render_size=size, **env_kwargs))
    try:
        obs, _ = env.reset(seed=seed)
        env.render()
        for _ in range(steps):
            nxt, reward, terminated, truncated, info = env.step(0)
            env.render()
            if callback is not None:
                callback(obs, nxt, 0, reward, terminated, truncated, info)
            obs = nxt
            if terminated or truncated:
                obs, _ = env.reset()
                env.render()
        _save(env, save, fps)
    finally:
        env.close()
    return env


def format_key_map_static() -> str:
    """The key map text without importing pygame (for ``--help``)."""
    return "\n".join(f"  {k:<6} {a.replace('_', ' ')}" for k, a in KEY_MAP.items()) + "\n  esc    quit"
