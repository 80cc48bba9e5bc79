"""The curiosity VecEnvWrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

from tdwgym.agents.curiosity import BASELINE_WARMUP, MAX_EXCESS, VARIANTS, CuriosityConfig, CuriosityVecEnv

IMAGE_VARIANTS = [v for v in VARIANTS if v != "objects"]
"""Variants that read RGB frames (``objects`` reads segmentation and depth: tested below on the real envs)."""
TINY = {"wm_width": 4, "wm_capacity": 32, "wm_batch_size": 8, "wm_updates_per_transition": 0.5}
"""A small world model that trains on every other transition."""

PLAIN = {
    "action_baseline": "zscore",
    "reward_gate": "none",
    "gamma": 0.99,
    "wm_resolution": None,
    "wm_warp": False,
    "wm_fovea": None,
    "wm_background": False,
}
"""Settings for envs that are not TDWRoom envs (the square env reports no camera motion or pushes): every step pays,
camera motion stops paying by the zscore baseline, the model sees the whole observation and trains in the
foreground."""


def _wrap(venv, variant="pixel", **settings):
    return CuriosityVecEnv(venv, variant, device="cpu", seed=0, **{**TINY, **PLAIN, **settings})


@pytest.mark.parametrize("variant", IMAGE_VARIANTS)
def test_intrinsic_rewards_finite_nonnegative(square_env_fn, variant):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 2), variant)
    venv.seed(0)
    venv.reset()
    for _ in range(12):
        obs, rew, done, infos = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
        assert np.all(np.isfinite(rew)) and np.all(rew >= 0)
        for i, info in enumerate(infos):
            c = info["curiosity"]
            assert c["r_int"] >= 0 and np.isfinite(c["r_int"]) and c["r_ext"] == 0.0
            assert rew[i] == pytest.approx(c["r_ext"] + c["r_int"], rel=1e-5)
    stats = venv.pop_stats()
    assert "curiosity/intrinsic_reward" in stats and "world_model/loss" in stats


def test_continuous_actions(square_env_fn):
    venv = _wrap(DummyVecEnv([square_env_fn(continuous=True)]), "icm")
    venv.reset()
    _, rew, _, _ = venv.step(np.zeros((1, 2), dtype=np.float32))
    assert np.isfinite(rew).all()


def test_terminal_observation_is_used_at_episode_end(square_env_fn):
    venv = _wrap(DummyVecEnv([square_env_fn(max_steps=3)]))
    seen = []
    observe = venv.learner.observe

    def spy(batch, train=True, update=True, prepared=None):
        seen.append((batch.context.clone(), batch.next_frame.clone()))
        return observe(batch, train, update, prepared)

    venv.learner.observe = spy
    first = venv.reset()
    for _ in range(4):
        obs, _, done, infos = venv.step(np.array([0]))
        if done[0]:
            break
    assert done[0]
    terminal = infos[0]["terminal_observation"]
    ctx, nxt = seen[-1]
    # the transition's next frame is the terminal frame (with its marker), not the reset frame
    assert torch.equal(nxt[0], torch.from_numpy(terminal.transpose(2, 0, 1)))
    assert nxt[0, :, 0, 0].tolist() == [255, 255, 255]
    assert not np.array_equal(terminal, obs[0])
    # the history restarts from the reset observation
    assert np.array_equal(venv.stream.context[0, -1].numpy(), obs[0].transpose(2, 0, 1))
    assert np.array_equal(venv.stream.context[0, 0].numpy(), obs[0].transpose(2, 0, 1))
    assert np.array_equal(seen[0][0][0, 0].numpy(), first[0].transpose(2, 0, 1))


def test_channels_first_and_frame_stack_are_handled(square_env_fn):
    base = DummyVecEnv([square_env_fn()] * 2)
    stacked = VecTransposeImage(VecFrameStack(base, n_stack=3))
    venv = _wrap(stacked)
    assert venv.channels_first and venv.frame_channels == 3 and venv.frame_shape == (3, 36, 36)
    obs = venv.reset()
    assert np.array_equal(venv.stream.context[:, -1].numpy(), obs[:, -3:])
    _, rew, _, _ = venv.step(np.array([1, 2]))
    assert np.isfinite(rew).all()


def test_save_load_round_trip(square_env_fn, tmp_path):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 2), "latent", int_coef=0.5, ext_coef=2.0)
    venv.reset()
    for _ in range(10):
        venv.step(np.array([1, 3]))
    venv.save(tmp_path / "curiosity.json")
    venv.save_world_model(tmp_path / "wm.pt")
    loaded = CuriosityVecEnv.load(
        tmp_path / "curiosity.json",
        DummyVecEnv([square_env_fn()] * 2),
        world_model_path=tmp_path / "wm.pt",
        device="cpu",
    )
    assert loaded.variant == "latent" and loaded.int_coef == 0.5 and loaded.ext_coef == 2.0
    assert loaded.num_steps == venv.num_steps == 20
    assert loaded.int_ret_rms.var == pytest.approx(venv.int_ret_rms.var)
    assert loaded.int_ret_rms.count == pytest.approx(venv.int_ret_rms.count)
    np.testing.assert_allclose(loaded.int_returns, venv.int_returns)
    assert loaded.learner.updates == venv.learner.updates
    for a, b in zip(venv.world_model.state_dict().values(), loaded.world_model.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b.cpu())
    # statistics-only load into an existing wrapper
    other = _wrap(DummyVecEnv([square_env_fn()] * 2), "latent")
    other.load_statistics(tmp_path / "curiosity.json")
    assert other.int_ret_rms.var == pytest.approx(venv.int_ret_rms.var)


def test_norm_horizon_lets_the_reward_scale_follow_a_falling_error(square_env_fn, tmp_path):
    """With all-time statistics, a 20x fall of the error leaves later rewards 20x smaller for good; with
    ``norm_horizon`` the scale follows the error down (count capped), and the setting survives save/load."""
    scaled = {}
    for horizon in (None, 64):
        venv = _wrap(DummyVecEnv([square_env_fn()] * 2), int_norm_horizon=horizon)
        venv.reset()
        for value in [1.0] * 200 + [0.05] * 400:  # the normaliser's own input, as step_wait passes it
            out = venv.normalize_intrinsic(np.full(2, value))
        scaled[horizon] = float(out[0])
        if horizon is not None:
            assert venv.int_ret_rms.count <= horizon
            venv.save(tmp_path / "stats.json")
            loaded = CuriosityVecEnv.load(tmp_path / "stats.json", DummyVecEnv([square_env_fn()] * 2), device="cpu")
            assert loaded.norm_horizon == horizon and loaded.int_ret_rms.count == venv.int_ret_rms.count
    assert scaled[None] < 0.005 and scaled[64] > 10 * scaled[None]
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="int_norm_horizon must be an int >= 1"):
            _wrap(DummyVecEnv([square_env_fn()]), int_norm_horizon=bad)


@pytest.mark.parametrize("variant", IMAGE_VARIANTS)
def test_seed_fixes_the_world_models_initial_weights(square_env_fn, variant):
    """Built with a seed, the world model starts from the same weights whatever torch drew before (the audit and
    the comparison's random agent build theirs without a global ``torch.manual_seed``)."""
    weights = []
    for draws in (0, 7):
        torch.rand(draws)
        venv = _wrap(DummyVecEnv([square_env_fn()]), variant)
        weights.append([t.detach().cpu().clone() for t in venv.world_model.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))
    other = CuriosityVecEnv(DummyVecEnv([square_env_fn()]), variant, device="cpu", seed=1, **{**TINY, **PLAIN})
    assert not all(
        torch.equal(a, b.cpu()) for a, b in zip(weights[0], other.world_model.state_dict().values(), strict=True)
    )


def test_eval_mode_freezes_model_and_statistics(square_env_fn):
    venv = _wrap(DummyVecEnv([square_env_fn()]))
    venv.reset()
    for _ in range(8):
        venv.step(np.array([1]))
    venv.training = False
    updates, count = venv.learner.updates, venv.int_ret_rms.count
    for _ in range(8):
        venv.step(np.array([2]))
    assert venv.learner.updates == updates and venv.int_ret_rms.count == count


@pytest.mark.parametrize("variant", IMAGE_VARIANTS)
def test_tiny_ppo_learn_end_to_end(square_env_fn, variant):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 2), variant)
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=8,
        batch_size=16,
        n_epochs=1,
        device="cpu",
        seed=0,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 16}},
    )
    model.learn(total_timesteps=16)
    assert model.num_timesteps == 16
    assert venv.learner.transitions_seen >= 16


