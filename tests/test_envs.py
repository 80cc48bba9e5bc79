"""Every registered id through the same API, determinism and invariant tests."""

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import tdwgym
from tdwgym.envs import DISCRETE_ACTIONS, OBS_MODES, OcclusionEnv
from tdwgym.envs.common import ROUND_SHAPES
from tdwgym.sim.geometry import camera_forward
from tdwgym.sim.scene import Camera, ObjectSpec, PropSpec, SceneSpec

ACTION_TYPES = ("discrete", "continuous")


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_gymnasium_and_sb3_check_env(env_id, obs_mode, action_type):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(
        env_id, obs_mode=obs_mode, action_type=action_type, resolution=32, render_mode="rgb_array", render_size=48
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gym_check_env(env.unwrapped, skip_render_check=False)
            sb3_check_env(env.unwrapped, warn=False)
    finally:
        env.close()


def test_registration_forms_and_time_limit():
    assert "TDWRoom-Occlusion-v0" in gym.registry
    for name in ("TDWRoom-Occlusion-v0", "tdwgym:TDWRoom-Occlusion-v0"):
        env = gym.make(name, resolution=16)
        assert isinstance(env.unwrapped, OcclusionEnv)
        assert env.spec.max_episode_steps == 300
        env.close()
    tdwgym.register_envs()  # idempotent


def test_truncates_at_300_steps_and_never_terminates(make_env):
    env = make_env(resolution=8)
    env.reset(seed=0)
    for t in range(300):
        _, reward, terminated, truncated, _ = env.step(0)
        assert reward == 0.0 and not terminated
        assert truncated == (t == 299)


def test_kwargs_pass_through(make_env):
    env = make_env(
        resolution=(24, 40),
        obs_mode="rgbd",
        action_type="continuous",
        render_mode="rgb_array",
        render_size=(60, 80),
        substeps=4,
    )
    obs, info = env.reset(seed=3)
    assert obs["rgb"].shape == (24, 40, 3) and obs["depth"].shape == (24, 40, 1)
    assert env.render().shape == (60, 80, 3)
    assert env.unwrapped.substeps == 4 and env.metadata["render_fps"] == 60
    env.step(env.action_space.sample())
    assert info["sim_time"] == 0.0


def test_same_seed_byte_identical_over_100_steps(env_id):
    envs = [gym.make(env_id, obs_mode="rgb_seg", action_type="discrete") for _ in range(2)]
    try:
        obs = [e.reset(seed=123)[0] for e in envs]
        actions = np.random.default_rng(0).integers(0, len(DISCRETE_ACTIONS), size=100)
        for a in actions:
            assert np.array_equal(obs[0]["rgb"], obs[1]["rgb"])
            assert np.array_equal(obs[0]["segmentation"], obs[1]["segmentation"])
            obs = [e.step(int(a))[0] for e in envs]
        assert envs[0].unwrapped.scene == envs[1].unwrapped.scene
    finally:
        for e in envs:
            e.close()


def test_different_seeds_give_different_scenes(env_id, make_env):
    env = make_env(env_id, resolution=16)
    scenes = set()
    for seed in range(20):
        env.reset(seed=seed)
        scenes.add(env.unwrapped.scene.to_json())
    assert len(scenes) == 20


def _still_scene(camera_yaw=0.0, cube_z=1.0) -> SceneSpec:
    return SceneSpec(
        objects=(
            ObjectSpec(id=1, shape="cube", size=(0.4,) * 3, position=(0, 0.2, cube_z), friction=0.3),
            ObjectSpec(id=2, shape="sphere", size=(0.3,) * 3, position=(2.5, 0.15, -2.0)),
        ),
        camera=Camera(position=(0, 0.5, 0), yaw=camera_yaw, pitch=-10.0),
    )


def test_push_moves_the_hit_object_along_the_push_direction(make_env):
    env = make_env(resolution=16)
    env.reset(seed=0, options={"scene": _still_scene()})
    _, _, _, _, info = env.step(DISCRETE_ACTIONS.index("push"))
    assert info["push"] == {"attempted": True, "hit": True, "object_id": 1, "moved": True}
    v = info["objects"][1]["velocity"]
    push_dir = camera_forward(0.0, -10.0)
    horizontal = np.array([push_dir[0], 0, push_dir[2]])
    assert v @ horizontal / np.linalg.norm(horizontal) > 0.5
    assert abs(v[0]) < 0.05 * np.linalg.norm(v)
    assert np.allclose(info["objects"][2]["velocity"], 0.0, atol=1e-3)
    for _ in range(5):
        env.step(0)
    assert env.unwrapped.backend.object_states()[1].position[2] > 1.0 + 0.05


def test_push_reward_pays_only_pushes_that_move_an_object(make_env):
    """``push_reward``: the reward of a step whose push moved an object; every other step (and the default) 0."""
    push = DISCRETE_ACTIONS.index("push")
    env = make_env(resolution=16, push_reward=2.5)
    env.reset(seed=0, options={"scene": _still_scene()})
    assert env.step(0)[1] == 0.0
    _, reward, _, _, info = env.step(push)
    assert info["push"]["moved"] and reward == 2.5
    env.step(DISCRETE_ACTIONS.index("turn_left"))
    env.step(DISCRETE_ACTIONS.index("turn_left"))
    _, reward, _, _, info = env.step(push)  # turned away: a push at the floor or a wall moves nothing
    assert not info["push"]["moved"] and reward == 0.0
    default = make_env(resolution=16)
    default.reset(seed=0, options={"scene": _still_scene()})
    _, reward, _, _, info = default.step(push)
    assert info["push"]["moved"] and reward == 0.0
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="push_reward must be a finite number >= 0"):
            make_env(push_reward=bad)


