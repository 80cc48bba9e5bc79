"""What a stable-baselines3 user gets: the multi-input recipe (checked by the tensor that reaches the CNN) and the
public logging callback in a plain SB3 loop."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecMonitor

import tdwgym  # noqa: F401 - registers the ids
from tdwgym.agents import CuriosityCallback, CuriosityVecEnv, multi_input_policy_kwargs
from tdwgym.agents.features import DEPTH_RANGE, ObservationExtractor


def _captured_input(model: PPO, obs: dict) -> torch.Tensor:
    """The tensor the policy's CNN reads for ``obs`` (a forward hook on its first layer)."""
    seen: list[torch.Tensor] = []
    extractor = model.policy.features_extractor
    handle = extractor.cnn.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    try:
        model.predict(obs, deterministic=True)
    finally:
        handle.remove()
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("obs_mode", ["rgbd", "rgb_seg", "rgbd_seg"])
def test_multi_input_recipe_feeds_rgb_in_unit_range_scaled_depth_and_embedded_ids(obs_mode):
    env = gym.make("TDWRoom-Playroom-v0", obs_mode=obs_mode, resolution=36, level=2)
    model = PPO(
        "MultiInputPolicy",
        DummyVecEnv([lambda: env]),
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        device="cpu",
        seed=0,
        policy_kwargs=multi_input_policy_kwargs(features_dim=16, segmentation_dim=4),
    )
    extractor = model.policy.features_extractor
    assert isinstance(extractor, ObservationExtractor)
    obs, _ = env.reset(seed=5)
    x = _captured_input(model, obs)
    channels = 3 + ("depth" in obs) + 4 * ("segmentation" in obs)
    assert x.shape == (1, channels, 36, 36)
    rgb = torch.as_tensor(obs["rgb"]).permute(2, 0, 1).float() / 255.0
    torch.testing.assert_close(x[0, :3], rgb)  # RGB in [0, 1], not 0..255
    assert 0.0 <= float(x[0, :3].min()) and float(x[0, :3].max()) <= 1.0 and float(x[0, :3].max()) > 0.2
    c = 3
    if "depth" in obs:
        depth = torch.as_tensor(obs["depth"][..., 0]).float()
        torch.testing.assert_close(x[0, c], (depth / DEPTH_RANGE).clamp(0, 1))
        assert 0.05 < float(x[0, c].min()) and float(x[0, c].max()) < 1.0  # room depths keep their own values
        c += 1
    if "segmentation" in obs:
        ids = torch.as_tensor(obs["segmentation"][..., 0]).long()
        assert len(ids.unique()) > 1  # the room and at least one object
        embedded = extractor.embedding.weight.detach()[ids].permute(2, 0, 1)
        torch.testing.assert_close(x[0, c:], embedded)  # each id's learned vector, not its magnitude
    model.learn(32)  # and it trains
    assert model.num_timesteps == 32
    env.close()


def test_extractor_refuses_a_plain_image_space():
    space = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)
    with pytest.raises(ValueError, match="for obs_mode 'rgb' use SB3's CnnPolicy"):
        ObservationExtractor(space)


def test_curiosity_callback_logs_curiosity_and_world_model_in_a_plain_sb3_loop(tmp_path):
    fns = [lambda: gym.make("TDWRoom-Playroom-v0", resolution=36, level=1, push_cone=20.0)] * 2
    venv = CuriosityVecEnv(
        VecMonitor(DummyVecEnv(fns)),
        device="cpu",
        seed=0,
        wm_width=4,
        wm_capacity=64,
        wm_batch_size=8,
        wm_background=False,
    )
    model = PPO("CnnPolicy", VecFrameStack(venv, 2), n_steps=16, batch_size=32, n_epochs=1, device="cpu", seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = CuriosityCallback()  # finds the wrapper below the frame stack
    model.learn(64, callback=callback)
    venv.close()
    assert callback.curiosity is venv
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # one per rollout
    for key in (
        "curiosity/intrinsic_reward",
        "curiosity/intrinsic_reward_raw",
        "world_model/loss",
        "world_model/updates",
        "rollout/pushes_moved_per_1k",
    ):
        values = [float(r[key]) for r in rows]
        assert all(np.isfinite(values)), key
    assert float(rows[-1]["world_model/updates"]) > 0


def _example():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "curiosity_ppo.py"
    spec = importlib.util.spec_from_file_location("curiosity_ppo", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["curiosity_ppo"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_curiosity_ppo_example_defaults_are_tdwgym_trains():
    from tdwgym.agents.training import TrainConfig

    args, cfg = _example().Args(), TrainConfig()
    for name in ("env_id", "env_kwargs", "total_steps", "n_envs", "seed", "features_dim", "device", "gamma"):
        assert getattr(args, name) == getattr(cfg, name), name
    ppo = cfg.ppo_kwargs()
    for name in ("n_steps", "batch_size", "n_epochs", "learning_rate", "gae_lambda", "ent_coef", "clip_range"):
        assert getattr(args, name) == ppo[name], name
    assert args.curiosity == {} and cfg.vec_env != "dummy" and args.vec_env != "dummy"


def test_curiosity_ppo_example_trains_the_agent_tdwgym_train_trains(tmp_path):
    """The same seed and tiny settings: the example and ``tdwgym train`` pay the same rewards, log the same
    curiosity statistics and end with the same policy weights."""
    import json
    import subprocess
    import sys
    import zipfile
    from io import BytesIO
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env_kwargs = json.dumps({"level": 1, "push_cone": 20.0, "resolution": 36})
    wm = {"wm_width": 4, "wm_capacity": 64, "wm_batch_size": 8}
    common = ["--total-steps", "192", "--n-envs", "2", "--vec-env", "dummy", "--n-steps", "32", "--batch-size", "32"]
    common += ["--n-epochs", "2", "--features-dim", "32", "--seed", "3", "--device", "cpu", "--env-kwargs", env_kwargs]
    cli = [sys.executable, "-m", "tdwgym", "train", *common, "--out", str(tmp_path / "cli")]
    cli += ["--video-steps", "0", "--no-progress", *[f"--{k.replace('_', '-')}={v}" for k, v in wm.items()]]
    example = [sys.executable, str(root / "examples" / "curiosity_ppo.py"), *common, "--out", str(tmp_path / "ex")]
    example += ["--curiosity", json.dumps(wm)]
    for argv in (cli, example):
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    rows = [json.loads(line) for line in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]
    with open(tmp_path / "ex" / "progress.csv") as f:
        logged = list(csv.DictReader(f))
    assert len(rows) == len(logged) == 3  # one per rollout of 2 x 32 steps
    for row, line in zip(rows, logged, strict=True):
        assert float(line["time/total_timesteps"]) == row["step"]
        keys = [k for k in row if k.startswith(("curiosity/", "world_model/")) and not k.endswith("time_s")]
        assert "curiosity/intrinsic_reward_raw" in keys and "world_model/updates" in keys
        for key in keys:
            assert line[key] != "", key
            assert float(line[key]) == pytest.approx(row[key], rel=1e-6, abs=1e-12), key

    def weights(path: Path) -> dict:
        with zipfile.ZipFile(path) as z:
            return torch.load(BytesIO(z.read("policy.pth")), weights_only=True)

    from tdwgym.agents.rundir import RunDir

    mine, theirs = weights(tmp_path / "ex" / "agent.zip"), weights(RunDir(tmp_path / "cli").agent_path())
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0, msg=key)