@pytest.mark.parametrize("mode", ["ratio", "difference", "zscore"])
def test_action_baseline_rewards_surprise_beyond_the_actions_usual(square_env_fn, mode):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 3), action_baseline=mode)
    assert venv.baseline_mean.shape == (5,)
    venv.baseline_mean[:] = [0.0, 1.0, 1.0, 0.1, 0.1]
    venv.baseline_var[:] = [0.0, 0.25, 0.25, 0.01, 0.01]
    venv.baseline_count[:] = [0, 50, 50, 50, 50]
    venv.training = False
    # action 1 at its usual error pays nothing; action 3 at the same error pays; an action without a baseline yet
    # (fewer than BASELINE_WARMUP samples) pays nothing
    excess = venv.against_baseline(np.array([1.0, 1.0, 0.7]), np.array([1, 3, 0]))
    expected = {"ratio": [0.0, 9.0, 0.0], "difference": [0.0, 0.9, 0.0], "zscore": [0.0, 0.9 / 0.1001 - 2, 0.0]}[mode]
    np.testing.assert_allclose(excess, expected, rtol=1e-3)
    # far outliers are capped (zscore, ratio) so one cannot dominate the intrinsic return's std
    big = venv.against_baseline(np.array([1000.0]), np.array([3]))
    assert big[0] == (MAX_EXCESS if mode != "difference" else pytest.approx(999.9))
    # while training the means follow the errors
    venv.training = True
    venv.against_baseline(np.array([2.0, 2.0, 2.0]), np.array([1, 1, 0]))
    assert venv.baseline_mean[1] > 1.0 and venv.baseline_mean[0] == pytest.approx(2.0)
    assert venv.baseline_count.tolist() == [1, 52, 50, 50, 50]
    assert venv.baseline_var[0] == 0.0 and venv.baseline_var[1] != 0.25


