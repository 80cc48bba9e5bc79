"""``tdwgym play``: drive the camera and push objects with the keyboard in a pygame window
(:func:`tdwgym.tools.keyboard.play_env`; needs ``tdwgym[play]``). Without a display, ``--out`` records a session
without a window (no keys: the camera stands still) and anything else is one line saying so."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.commands.config_options import Flag, add_config_arguments, config_kwargs, env_kwargs_with
from tdwgym.commands.door import check_env
from tdwgym.commands.values import nonnegative_int, positive_int
from tdwgym.tools.keyboard import format_key_map_static
from tdwgym.util.errors import UsageError
from tdwgym.util.files import check_output_file

__all__ = ["EXTRA", "HEADLESS_STEPS", "HELP", "PlayCommand", "add_parser", "run"]

EXTRA = None
"""The pip extra the command needs (pygame comes with ``tdwgym[play]``; the window says so when it is missing)."""

HELP = "drive the camera and push objects with the keyboard (pygame window)"
"""The command's line in ``tdwgym --help``."""

HEADLESS_STEPS = 300
"""Steps of a session without a display when neither ``--steps`` nor the env's time limit says how many."""


@dataclass
class PlayCommand:
    """What ``tdwgym play`` plays (one option per field)."""

    env_id: str = "TDWRoom-Occlusion-v0"
    """The env (discrete actions)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra gym.make arguments."""
    out: str | None = None
    """Write the session to this .mp4 or .gif when it ends. Without a display the session runs without a window:
    --steps no-op steps (default one episode), the camera standing still."""
    seed: int | None = None
    """Seed of the first scene."""
    size: int = 384
    """Window size in pixels."""
    fps: int | None = None
    """Steps per second (default: the env's render_fps)."""
    steps: int | None = None
    """End the session on its own after this many steps (default: at Esc or when the window closes; without a
    display, one episode)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tdwgym play`` to an argparse sub-parser collection (sets ``func``)."""
    p = subparsers.add_parser(
        "play",
        help=HELP,
        description="Play an env with the keyboard.\n\n" + format_key_map_static(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = add_config_arguments(
        p,
        PlayCommand,
        flags={
            "out": Flag(metavar="FILE"),
            "steps": Flag(type=positive_int),
            "seed": Flag(type=nonnegative_int),
            "size": Flag(type=positive_int),
            "fps": Flag(type=positive_int),
        },
    )
    p.set_defaults(func=run, config_fields=names)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``tdwgym play``."""
    from tdwgym.tools.keyboard import play_env

    cmd = PlayCommand(**config_kwargs(args, args.config_fields))
    import os
    import sys

    sdl_headless = os.environ.get("SDL_VIDEODRIVER", "") in ("dummy", "offscreen")
    no_display = (
        sys.platform.startswith("linux")
        and not sdl_headless
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    )
    if no_display and cmd.out is None:
        raise UsageError(
            "no display to open a window on (neither $DISPLAY nor $WAYLAND_DISPLAY is set); run it where there is "
            "one, pass --out FILE.mp4 to record a session without a window (the camera stands still), or record a "
            "policy: `tdwgym record --env ENV --out FILE.mp4`"
        )
    if cmd.out is not None and Path(cmd.out).suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--out must end in .mp4 or .gif, got {cmd.out!r}")
    if cmd.out is not None:
        check_output_file(cmd.out)
    env_kwargs = env_kwargs_with(cmd.env_kwargs, args)
    check_env(cmd.env_id, env_kwargs)
    steps = cmd.steps
    if no_display:
        import gymnasium as gym

        steps = steps or gym.spec(cmd.env_id).max_episode_steps or HEADLESS_STEPS
        print(
            f"no display: recording {steps} steps without a window to {cmd.out} (no keys: the camera stands still)",
            flush=True,
        )
    play_env(
        cmd.env_id,
        save=cmd.out,
        seed=cmd.seed,
        size=cmd.size,
        fps=cmd.fps,
        max_steps=steps,
        headless=no_display,
        print_keys=not no_display,
        **env_kwargs,
    )
    return 0