def test_push_cone_hits_the_object_nearest_the_view_axis_in_line_of_sight(make_env):
    """``push_cone``: a push that misses along the view axis hits the movable object nearest it within the cone."""
    cube_off_axis = 12.0  # the cube stands 12 deg right of the view axis (yaw 0 looks along +z)
    scene = SceneSpec(
        objects=(
            ObjectSpec(id=1, shape="cube", size=(0.3,) * 3, position=(0.3, 0.5, 1.5), friction=0.3),
            ObjectSpec(id=2, shape="sphere", size=(0.3,) * 3, position=(-2.5, 0.15, 2.0)),
        ),
        camera=Camera(position=(0, 0.5, 0), yaw=-cube_off_axis + float(np.degrees(np.arctan2(0.3, 1.5))), pitch=0.0),
    )
    push = DISCRETE_ACTIONS.index("push")
    for cone, hit in ((0.0, False), (10.0, False), (15.0, True)):
        env = make_env(resolution=16, push_cone=cone)
        env.reset(seed=0, options={"scene": scene})
        _, _, _, _, info = env.step(push)
        assert info["push"]["hit"] == hit, cone
        if hit:  # pushed along the ray to it, not along the view axis
            assert info["push"]["object_id"] == 1 and info["push"]["moved"]
            v = np.asarray(info["objects"][1]["velocity"])
            assert v[0] > 0 and v[2] > 0 and abs(np.degrees(np.arctan2(v[0], v[2])) - 11.3) < 5
            assert np.allclose(info["objects"][2]["velocity"], 0.0, atol=1e-3)
    # behind another object (out of sight) it is not pushed: a wall prop between the camera and the cube
    hidden = dataclasses.replace(scene, props=(PropSpec(id=9, size=(0.4, 1.0, 0.05), position=(0.15, 0.5, 0.8)),))
    env = make_env(resolution=16, push_cone=15.0)
    env.reset(seed=0, options={"scene": hidden})
    assert not env.step(push)[4]["push"]["hit"]
    with pytest.raises(ValueError, match="push_cone"):
        make_env(push_cone=95.0)


@pytest.mark.parametrize("yaw, pitch_steps", [(180.0, 0), (0.0, 12)])  # facing the far wall; looking at the floor
def test_push_at_wall_or_floor_moves_nothing(make_env, yaw, pitch_steps):
    env = make_env(resolution=16)
    scene = _still_scene(camera_yaw=yaw, cube_z=3.0)
    env.reset(seed=0, options={"scene": scene})
    for _ in range(pitch_steps):
        env.step(DISCRETE_ACTIONS.index("look_down"))
    twin = make_env(resolution=16)
    twin.reset(seed=0, options={"scene": scene})
    for _ in range(pitch_steps):
        twin.step(DISCRETE_ACTIONS.index("look_down"))
    _, _, _, _, info = env.step(DISCRETE_ACTIONS.index("push"))
    _, _, _, _, twin_info = twin.step(0)
    assert info["push"]["attempted"] and not info["push"]["hit"]
    for oid in (1, 2):
        assert np.array_equal(info["objects"][oid]["position"], twin_info["objects"][oid]["position"])
        assert np.linalg.norm(info["objects"][oid]["velocity"]) < 1e-3