def test_action_baseline_in_steps_and_saved(square_env_fn, tmp_path):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 2), action_baseline="ratio")
    venv.reset()
    for _ in range(10):
        _, rew, _, infos = venv.step(np.array([1, 3]))
        assert np.isfinite(rew).all() and all(i["curiosity"]["r_int_excess"] >= 0 for i in infos)
    assert venv.baseline_count.tolist() == [0, 10, 0, 10, 0]
    assert "curiosity/intrinsic_reward_excess" in venv.pop_stats()
    venv.save(tmp_path / "curiosity.json")
    loaded = CuriosityVecEnv.load(tmp_path / "curiosity.json", DummyVecEnv([square_env_fn()] * 2), device="cpu")
    assert loaded.action_baseline == "ratio"
    np.testing.assert_allclose(loaded.baseline_mean, venv.baseline_mean)
    with pytest.raises(ValueError, match="action_baseline"):
        _wrap(DummyVecEnv([square_env_fn()]), action_baseline="mean")


def test_world_model_sees_frames_at_its_resolution(square_env_fn):
    venv = _wrap(DummyVecEnv([square_env_fn(size=36)]), wm_resolution=16)
    assert venv.world_model.frame_shape == (3, 16, 16)
    obs = venv.reset()
    assert venv.stream.context.shape[-2:] == (16, 16)
    # the history holds the area-downsampled observation
    from tdwgym.agents.models import resize_frames

    expected = resize_frames(torch.from_numpy(obs.transpose(0, 3, 1, 2).copy()), (16, 16)).numpy()
    assert np.array_equal(venv.stream.context[:, -1].numpy(), expected)
    _, rew, _, _ = venv.step(np.array([1]))
    assert np.isfinite(rew).all()
    with pytest.raises(ValueError, match="at least 8 pixels"):
        _wrap(DummyVecEnv([square_env_fn()]), wm_resolution=4)


