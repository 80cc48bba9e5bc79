"""The env's own ``render_mode="human"`` window: each reset and step drawn in a pygame window at the env's
``render_fps`` (Gymnasium's convention: :meth:`render` then returns None), and the keyboard map of
``env.get_keys_to_action()`` (what ``gymnasium.utils.play.play`` and ``tdwgym play`` drive the env with). Needs pygame
(``pip install 'tdwgym[play]'``); without a display set ``SDL_VIDEODRIVER=dummy``.

Only pygame's display is initialised, and only when the first frame is drawn: never its audio (whose start-up prints
ALSA or XDG errors on a machine without sound), and no window for an env that is never drawn."""

from __future__ import annotations

from typing import Any

import numpy as np

KEY_MAP: dict[str, str] = {
    "w": "forward",
    "s": "back",
    "a": "strafe_left",
    "d": "strafe_right",
    "left": "turn_left",
    "right": "turn_right",
    "up": "look_up",
    "down": "look_down",
    "space": "push",
}
"""Key name -> discrete action name (see :data:`tdwgym.envs.base.DISCRETE_ACTIONS`). One key at a time; no key held
is the no-op (action 0)."""

MIN_SIDE = 384
"""The window's shorter side is at least this many pixels (small frames are scaled up by a whole factor)."""


def import_pygame() -> Any:
    """pygame, or an ImportError naming the extra that brings it."""
    try:
        import pygame
    except ImportError as exc:
        raise ImportError(
            "render_mode='human' needs pygame: pip install 'tdwgym[play]' (or pip install pygame)"
        ) from exc
    return pygame


def key_codes(pygame: Any) -> dict[str, int]:
    """Key name of :data:`KEY_MAP` -> pygame key code."""
    named = {"left": pygame.K_LEFT, "right": pygame.K_RIGHT, "up": pygame.K_UP, "down": pygame.K_DOWN}
    named["space"] = pygame.K_SPACE
    return {key: named[key] if key in named else ord(key) for key in KEY_MAP}


class HumanWindow:
    """A pygame window that shows ``(H, W, 3)`` uint8 frames, paced to ``fps`` frames per second.

    Args:
        title: The window's caption.
        fps: Frames per second to pace :meth:`show` to (0: as fast as frames come).
    """

    def __init__(self, title: str, fps: float) -> None:
        self.pygame = import_pygame()
        self.title, self.fps = title, float(fps)
        self.screen: Any = None
        self.clock: Any = None

    def show(self, frame: np.ndarray) -> None:
        """Draw ``frame`` (scaled by a whole factor to at least :data:`MIN_SIDE`), handle window events, keep pace."""
        pg = self.pygame
        frame = np.asarray(frame, dtype=np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"a window frame must be (H, W, 3) uint8, got shape {frame.shape}")
        h, w = frame.shape[:2]
        scale = max(1, -(-MIN_SIDE // min(h, w)))
        if self.screen is None:
            pg.display.init()  # the display only: pg.init() would start audio too (ALSA / XDG errors headless)
            self.screen = pg.display.set_mode((w * scale, h * scale))
            pg.display.set_caption(self.title)
            self.clock = pg.time.Clock()
        surface = pg.surfarray.make_surface(np.repeat(np.repeat(frame, scale, 0), scale, 1).swapaxes(0, 1))
        self.screen.blit(surface, (0, 0))
        pg.event.pump()  # keep the window responsive
        pg.display.flip()
        if self.fps > 0:
            self.clock.tick(self.fps)

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the open window, or None before the first frame."""
        return None if self.screen is None else tuple(self.screen.get_size())

    def close(self) -> None:
        """Close the window (idempotent)."""
        if self.screen is not None:
            self.pygame.display.quit()
            self.screen = None