def test_random_walk_invariants_over_2000_steps(make_env):
    env = make_env(resolution=8, action_type="continuous")
    env.action_space.seed(0)
    env.reset(seed=1)
    be = env.unwrapped.backend
    for t in range(2000):
        _, _, _, truncated, info = env.step(env.action_space.sample())
        scene = env.unwrapped.scene
        cam = info["camera"]["position"]
        assert np.all(np.isfinite(cam)) and scene.room.contains(cam[0], cam[2], margin=scene.camera.radius)
        # the camera's collider may touch but never sink into an object
        assert [i for i in be.overlapping(cam, scene.camera.radius * 0.5) if i != 0] == []
        for oid, st in info["objects"].items():
            for key in ("position", "rotation", "velocity", "angular_velocity"):
                assert np.all(np.isfinite(st[key])), (t, oid, key)
            assert st["position"][1] > 0.0, (t, oid)  # above the floor
            assert scene.room.contains(st["position"][0], st["position"][2])
        if truncated:
            env.reset()


def test_make_step_close_cycles_leave_no_client_connected():
    clients = []
    for i in range(20):
        env = gym.make("TDWRoom-Occlusion-v0", resolution=8)
        env.reset(seed=i)
        env.step(0)
        clients.append(env.unwrapped.backend.client)
        env.close()
    for cid in set(clients):
        assert pb.getConnectionInfo(physicsClientId=cid)["isConnected"] == 0


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", [10, -1, 1.0, np.float32(2), "push", None, [1, 2], np.array([1, 2]), True])
def test_bad_discrete_actions_raise_and_env_stays_usable(make_env, action):
    env = make_env(resolution=8)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Discrete"):
        env.step(action)
    obs, *_ = env.step(np.int64(1))
    assert obs.shape == (8, 8, 3)


@pytest.mark.parametrize(
    "action",
    [
        np.zeros(4, np.float32),
        np.full(5, 2.0, np.float32),
        np.array([0, 0, np.nan, 0, 0], np.float32),
        np.array(["a"] * 5),
        np.zeros((5, 1), np.float32),
        np.array([0, 0, 0, 0, -0.5], np.float32),
        3,
    ],
)
def test_bad_continuous_actions_raise_and_env_stays_usable(make_env, action):
    env = make_env(resolution=8, action_type="continuous")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Box"):
        env.step(action)
    env.step(np.zeros(5, np.float32))
    env.step([0.5, 0, 0, 0, 0])  # a list of floats is a valid action


def test_unknown_kwarg_is_type_error():
    with pytest.raises(TypeError, match="resolutoin"):
        gym.make("TDWRoom-Occlusion-v0", resolutoin=32)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution": 0}, r"resolution must be in 1\.\.4096 pixels per side, got 0"),
        ({"resolution": 100_000}, r"resolution must be in 1\.\.4096"),
        ({"render_size": (64, 10**6)}, r"render_size must be in 1\.\.4096"),
        ({"resolution": -5}, "resolution"),
        ({"resolution": (32, 0)}, "resolution"),
        ({"resolution": 3.5}, "resolution"),
        ({"obs_mode": "rgbx"}, r"\['rgb', 'rgbd', 'rgb_seg', 'rgbd_seg'\]"),
        ({"action_type": "joint"}, r"\['discrete', 'continuous'\]"),
        ({"backend": "mujoco"}, r"\['bullet', 'tdw'\]"),
        ({"render_mode": "ansi"}, "render_mode"),
        ({"substeps": 0}, "substeps"),
        ({"num_objects": 7}, "num_objects"),
        ({"slide_distance": 0}, r"slide_distance must be a number of metres > 0 or None, got 0"),
        ({"slide_distance": float("inf")}, "slide_distance"),
        ({"slide_distance": "12"}, "slide_distance"),
    ],
)
def test_bad_kwargs_raise_value_error_listing_valid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("TDWRoom-Occlusion-v0", **kwargs)