def test_zscore_reward_is_not_silenced_by_the_first_samples(square_env_fn):
    """Regression: after one sample an action's std is 0, and its next standard score used to be in the
    thousands; that one value inflated the intrinsic return's running std for good and the reward fell to ~0."""
    venv = _wrap(DummyVecEnv([square_env_fn()]), action_baseline="zscore")
    rng = np.random.default_rng(0)
    errors = [0.010, 0.011] + list(0.01 + 0.001 * rng.standard_normal(BASELINE_WARMUP + 200))
    for raw in errors:
        venv.normalize_intrinsic(venv.against_baseline(np.array([raw]), np.array([1])))
    # an error 10 std above the action's usual one now earns a clear reward
    excess = venv.against_baseline(np.array([0.02]), np.array([1]))
    assert excess[0] > 5
    assert venv.normalize_intrinsic(excess)[0] > 1.0


def test_stats_report_reward_by_action(square_env_fn):
    venv = _wrap(DummyVecEnv([square_env_fn()] * 2))
    venv.reset()
    for _ in range(6):
        venv.step(np.array([1, 3]))
    stats = venv.pop_stats()
    assert stats["curiosity/action_share/1"] == 0.5 and stats["curiosity/action_share/3"] == 0.5
    assert "curiosity/action_share/0" not in stats
    assert stats["curiosity/reward_by_action/1"] >= 0
    assert "curiosity/action_share/1" not in venv.pop_stats()  # emptied


def test_statistics_are_json_and_a_damaged_file_is_one_error_naming_it(square_env_fn, tmp_path):
    import json

    venv = _wrap(DummyVecEnv([square_env_fn()] * 2))
    venv.reset()
    venv.step(np.array([1, 2]))
    venv.save(tmp_path / "curiosity.json")
    stats = json.loads((tmp_path / "curiosity.json").read_text())  # plain JSON, no pickle
    assert stats["num_steps"] == 2 and stats["settings"] == json.loads(json.dumps(venv.settings()))
    (tmp_path / "bad.json").write_bytes(b"\x80\x04 not json")
    with pytest.raises(ValueError, match="bad.json"):
        CuriosityVecEnv.load(tmp_path / "bad.json", DummyVecEnv([square_env_fn()] * 2))
    (tmp_path / "other.json").write_text('{"num_steps": 3}')
    with pytest.raises(ValueError, match="other.json holds no curiosity statistics"):
        CuriosityVecEnv.load(tmp_path / "other.json", DummyVecEnv([square_env_fn()] * 2))
    venv.close()


def test_the_wrapper_from_python_is_what_tdwgym_train_runs(tmp_path):
    """``CuriosityVecEnv(venv)`` with no settings pays what ``tdwgym train`` pays: the same config, world model,
    learner and normalisation, defined once (``CuriosityConfig``, which ``TrainConfig`` extends)."""
    from tiny_train import TINY as TINY_TRAIN

    from tdwgym.agents.training import TrainConfig, make_vec_env

    cfg = TrainConfig(**{k: v for k, v in TINY_TRAIN.items() if not k.startswith("wm_")})
    assert CuriosityConfig.of(TrainConfig()) == CuriosityConfig() and CuriosityConfig.of(cfg) == CuriosityConfig()
    venv, trained = make_vec_env(cfg)
    try:
        mine = CuriosityVecEnv(trained.venv, device=cfg.device, seed=cfg.seed)
        assert mine.settings() == trained.settings()
        assert mine.config == CuriosityConfig()
        assert (mine.gamma, mine.action_baseline, mine.reward_gate) == (TrainConfig().gamma, "difference", "push")
        for a, b in zip(mine.world_model.state_dict().values(), trained.world_model.state_dict().values(), strict=True):
            assert torch.equal(a, b)  # the same seed builds the same model
        mine.learner.close()
    finally:
        venv.close()
    with pytest.raises(TypeError, match="unknown settings \\['gama'\\]; CuriosityConfig's fields are curiosity"):
        CuriosityVecEnv(venv, gama=0.9)


