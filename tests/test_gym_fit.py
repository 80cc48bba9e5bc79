"""What Gymnasium's own tools expect of the envs: ``gymnasium.utils.play.play`` with the env's key map, ``check_env``
without a window or audio it does not draw, and reset and step ``info`` with the same keys."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from tdwgym.envs.base import DISCRETE_ACTIONS, DISCRETE_TO_CONTROL


@pytest.mark.parametrize("info_level", ["full", "light"])
def test_reset_info_holds_every_key_a_step_info_holds(env_id, make_env, info_level):
    env = make_env(env_id, resolution=16, info_level=info_level)
    _, reset_info = env.reset(seed=1)
    _, _, _, _, step_info = env.step(0)
    assert set(step_info) <= set(reset_info)
    assert set(reset_info) - set(step_info) == {"labels"}  # the scene's labels, once per episode
    assert reset_info["events"] == [] and reset_info["camera_moved"] is False
    assert reset_info["camera_blocked"] is False


def _play_frames(env: gym.Env, steps: int, **kwargs) -> list:
    """Drive ``gymnasium.utils.play.play`` headless: hold W from the second step, quit after ``steps`` steps."""
    pygame = pytest.importorskip("pygame")
    from gymnasium.utils.play import play

    seen: list = []

    def callback(obs_t, obs_tp1, action, rew, terminated, truncated, info):
        seen.append((action, info["camera_moved"]))
        if len(seen) == 1:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w))
        if len(seen) >= steps:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    play(env, fps=240, callback=callback, seed=2, **kwargs)
    return seen


def test_gymnasium_play_drives_the_env_with_its_key_map(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    seen = _play_frames(gym.make("TDWRoom-Playroom-v0", render_mode="rgb_array", resolution=16, render_size=48), 5)
    assert len(seen) == 5
    assert seen[0][0] == 0  # no key held: the no-op
    forward = DISCRETE_ACTIONS.index("forward")
    assert any(action == forward and moved for action, moved in seen[1:])  # W held: the camera walks


def test_continuous_key_map_gives_the_discrete_actions_controls(make_env):
    pygame = pytest.importorskip("pygame")
    env = make_env("TDWRoom-Occlusion-v0", action_type="continuous", resolution=16)
    mapping = env.unwrapped.get_keys_to_action()
    discrete = make_env("TDWRoom-Occlusion-v0", resolution=16).unwrapped.get_keys_to_action()
    assert mapping.keys() == discrete.keys()
    for key, action in mapping.items():
        assert env.action_space.contains(action)
        np.testing.assert_array_equal(action, DISCRETE_TO_CONTROL[discrete[key]])
    assert mapping[(pygame.K_SPACE,)][4] == 1.0


CHECK_ENV = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("ignore")
    import gymnasium as gym
    import pygame
    import tdwgym
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make("TDWRoom-Playroom-v0", resolution=16, render_size=32).unwrapped)
    print("mixer", pygame.mixer.get_init())
    """
)


def test_check_env_starts_no_audio_and_prints_no_errors():
    """``check_env`` makes a human-render env and resets it: the window may open (dummy driver here), audio never."""
    pytest.importorskip("pygame")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "XDG_"))}
    env["SDL_VIDEODRIVER"] = "dummy"
    proc = subprocess.run([sys.executable, "-c", CHECK_ENV], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "mixer None" in proc.stdout  # pygame's audio was never started
    noise = [line for line in proc.stderr.splitlines() if "ALSA" in line or "XDG" in line or "audio" in line.lower()]
    assert not noise, noise