def test_slide_distance_lowers_only_the_sliders_friction_and_keeps_the_scene():
    """``slide_distance`` gives moving sliders (not rolling shapes, not objects at rest) friction ``<= v^2 / (2 g d)``
    and changes nothing else of the scene a seed draws (the split is decided before it); without it the friction
    stops every slider well short of 12 m."""
    default = gym.make("TDWRoom-Occlusion-v0", resolution=8, level=2)
    far = gym.make("TDWRoom-Occlusion-v0", resolution=8, level=2, slide_distance=12.0)
    try:
        sliders = 0
        for seed in range(12):
            default.reset(seed=seed)
            far.reset(seed=seed)
            a, b = default.unwrapped.scene, far.unwrapped.scene
            assert dataclasses.replace(b, objects=a.objects) == a  # room, props, camera: the same draw
            for x, y in zip(a.objects, b.objects, strict=True):
                assert dataclasses.replace(y, friction=x.friction) == x
                v2 = float(np.dot(x.velocity, x.velocity))
                if x.shape in ROUND_SHAPES or v2 == 0:  # rolling shapes and distractors at rest keep theirs
                    assert y.friction == x.friction
                    continue
                sliders += 1
                assert y.friction <= v2 / (2 * 9.81 * 12.0) + 1e-12 < x.friction
                assert v2 / (2 * 9.81 * x.friction) < 12.0 / 1.5  # the default stops it well short of 12 m
        assert sliders >= 3, "the seeds must draw some sliders"
    finally:
        default.close()
        far.close()


@pytest.mark.parametrize(
    "position, yaw, pitch, match",
    [
        ((0.0, float("nan"), -2.0), 0.0, 0.0, "position must be 3 finite numbers"),
        ((0.0, 1.0, float("inf")), 0.0, 0.0, "position must be 3 finite numbers"),
        ((0.0, 1.0), 0.0, 0.0, "position must be 3 finite numbers"),
        ((0.0, 1.0, -2.0), float("nan"), 0.0, "yaw and pitch must be finite"),
        ((0.0, 1.0, -2.0), 0.0, float("-inf"), "yaw and pitch must be finite"),
        (("a", 1.0, -2.0), 0.0, 0.0, "position of 3 numbers"),
    ],
)
def test_set_camera_pose_refuses_non_finite_poses_and_keeps_the_camera(make_env, position, yaw, pitch, match):
    env = make_env(resolution=8)
    env.reset(seed=0)
    before = env.unwrapped.camera_pose
    with pytest.raises(ValueError, match=match):
        env.unwrapped.set_camera_pose(position, yaw, pitch)
    after = env.unwrapped.camera_pose
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1:] == after[1:]
    obs, *_ = env.step(0)
    assert np.isfinite(env.unwrapped.camera_pose[0]).all() and obs.shape == (8, 8, 3)


def test_step_before_reset_raises_clear_error():
    env = OcclusionEnv(resolution=8)
    try:
        with pytest.raises(gym.error.ResetNeeded, match="reset"):
            env.step(0)
    finally:
        env.close()
    env = gym.make("TDWRoom-Occlusion-v0", resolution=8)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    env.close()


def test_bad_reset_options_raise(make_env):
    env = make_env(resolution=8)
    with pytest.raises(ValueError, match="valid options"):
        env.reset(options={"level": 2})
    with pytest.raises(TypeError, match="SceneSpec"):
        env.reset(options={"scene": {"objects": []}})
    env.reset(seed=0)


def test_extra_passes_come_from_the_observations_own_render(make_env):
    env = make_env(resolution=16, extra_passes=("depth",))
    obs, _ = env.reset(seed=0)
    frames = env.unwrapped.last_frames
    assert set(frames) == {"rgb", "depth", "segmentation"}
    assert frames["rgb"] is obs and frames["depth"].shape == (16, 16)
    obs, *_ = env.step(0)
    assert env.unwrapped.last_frames["rgb"] is obs
    with pytest.raises(ValueError, match="extra_passes"):
        gym.make("TDWRoom-Occlusion-v0", extra_passes=("normals",))