class _Moves(gym.Wrapper):
    """SquareEnv reporting ``camera_moved`` and ``camera_blocked`` as TDWRoom envs do: actions 1 and 2 move the
    camera here, action 3 asks it to move but is held in place (a wall), 0 leaves it still. With
    ``blocked=False`` the env reports ``camera_moved`` only (a third-party env)."""

    def __init__(self, env, blocked: bool = True):
        super().__init__(env)
        self.blocked = blocked

    def step(self, action):
        obs, rew, term, trunc, info = self.env.step(action)
        info = {**info, "camera_moved": int(action) in (1, 2), "push": {"attempted": int(action) == 4}}
        if self.blocked:
            info["camera_blocked"] = int(action) == 3
        return obs, rew, term, trunc, info


def test_push_gate_pays_only_pushes_that_held_the_camera_still(square_env_fn):
    """``reward_gate="push"``: of the still steps, only those whose action pushed pay (action 4 here)."""
    venv = _wrap(
        DummyVecEnv([lambda: _Moves(square_env_fn()())] * 5),
        action_baseline="none",
        reward_gate="push",
        clip_reward=None,
    )
    venv.reset()
    paid = np.array([False, False, False, False, True])  # no-op, moved, moved, blocked, push
    for _ in range(6):
        _, _, _, infos = venv.step(np.array([0, 1, 2, 3, 4]))
        raw = np.array([i["curiosity"]["r_int_raw"] for i in infos])
        excess = np.array([i["curiosity"]["r_int_excess"] for i in infos])
        assert (excess[~paid] == 0).all() and np.array_equal(excess[paid], raw[paid]) and (raw > 0).all()
    assert venv.learner.transitions_seen == 30  # the world model still learns from every transition
    plain = _wrap(DummyVecEnv([lambda: _Moves(square_env_fn()()).env]), reward_gate="push")
    plain.reset()
    with pytest.raises(ValueError, match='needs envs whose step info has "camera_moved"'):
        plain.step(np.array([0]))
    no_push = _wrap(DummyVecEnv([lambda: _NoPushInfo(square_env_fn()())]), reward_gate="push")
    no_push.reset()
    with pytest.raises(ValueError, match='needs envs whose step info has "push"'):
        no_push.step(np.array([0]))


class _NoPushInfo(_Moves):
    """Reports the camera's motion but not pushes."""

    def step(self, action):
        obs, rew, term, trunc, info = super().step(action)
        info.pop("push")
        return obs, rew, term, trunc, info


@pytest.mark.parametrize("blocked", [True, False])
def test_still_gate_pays_only_the_steps_that_held_the_camera_still(square_env_fn, tmp_path, blocked):
    venv = _wrap(
        DummyVecEnv([lambda: _Moves(square_env_fn()(), blocked)] * 4),
        action_baseline="none",
        reward_gate="still",
        clip_reward=None,
    )
    venv.reset()
    # moved, moved, blocked (unpaid when the env says so; an env without the key is taken at its camera_moved), still
    unpaid = np.array([True, True, blocked, False])
    for _ in range(6):
        _, _, _, infos = venv.step(np.array([1, 2, 3, 0]))
        raw = np.array([i["curiosity"]["r_int_raw"] for i in infos])
        excess = np.array([i["curiosity"]["r_int_excess"] for i in infos])
        assert (excess[unpaid] == 0).all() and np.array_equal(excess[~unpaid], raw[~unpaid]) and (raw > 0).all()
    assert venv.learner.transitions_seen == 24  # the world model still learns from every transition
    venv.save(tmp_path / "curiosity.json")
    loaded = CuriosityVecEnv.load(
        tmp_path / "curiosity.json", DummyVecEnv([lambda: _Moves(square_env_fn()(), blocked)])
    )
    assert loaded.reward_gate == "still"
    with pytest.raises(ValueError, match="reward_gate must be one of"):
        _wrap(DummyVecEnv([square_env_fn()]), reward_gate="moving")
    plain = _wrap(DummyVecEnv([square_env_fn()]), reward_gate="still")  # an env that does not say: a clear error
    plain.reset()
    with pytest.raises(ValueError, match='needs envs whose step info has "camera_moved"'):
        plain.step(np.array([0]))


