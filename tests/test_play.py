"""``tdwgym play`` headless (SDL's dummy video driver) with a scripted key session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
pygame = pytest.importorskip("pygame")

from tdwgym.commands.play import add_parser as add_play_parser  # noqa: E402
from tdwgym.envs.base import DISCRETE_ACTIONS  # noqa: E402
from tdwgym.tools.keyboard import KEY_MAP, format_key_map, keys_to_action, play_env  # noqa: E402
from tdwgym.tools.video import read_video  # noqa: E402


def test_key_map_covers_every_action_but_noop():
    mapping = keys_to_action()
    assert sorted(mapping.values()) == list(range(1, len(DISCRETE_ACTIONS)))
    assert mapping[(pygame.K_w,)] == DISCRETE_ACTIONS.index("forward")
    assert mapping[(pygame.K_SPACE,)] == DISCRETE_ACTIONS.index("push")
    assert mapping[(pygame.K_LEFT,)] == DISCRETE_ACTIONS.index("turn_left")
    text = format_key_map()
    for action in KEY_MAP.values():
        assert action.replace("_", " ") in text


def test_scripted_session_moves_pushes_and_saves_video(tmp_path, capsys):
    """Hold W for a few steps, then Space; the session ends itself after 8 steps and writes 9 frames."""
    script = {
        1: (pygame.KEYDOWN, pygame.K_w),
        4: (pygame.KEYUP, pygame.K_w),
        5: (pygame.KEYDOWN, pygame.K_SPACE),
        6: (pygame.KEYUP, pygame.K_SPACE),
    }
    actions, cameras = [], []

    def callback(obs_t, obs_tp1, action, rew, terminated, truncated, info):
        actions.append(int(action))
        cameras.append(info["camera"]["position"].copy())
        event = script.get(len(actions))
        if event is not None:
            pygame.event.post(pygame.event.Event(event[0], key=event[1]))

    out = tmp_path / "session.mp4"
    rec = play_env(
        "TDWRoom-Occlusion-v0", save=out, seed=3, size=64, fps=240, max_steps=8, callback=callback, resolution=16
    )
    assert rec.steps == 8 and len(actions) == 8
    forward, push = DISCRETE_ACTIONS.index("forward"), DISCRETE_ACTIONS.index("push")
    assert actions[0] == 0 and forward in actions and push in actions  # no key, then W, then Space
    assert any(abs(b - a).sum() > 0.1 for a, b in zip(cameras, cameras[1:], strict=False))  # the camera moved
    assert "Keys:" in capsys.readouterr().out
    frames = read_video(out)
    assert frames.shape == (9, 64, 64, 3)


def test_play_parser(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_play_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["play", "--env", "collision", "--out", str(tmp_path / "x.mp4"), "--steps", "3"])
    assert (args.env_id, args.out, args.steps) == ("TDWRoom-Collision-v0", str(tmp_path / "x.mp4"), 3)
    assert callable(args.func) and not capsys.readouterr().err
    for old in (["play", "TDWRoom-Collision-v0"], ["play", "--save", "x.mp4"], ["play", "--max-steps", "3"]):
        with pytest.raises(SystemExit):  # spellings of a release that never shipped: gone
            parser.parse_args(old)
    bad = parser.parse_args(["play", "--out", str(tmp_path / "x.avi")])
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        bad.func(bad)