def test_ceiling_kwarg_keeps_the_scene_and_its_split():
    """Rooms have a ceiling by default; ``ceiling=False`` draws the same scene for a seed, without one."""
    import dataclasses

    from tdwgym.envs import scene_key

    closed = gym.make("TDWRoom-Playroom-v0", level=1)
    open_top = gym.make("TDWRoom-Playroom-v0", level=1, ceiling=False)
    try:
        for seed in range(4):
            a, b = closed.unwrapped.sample_scene(seed=seed), open_top.unwrapped.sample_scene(seed=seed)
            assert a.room.ceiling and not b.room.ceiling
            assert dataclasses.replace(a, room=dataclasses.replace(a.room, ceiling=False)) == b
            assert scene_key(a) == scene_key(b)
        # looking straight up: the ceiling, a few metres away; without it, nothing up to the far plane
        for env, near in ((closed, True), (open_top, False)):
            env.reset(seed=0)
            u = env.unwrapped
            u.set_camera_pose(u._cam_pos, u._yaw, u.pitch_limit)
            depth = u.backend.render(16, 16, ("depth",))["depth"]
            assert (float(depth[8, 8]) < 10.0) == near
        with pytest.raises(ValueError, match="ceiling must be True or False"):
            gym.make("TDWRoom-Playroom-v0", ceiling="yes")
    finally:
        closed.close()
        open_top.close()


def test_an_env_whose_first_reset_failed_resets_and_steps_normally_after():
    env = gym.make("TDWRoom-Occlusion-v0", resolution=16)
    with pytest.raises(Exception, match="[Ss]eed"):
        env.reset(seed=-1)
    obs, _ = env.reset(seed=1)
    obs2, *_ = env.step(0)
    assert obs.shape == obs2.shape == (16, 16, 3)
    env.close()


def test_info_level_light_keeps_what_training_reads_and_the_rest_on_demand():
    """``info_level="light"`` drops the per-object states, camera and contacts from ``info`` (what a subprocess
    vector env pickles per step) but not from the env: the same seed and actions give the same observations and
    training keys, and :meth:`full_info` returns the dropped keys equal to the full env's."""
    full = gym.make("TDWRoom-Collision-v0", resolution=32)
    light = gym.make("TDWRoom-Collision-v0", resolution=32, info_level="light")
    try:
        (o1, i1), (o2, i2) = full.reset(seed=3), light.reset(seed=3)
        assert np.array_equal(o1, o2) and i1["labels"] == i2["labels"]
        for t in range(40):
            a = t % full.action_space.n
            o1, _, _, _, i1 = full.step(a)
            o2, _, _, _, i2 = light.step(a)
            assert np.array_equal(o1, o2)
            assert {"objects", "camera", "contacts"} <= set(i1) and not {"objects", "camera", "contacts"} & set(i2)
            for key in ("push", "objects_in_view", "visible_ids", "sim_time", "events"):
                assert i1[key] == i2[key]
            extra = light.unwrapped.full_info()
            assert extra["objects"].keys() == i1["objects"].keys()
            for oid, state in i1["objects"].items():
                assert np.allclose(extra["objects"][oid]["position"], state["position"])
            assert np.allclose(extra["camera"]["position"], i1["camera"]["position"])
            assert len(extra["contacts"]) == len(i1["contacts"])
    finally:
        full.close()
        light.close()
    with pytest.raises(ValueError, match="info_level"):
        gym.make("TDWRoom-Collision-v0", info_level="none")


def test_human_render_mode_draws_every_reset_and_step_in_a_window(monkeypatch):
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gym.make("TDWRoom-Occlusion-v0", render_mode="human", render_size=96, resolution=32)
    try:
        shown = []
        unwrapped = env.unwrapped
        env.reset(seed=0)
        window = unwrapped._window
        assert window is not None and window.size == (384, 384)  # 96 px scaled by 4 to the minimum side
        real_show = window.show
        window.show = lambda frame: (shown.append(frame.copy()), real_show(frame))
        for _ in range(3):
            env.step(0)
        assert env.render() is None  # Gymnasium's convention for human mode
        assert len(shown) == 4 and all(f.shape == (96, 96, 3) and f.dtype == np.uint8 for f in shown)
        assert not np.array_equal(shown[0], shown[1])  # action 0 moves the camera: the window shows it
    finally:
        env.close()
    assert unwrapped._window is None


def test_human_render_mode_without_pygame_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(ImportError, match=r"tdwgym\[play\]"):
        gym.make("TDWRoom-Occlusion-v0", render_mode="human")


