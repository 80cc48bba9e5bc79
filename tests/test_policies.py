"""Built-in policies and policy loading (tdwgym.tools.policies): action spaces, per-episode seeding, the orbit, SB3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.sim.geometry import camera_forward, intrinsics
from tdwgym.tools.dataset import world_to_camera
from tdwgym.tools.policies import (
    BUILTIN_POLICIES,
    ORBIT_RADIUS,
    OrbitPolicy,
    RandomPolicy,
    StaticPolicy,
    load_policy,
    make_policy,
    policy_env_kwargs,
)

ENV = "TDWRoom-Occlusion-v0"
RES = 16
ACTION_TYPES = ("discrete", "continuous")


def _env(action_type: str = "discrete", **kwargs) -> gym.Env:
    return gym.make(ENV, resolution=RES, action_type=action_type, **kwargs)


def _actions(policy, env: gym.Env, seed: int, steps: int) -> list:
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    out = []
    for _ in range(steps):
        action = policy(obs)
        out.append(np.asarray(action).tolist())
        obs, *_ = env.step(action)
    return out


@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_builtin_policies_act_within_the_action_space(name: str, action_type: str) -> None:
    env = _env(action_type)
    try:
        policy = make_policy(name, env, seed=0)
        assert policy.name == name
        obs, _ = env.reset(seed=0)
        for _ in range(8):
            action = policy(obs)
            assert env.action_space.contains(action), (name, action)
            obs, *_ = env.step(action)
    finally:
        env.close()


def test_policy_classes_and_static_noop() -> None:
    env = _env("continuous")
    try:
        assert isinstance(make_policy("random", env), RandomPolicy)
        assert isinstance(make_policy("orbit", env), OrbitPolicy)
        static = make_policy("static", env)
        assert isinstance(static, StaticPolicy)
        np.testing.assert_array_equal(static(None), np.zeros(5, dtype=np.float32))
    finally:
        env.close()
    env = _env("discrete")
    try:
        assert make_policy("static", env)(None) == 0
    finally:
        env.close()


@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_reset_seed_makes_actions_reproducible(name: str, action_type: str) -> None:
    env = _env(action_type)
    try:
        policy = make_policy(name, env)
        first = _actions(policy, env, seed=3, steps=10)
        _actions(policy, env, seed=4, steps=5)  # another episode in between
        assert _actions(policy, env, seed=3, steps=10) == first
        other = make_policy(name, env)  # a fresh policy in the same state
        assert _actions(other, env, seed=3, steps=10) == first
        if name == "random":
            assert _actions(policy, env, seed=5, steps=10) != first
    finally:
        env.close()


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_orbit_circles_a_point_and_keeps_it_near_the_image_centre(action_type: str) -> None:
    env = _env(action_type, num_objects=1)
    try:
        policy = make_policy("orbit", env)
        obs, info = env.reset(seed=0)
        policy.reset(0)
        start = info["camera"]
        centre = np.asarray(start["position"]) + ORBIT_RADIUS * camera_forward(start["yaw"], 0.0)
        k = intrinsics(RES, RES, env.unwrapped.scene.camera.fov)
        tolerance = np.tan(np.radians(env.unwrapped.turn_step + 1.0)) * k[0, 0]  # within one turn step
        for _ in range(30):
            obs, _, _, _, info = env.step(policy(obs))
            cam = info["camera"]
            x = (world_to_camera(cam["position"], cam["yaw"], cam["pitch"]) @ np.append(centre, 1.0))[:3]
            assert x[2] > 0, "the orbit centre went behind the camera"
            u = (k @ x)[0] / x[2]
            assert abs(u - RES / 2) <= tolerance, (u, cam)
            assert abs(np.linalg.norm(np.asarray(cam["position"])[[0, 2]] - centre[[0, 2]]) - ORBIT_RADIUS) < 0.25
        turned = (start["yaw"] - info["camera"]["yaw"]) % 360.0
        assert 60.0 < turned < 180.0  # 30 steps of 0.15 m on a 2.5 m circle: about 100 degrees to the left
    finally:
        env.close()


def test_orbit_needs_a_tdwroom_env() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="orbit policy needs a TDWRoom env"):
        make_policy("orbit", env)
    assert env.action_space.contains(make_policy("random", env, seed=0)(None))


def test_unknown_spec_is_a_clear_error_listing_the_valid_names(tmp_path: Path) -> None:
    env = _env()
    try:
        with pytest.raises(FileNotFoundError, match=r"unknown policy 'spin': valid policies are \['random', 'orbit'"):
            load_policy("spin", env)
        with pytest.raises(ValueError, match=r"valid built-in policies are \['random', 'orbit', 'static', 'seek'\]"):
            make_policy("spin", env)
        (tmp_path / "empty_run").mkdir()
        with pytest.raises(FileNotFoundError, match="holds no agent"):
            load_policy(str(tmp_path / "empty_run"), env)
    finally:
        env.close()


@pytest.fixture(scope="module")
def tiny_ppo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO MLP trained for 8 steps on the 16x16 discrete env, saved as a .zip."""
    from stable_baselines3 import PPO

    env = _env()
    model = PPO(
        "MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [8]}
    )
    model.learn(total_timesteps=8)
    path = tmp_path_factory.mktemp("ppo") / "tiny_ppo.zip"
    model.save(path)
    env.close()
    return path