def _objects_env(steps: int = 4):
    def make():
        return gym.make("tdwgym:TDWRoom-Occlusion-v0", obs_mode="rgbd_seg", resolution=32, max_episode_steps=steps)

    return make


@pytest.mark.parametrize("vec", ["dummy", "subproc"])
def test_objects_curiosity_keeps_each_envs_memory_and_forgets_it_at_its_reset(vec):
    """The object model's slot memory is carried per env through its episode and reset at that env's end, in a
    subprocess vector env too; the policy sees RGB only while the model reads segmentation and depth."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    fns = [_objects_env(4), _objects_env(6)]
    venv = SubprocVecEnv(fns, start_method="spawn") if vec == "subproc" else DummyVecEnv(fns)
    cur = CuriosityVecEnv(
        venv, "objects", device="cpu", seed=0, model_kwargs={"hidden": 8}, **{**TINY, "wm_background": False}
    )
    try:
        assert cur.observation_space.shape == (32, 32, 3) and cur.world_model.frame_shape == (24, 19)
        obs = cur.reset()
        assert obs.shape == (2, 32, 32, 3)
        zero = cur.world_model.initial_state(1)[0]
        for t in range(1, 7):
            obs, rew, done, infos = cur.step(np.zeros(2, dtype=np.int64))
            assert obs.shape == (2, 32, 32, 3) and np.all(np.isfinite(rew))
            for i in range(2):
                if done[i]:
                    assert torch.equal(cur.stream.state[i], zero)  # a fresh memory for the new episode
                    assert infos[i]["terminal_observation"].shape == (32, 32, 3)  # what the policy sees
                else:
                    assert not torch.equal(cur.stream.state[i], zero)  # it remembers what it has seen
            assert done.tolist() == [t == 4, t == 6]
    finally:
        cur.close()


def test_objects_curiosity_refuses_envs_without_segmentation_and_can_show_depth():
    with pytest.raises(TypeError, match="obs_mode='rgbd_seg'"):
        CuriosityVecEnv(DummyVecEnv([lambda: gym.make("TDWRoom-Occlusion-v0", resolution=32)]), "objects", device="cpu")
    cur = CuriosityVecEnv(DummyVecEnv([_objects_env()]), "objects", device="cpu", policy_obs="rgbd")
    try:
        obs = cur.reset()
        assert set(obs) == {"rgb", "depth"} and obs["depth"].shape == (1, 32, 32, 1)
    finally:
        cur.close()


def test_the_objects_curiosity_config_renders_segmentation_and_takes_no_pixel_settings():
    from tdwgym.agents.training import TrainConfig, env_kwargs_for

    cfg = TrainConfig(curiosity="objects")
    assert CuriosityConfig.of(cfg).passes() == ("segmentation", "depth")
    assert env_kwargs_for(cfg)["obs_mode"] == "rgbd_seg"
    assert CuriosityConfig.of(cfg).model_kwargs() == {}  # no width, warp or fovea for slot tables
    assert "obs_mode" not in env_kwargs_for(TrainConfig())
    progress = CuriosityConfig(curiosity="progress", progress_base="objects")
    assert progress.passes() == ("segmentation", "depth") and progress.model_kwargs() == {"progress_base": "objects"}
    with pytest.raises(ValueError, match="leave obs_mode out"):
        env_kwargs_for(TrainConfig(curiosity="objects", env_kwargs={"obs_mode": "rgbd"}))
    with pytest.raises(ValueError, match="progress_base must be one of"):
        CuriosityConfig(progress_base="nope")