@pytest.mark.parametrize("obs_mode", ["rgbd", "rgb_seg"])
def test_depth_and_segmentation_are_finite_image_spaces_that_sb3_gives_a_cnn(obs_mode):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import NatureCNN

    from tdwgym.envs.wrappers import ChannelsFirst

    env = gym.make("TDWRoom-Occlusion-v0", obs_mode=obs_mode, resolution=36)
    try:
        key = "depth" if obs_mode == "rgbd" else "segmentation"
        space = env.observation_space[key]
        assert space.shape == (36, 36, 1) and np.all(np.isfinite(space.high)) and np.all(space.low == 0)
        obs, _ = env.reset(seed=0)
        assert obs[key].shape == (36, 36, 1) and space.contains(obs[key])
        # depth is float and ids go past 255: SB3 takes them as images, channels-first, when it does not rescale
        wrapped = ChannelsFirst(env)
        assert wrapped.observation_space[key].shape == (1, 36, 36)
        first, _ = wrapped.reset(seed=0)
        np.testing.assert_array_equal(first[key][0], obs[key][..., 0])
        assert first["rgb"].shape == (36, 36, 3)
        model = PPO("MultiInputPolicy", wrapped, n_steps=8, batch_size=8, policy_kwargs={"normalize_images": False})
        extractors = model.policy.features_extractor.extractors
        assert isinstance(extractors["rgb"], NatureCNN) and isinstance(extractors[key], NatureCNN)
        model.learn(8)  # the CNNs take the observations
    finally:
        env.close()


def test_gymnasium_image_wrappers_work_on_the_envs():
    """The ``tdwgym[wrappers]`` extra brings what Gymnasium's common image wrappers need (opencv)."""
    pytest.importorskip("cv2", reason="pip install 'tdwgym[wrappers]'")
    from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, ResizeObservation

    env = FrameStackObservation(ResizeObservation(GrayscaleObservation(gym.make("TDWRoom-Occlusion-v0")), (32, 32)), 4)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 32, 32) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
        obs, *_ = env.step(0)
        assert env.observation_space.contains(obs)
    finally:
        env.close()


@pytest.mark.parametrize("info_level", ["light", "full"])
def test_info_says_whether_the_step_moved_the_camera(info_level):
    """``info["camera_moved"]``: a turn, a nod or a step moves it; no-op and push do not, nor a nod against the pitch
    limit or a step into a wall, which ``info["camera_blocked"]`` reports (asked to move, held in place)."""
    env = gym.make("TDWRoom-Playroom-v0", resolution=32, info_level=info_level)
    try:
        env.reset(seed=0)
        moved, blocked = {}, {}
        for name in ("noop", "turn_left", "look_down", "push", "turn_right", "noop"):
            info = env.step(DISCRETE_ACTIONS.index(name))[4]
            moved[name], blocked[name] = info["camera_moved"], info["camera_blocked"]
        assert moved == {"noop": False, "turn_left": True, "look_down": True, "push": False, "turn_right": True}
        assert not any(blocked.values())
        up = DISCRETE_ACTIONS.index("look_up")
        flags = [env.step(up)[4] for _ in range(40)]
        assert flags[0]["camera_moved"] and not flags[0]["camera_blocked"]
        # at the pitch limit a nod leaves the camera where it was: blocked
        assert not flags[-1]["camera_moved"] and flags[-1]["camera_blocked"]
        forward = DISCRETE_ACTIONS.index("forward")
        walk = [env.step(forward)[4] for _ in range(300)]
        assert walk[0]["camera_moved"] and not walk[0]["camera_blocked"]
        # walking on ends against a wall or an object: held in place from then on
        assert not walk[-1]["camera_moved"] and walk[-1]["camera_blocked"]
    finally:
        env.close()


def test_rgbd_seg_observes_rgb_depth_and_segmentation_of_the_same_frame():
    env = gym.make("TDWRoom-Occlusion-v0", obs_mode="rgbd_seg", resolution=24)
    try:
        obs, _ = env.reset(seed=3)
        assert set(obs) == {"rgb", "depth", "segmentation"} and env.observation_space.contains(obs)
        obs, *_ = env.step(0)
        frames = env.unwrapped.last_frames
        np.testing.assert_array_equal(obs["rgb"], frames["rgb"])
        np.testing.assert_array_equal(obs["segmentation"][..., 0], frames["segmentation"])
        np.testing.assert_allclose(obs["depth"][..., 0], np.minimum(frames["depth"], 100.0))
    finally:
        env.close()