def test_sb3_zip_loads_and_acts(tiny_ppo: Path) -> None:
    from tdwgym.agents.sb3_agents import SB3Policy, sb3_env_kwargs

    env = _env()
    try:
        policy = load_policy(str(tiny_ppo), env, seed=0, device="cpu")
        assert isinstance(policy, SB3Policy) and policy.name == "tiny_ppo"
        actions = _actions(policy, env, seed=1, steps=6)
        assert all(env.action_space.contains(a) for a in actions)
        assert _actions(policy, env, seed=1, steps=6) == actions  # sampled actions, reseeded per episode
        greedy = load_policy(tiny_ppo, env, seed=None, device="cpu", deterministic=True)
        obs, _ = env.reset(seed=2)
        assert greedy(obs) == int(greedy.model.predict(obs, deterministic=True)[0])
        assert sb3_env_kwargs(tiny_ppo, RES) == {"obs_mode": "rgb", "action_type": "discrete"}
        with pytest.raises(ValueError, match="--resolution 16"):
            sb3_env_kwargs(tiny_ppo, 32)
        assert policy_env_kwargs(tiny_ppo, RES) == sb3_env_kwargs(tiny_ppo, RES)  # through the registered loader
        assert policy_env_kwargs("orbit", RES) == {}
    finally:
        env.close()
    env = _env("continuous")
    try:
        with pytest.raises(ValueError, match="action_type the model was trained with"):
            load_policy(str(tiny_ppo), env, device="cpu")
    finally:
        env.close()


def test_run_folder_loads_its_latest_agent_with_its_frame_stack(tiny_ppo: Path, tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from tdwgym.agents.sb3_agents import latest_agent

    run = tmp_path / "run"
    (run / "checkpoints" / "step_8").mkdir(parents=True)
    stacked = VecFrameStack(make_vec_env(ENV, n_envs=1, env_kwargs={"resolution": RES}), n_stack=2)
    PPO("MlpPolicy", stacked, n_steps=8, batch_size=8, device="cpu", policy_kwargs={"net_arch": [8]}).save(
        run / "checkpoints" / "step_8" / "agent.zip"
    )
    stacked.close()
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"dir": "step_8"}))
    (run / "config.json").write_text(json.dumps({"frame_stack": 2}))
    assert latest_agent(run) == run / "checkpoints" / "step_8" / "agent.zip"
    env = _env()
    try:
        policy = load_policy(str(run), env, seed=0, device="cpu")
        assert policy.name == "agent" and policy.frame_stack == 2
        actions = _actions(policy, env, seed=0, steps=4)
        assert all(env.action_space.contains(a) for a in actions)
        assert _actions(policy, env, seed=0, steps=4) == actions  # reset clears the stack
    finally:
        env.close()


def test_import_needs_neither_torch_nor_stable_baselines3() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['stable_baselines3'] = None; "
        "import tdwgym.tools.policies as p; print(p.BUILTIN_POLICIES)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_a_stored_policy_without_the_agents_extra_names_the_pip_command(tmp_path: Path) -> None:
    (tmp_path / "agent.zip").write_bytes(b"")
    code = (
        "import sys; sys.modules['torch'] = None; import gymnasium as gym, tdwgym; "
        "from tdwgym.tools.policies import load_policy; "
        f"load_policy({str(tmp_path / 'agent.zip')!r}, gym.make('TDWRoom-Occlusion-v0', resolution=16))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "pip install 'tdwgym[agents]'" in out.stderr


def test_seek_action_turns_strafes_nods_walks_then_pushes() -> None:
    from tdwgym.envs.base import DISCRETE_ACTIONS
    from tdwgym.tools.policies import seek_action

    cam = np.array([0.0, 1.0, 0.0])

    def act(target, yaw=0.0, pitch=0.0) -> str:
        return DISCRETE_ACTIONS[seek_action(cam, yaw, pitch, {7: np.asarray(target, float)})]

    assert act([2.0, 1.0, 1.0]) == "turn_right"  # 63 deg right of the view axis (yaw 0 looks along +z)
    assert act([-2.0, 1.0, 1.0]) == "turn_left"
    assert act([0.15, 1.0, 1.9]) == "strafe_right"  # 4.5 deg right: within half a turn, but 0.15 m aside
    assert act([0.0, 1.0, 5.0]) == "forward"
    assert act([0.0, 0.2, 1.5]) == "look_down"
    assert act([0.0, 0.2, 1.5], pitch=-28.0) == "push"  # atan(0.8 / 1.5) = 28 deg below the horizon
    # the nearest of several is the target; with none it searches
    near_left = {1: np.array([0.0, 1.0, 9.0]), 2: np.array([-1.0, 1.0, 0.5])}
    assert DISCRETE_ACTIONS[seek_action(cam, 0.0, 0.0, near_left)] == "turn_left"
    assert DISCRETE_ACTIONS[seek_action(cam, 0.0, 0.0, {})] == "turn_left"


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_seek_pushes_objects_far_more_often_than_random(action_type: str) -> None:
    env = gym.make("TDWRoom-Playroom-v0", level=1, resolution=RES, action_type=action_type)
    try:
        moved = {}
        for name in ("seek", "random"):
            policy = make_policy(name, env, seed=0)
            obs, _ = env.reset(seed=0)
            moved[name] = 0
            for _ in range(150):
                obs, _, _, _, info = env.step(policy(obs))
                moved[name] += bool(info["push"]["moved"])
        assert moved["seek"] >= 20 and moved["seek"] > 5 * max(moved["random"], 1), moved
    finally:
        env.close()


def test_seek_needs_a_tdwroom_env() -> None:
    from tdwgym.tools.policies import SeekPolicy

    class Other(gym.Env):
        action_space = gym.spaces.Discrete(10)
        observation_space = gym.spaces.Discrete(1)

    with pytest.raises(TypeError, match="seek policy needs a TDWRoom env"):
        SeekPolicy(Other())
