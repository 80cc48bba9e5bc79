"""Fault injection, issue 32 parts 4-7: every door refuses in one line (JSON options, model kwargs, an offline TDW
download, a module that raises on import, play without a display), data that lies, scenes within reason (bodies that
interpenetrate, positions outside the room)
(docs/faults.md; the rest of the case matrix is in test_faults.py and test_faults_writers.py)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from tdwgym.cli import main as cli_main
from tdwgym.sim.scene import Camera, ObjectSpec, PropSpec, Room, SceneEvent, SceneSpec
from tdwgym.tools import dataset as ds


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_eval_model_whose_module_raises_names_the_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nraise RuntimeError('boom at import')\n")
    argv = ["eval", "--model", f"{bad}:M", "--quick", "--out", str(tmp_path / "ev"), "--device", "cpu"]
    assert cli_main([*argv, "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(bad) in line and "line 2" in line and "RuntimeError: boom at import" in line, line


def test_play_without_a_display_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    assert cli_main(["play", "--steps", "2"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no display" in line and "--out" in line, line


def test_play_without_a_display_records_to_out_without_a_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from tdwgym.tools.video import read_video

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "session.mp4"
    argv = ["play", "--out", str(out), "--steps", "3", "--size", "32", "--seed", "1"]
    assert cli_main([*argv, "--env-kwargs", '{"resolution": 16}']) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert "no display: recording 3 steps without a window" in said and f"wrote {out}" in said, said
    frames = read_video(out)
    assert frames.shape == (4, 32, 32, 3)  # the reset's frame and one per step
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() < 30  # no key: the camera stood still


@pytest.mark.parametrize("command", ["record", "pretrain"])
def test_json_options_nested_deep_or_not_objects_are_one_line(command: str, tmp_path: Path, capsys) -> None:
    option = "--env-kwargs" if command == "record" else "--model-kwargs"
    for text in ('{"a": ' * 30_000 + "1" + "}" * 30_000, "[1]", '{"a": ' * 9 + "1" + "}" * 9):
        argv = [command, option, text, "--out", str(tmp_path / ("v.mp4" if command == "record" else "p"))]
        with pytest.raises(SystemExit) as exit_:
            cli_main(argv)
        assert exit_.value.code == 2
        line = _one_line(capsys.readouterr().err)
        assert option in line and len(line) < 400, line


# -- arguments checked against the signature they feed (issue 32) --------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ('{"width": -5}', "width of the pixel model must be 1 .. 4096, got -5"),
        ('{"width": 1000000000000}', "must be 1 .. 4096"),
        ('{"latent_dim": 1e12}', "latent_dim of the pixel model must be an integer, got 1000000000000.0"),
        ('{"bogus": 1}', "takes no 'bogus'; its arguments are context_frames, width, latent_dim"),
        ('{"warp": "yes"}', "warp of the pixel model must be true or false"),
        ('{"fovea": -1.0}', "must be a finite number >= 0"),
        ('{"width": [16]}', "width of the pixel model must be an integer"),
    ],
)
def test_pretrain_model_kwargs_are_checked_against_the_models_signature(
    kwargs: str, said: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "p"
    argv = ["pretrain", "--model", "pixel", "--model-kwargs", kwargs, "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--model-kwargs" in line and said in line, line
    assert not out.exists()


def test_a_float_setting_given_as_an_integer_is_checked_as_a_number() -> None:
    """``{"pixel_spread": 0}`` (JSON has no float zero of its own) is 0 pixels, not a size below 1."""
    from tdwgym.agents.models import check_model_kwargs

    check_model_kwargs("objects", {"pixel_spread": 0, "max_friction": 0})
    with pytest.raises(ValueError, match="pixel_spread of the objects model must be a finite number >= 0, got -1"):
        check_model_kwargs("objects", {"pixel_spread": -1})
    with pytest.raises(ValueError, match="hidden of the objects model must be 1 .. 4096, got 0"):
        check_model_kwargs("objects", {"hidden": 0})


def test_model_kwargs_of_progress_are_checked_against_its_base_model() -> None:
    from tdwgym.agents.models import check_model_kwargs, make_world_model

    with pytest.raises(ValueError, match="hidden of the recurrent model must be 1 .. 4096, got -5"):
        check_model_kwargs("progress", {"progress_base": "recurrent", "hidden": -5})
    with pytest.raises(ValueError, match="the rnd model takes no 'hidden'"):
        make_world_model("rnd", (3, 16, 16), 10, hidden=8)
    check_model_kwargs("progress", {"progress_base": "recurrent", "hidden": 8, "lag_updates": 10})


def test_tdw_backend_without_a_network_is_one_line_saying_what_to_do_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("tdw")
    import requests
    from tdw.backend.update import Update

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Max retries exceeded with url: /threedworld-mit/tdw/releases")

    monkeypatch.setattr(Update, "check_for_update", staticmethod(offline))
    for name in ("TDWGYM_TDW_BUILD", "TDWGYM_TDW_LAUNCH", "TDWGYM_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "v.mp4"
    argv = ["record", "--env-kwargs", '{"backend": "tdw"}', "--steps", "2", "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot download TDW's build: no network (ConnectionError" in line, line
    assert "TDWGYM_TDW_BUILD" in line and "bullet" in line and not out.exists()


# -- data that lies: arrays that disagree with their own metadata (issue 32) -----------------------------------------
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("lies") / "data"
    ds.generate(ds.DatasetConfig(out=data, episodes=2, frames=10, resolution=16), progress=False)
    return data


def _rewrite(path: Path, name: str, data: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data, fletcher32=True)  # a checksum of its own: only the metadata disagrees


def _lie(path: Path, how: str) -> None:
    import h5py

    with h5py.File(path, "r+") as f:
        img, depth = f["frames/images/_img"][()], f["frames/images/_depth"][()]
        if how == "num_frames":
            f.attrs["num_frames"] = 1000
    if how == "img_frames":
        _rewrite(path, "frames/images/_img", img[:5])
    elif how == "img_size":
        _rewrite(path, "frames/images/_img", np.zeros((len(img), 10, 10, 3), np.uint8))
    elif how == "all_sizes":  # the three passes agree with each other, not with the camera
        _rewrite(path, "frames/images/_img", np.zeros((len(img), 10, 10, 3), np.uint8))
        _rewrite(path, "frames/images/_depth", np.ones((len(img), 10, 10), np.float32))
        _rewrite(path, "frames/images/_id", np.zeros((len(img), 10, 10), np.uint16))
    elif how == "nan_depth":
        _rewrite(path, "frames/images/_depth", np.full_like(depth, np.nan))


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("num_frames", "has 10 frames, its num_frames attribute says 1000"),
        ("img_frames", "_img has 5 frames, its num_frames attribute says 10"),
        ("img_size", "_depth is 16x16 pixels, _img 10x10"),
        ("all_sizes", "its images are 10x10 pixels, its camera intrinsics say 16x16"),
        ("nan_depth", "_depth holds non-finite values, first at frame 0"),
    ],
)
def test_an_episode_whose_arrays_disagree_with_its_metadata_is_caught(
    small_dataset: Path, tmp_path: Path, how: str, said: str
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    bad = ds.episode_files(data)[1]
    _lie(bad, how)
    assert ds.episode_is_valid(ds.episode_files(data)[0])
    assert not ds.episode_is_valid(bad)
    with pytest.raises(ds.DamagedEpisodeError, match=str(bad)) as caught:
        ds.load_episode(bad)
    assert said in str(caught.value)
    with pytest.raises(ds.DamagedEpisodeError, match=str(bad)) as caught:  # on open, or as the clip is read
        clips = ds.ClipDataset(data, clip_len=4, keys=("rgb", "depth"))
        for i in range(len(clips)):
            clips[i]
    assert said in str(caught.value)
    with pytest.warns(UserWarning, match=f"skipping {bad}"):
        clips = ds.ClipDataset(data, clip_len=4, keys=("rgb", "depth"), on_damaged="skip")
        items = [clips[i] for i in range(len(clips))]
    assert clips.damaged == [bad]
    assert all(item["rgb"].shape == (4, 3, 16, 16) and bool(item["depth"].isfinite().all()) for item in items)


def test_pretrain_on_a_dataset_with_a_damaged_file_names_it_and_goes_on_or_stops(
    small_dataset: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    bad = ds.episode_files(data)[0]
    _lie(bad, "img_size")
    argv = ["pretrain", "--data", str(data), "--model", "recurrent", "--resolution", "16", "--clip-steps", "4"]
    argv += ["--tbptt", "4", "--batch-size", "2", "--total-steps", "16", "--val-every", "16", "--val-clips", "1"]
    argv += ["--workers", "0", "--model-kwargs", '{"width": 8, "hidden": 8}', "--device", "cpu", "--no-progress"]
    with pytest.warns(UserWarning, match=f"skipping {bad}"):
        assert cli_main([*argv, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "world_model.pt").is_file()
    capsys.readouterr()
    assert cli_main([*argv, "--out", str(tmp_path / "q"), "--no-skip-damaged"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(bad) in line and "_depth is 16x16 pixels, _img 10x10" in line, line


# -- scenes within reason (issue 32) ---------------------------------------------------------------------------------
def _cube(i: int, **changes: object) -> ObjectSpec:
    return ObjectSpec(**{"id": i, "shape": "cube", "size": (0.2, 0.2, 0.2), "position": (0.0, 0.1, 0.0), **changes})


@pytest.mark.parametrize(
    ("scene", "said"),
    [
        (lambda: SceneSpec(objects=(_cube(1, position=(100.0, 0.1, 0.0)),)), "ObjectSpec.position of object 1"),
        (lambda: SceneSpec(objects=(_cube(1, position=(0.0, 0.1, -4.5)),)), "outside the 8 x 8 x 3 m room"),
        (lambda: SceneSpec(objects=(_cube(1, position=(0.0, -1.0, 0.0)),)), "y in [0, 3]"),
        (lambda: SceneSpec(objects=(_cube(1, velocity=(1e30, 0.0, 0.0)),)), "ObjectSpec.velocity of object 1 is 1e+30"),
        (lambda: SceneSpec(objects=(_cube(1, angular_velocity=(0.0, 1e6, 0.0)),)), "ObjectSpec.angular_velocity"),
        (lambda: SceneSpec(gravity=1e30), "SceneSpec.gravity"),
        (lambda: SceneSpec(objects=tuple(_cube(i + 1) for i in range(300))), "300 objects, more than the 64"),
    ],
)
def test_a_scene_beyond_reason_is_refused_in_one_line_naming_the_field(scene, said: str) -> None:
    from tdwgym.sim.scene import SceneError

    with pytest.raises(SceneError) as caught:
        scene()
    message = str(caught.value)
    assert said in message and "\n" not in message, message


def test_the_bounds_of_a_scene_are_defined_once_and_a_scene_at_them_is_accepted() -> None:
    from tdwgym.sim import scene as sc

    at_bounds = SceneSpec(
        objects=tuple(
            _cube(i + 1, position=(-3.5 + 0.5 * (i % 8), 0.1, 3.5 - 0.5 * (i // 8))) for i in range(sc.MAX_OBJECTS - 1)
        )
        + (_cube(sc.MAX_OBJECTS, velocity=(sc.MAX_SPEED, 0.0, 0.0), angular_velocity=(0, 0, sc.MAX_ANGULAR_SPEED)),),
        gravity=sc.MAX_GRAVITY,
    )
    assert SceneSpec.from_json(at_bounds.to_json()) == at_bounds
    env = gym.make("TDWRoom-Occlusion-v0", resolution=16)
    try:
        with pytest.raises(sc.SceneError, match="ObjectSpec.position of object 1"):
            env.reset(seed=0, options={"scene": SceneSpec(objects=(_cube(1, position=(100.0, 0.1, 0.0)),))})
    finally:
        env.close()


# -- bodies that interpenetrate at reset, and positions outside the room -------------------------------------------


def _at(i: int, shape: str, size: tuple[float, float, float], position: tuple[float, ...], **changes) -> ObjectSpec:
    return ObjectSpec(id=i, shape=shape, size=size, position=position, name=f"{shape}{i}", **changes)


@pytest.mark.parametrize(
    ("objects", "props", "said"),
    [
        ((_cube(1), _cube(2)), (), "object 1 (cube) and object 2 (cube) overlap by 0.2 m"),
        ((_cube(1), _cube(2, position=(0.15, 0.1, 0.0))), (), "overlap by 0.05 m"),
        # a cube turned 45 degrees pokes its edge 0.03 m into its neighbour (its bounding box would say 0.07)
        (
            (_cube(1), _cube(2, position=(0.1 + 0.1 * 2**0.5 - 0.03, 0.1, 0.0), rotation=(0.0, 45.0, 0.0))),
            (),
            "overlap by 0.03 m",
        ),
        ((_cube(1), _at(2, "sphere", (0.2, 0.2, 0.2), (0.0, 0.25, 0.0))), (), "object 1 (cube) and object 2 (sphere2)"),
        (
            (
                _at(1, "capsule", (0.2, 0.6, 0.2), (0.0, 0.1, 0.0), rotation=(90.0, 0.0, 0.0)),
                _cube(2, position=(0, 0.1, 0.3)),
            ),
            (),
            "object 1 (capsule1) and object 2",
        ),
        (
            (_cube(1, position=(0.0, 0.1, 1.0)),),
            (PropSpec(9, size=(1.0, 1.0, 1.0), position=(0.0, 0.5, 1.2)),),
            "prop 9",
        ),
    ],
)
def test_bodies_that_interpenetrate_at_reset_are_refused_naming_them(objects, props, said: str) -> None:
    from tdwgym.sim.scene import SceneError

    with pytest.raises(SceneError) as caught:
        SceneSpec(objects=objects, props=props)
    message = str(caught.value)
    assert said in message and "OVERLAP_TOLERANCE" in message and "\n" not in message, message


def test_bodies_that_rest_on_or_touch_each_other_are_accepted() -> None:
    from tdwgym.envs.common import compound_parts
    from tdwgym.sim.scene import COMPOUND, OVERLAP_TOLERANCE

    within = OVERLAP_TOLERANCE / 2
    scenes = [
        # a tower: each block resting on the one below, and one pressed into it by less than the tolerance
        (_cube(1), _cube(2, position=(0.05, 0.3, 0.0)), _cube(3, position=(0.0, 0.5 - within, 0.0))),
        # spheres and cylinders whose bounding boxes overlap at a corner while the shapes do not touch
        (_at(1, "sphere", (0.4, 0.4, 0.4), (0.0, 0.2, 0.0)), _at(2, "sphere", (0.4, 0.4, 0.4), (0.3, 0.2, 0.3))),
        (_at(1, "cylinder", (0.4, 0.4, 0.4), (0.0, 0.2, 0.0)), _at(2, "cylinder", (0.4, 0.4, 0.4), (0.3, 0.2, 0.3))),
        # a ball on a cone's tip, a lying capsule against a cube, an L-block around a cube in its corner
        (_at(1, "cone", (0.3, 0.4, 0.3), (0.0, 0.2, 0.0)), _at(2, "sphere", (0.2, 0.2, 0.2), (0.0, 0.5, 0.0))),
        (
            _at(1, "capsule", (0.2, 0.6, 0.2), (0.0, 0.1, 0.0), rotation=(90.0, 0.0, 0.0)),
            _cube(2, position=(0, 0.1, 0.4)),
        ),
        (
            ObjectSpec(
                1,
                shape=COMPOUND,
                size=(0.6, 0.2, 0.6),
                position=(0.0, 0.1, 0.0),
                parts=compound_parts("l_block", (0.6, 0.2, 0.6)),
            ),
            _cube(2, position=(-0.08, 0.1, 0.08)),  # in the corner between its arms
        ),
    ]
    for objects in scenes:
        assert SceneSpec(objects=objects).objects == objects
    # an object may stand on a prop (a platform)
    SceneSpec(objects=(_cube(1, position=(0.0, 1.1, 0.0)),), props=(PropSpec(9, size=(1.0, 1.0, 1.0)),))


@pytest.mark.parametrize(
    "env_id",
    [
        "TDWRoom-Occlusion-v0",
        "TDWRoom-Collision-v0",
        "TDWRoom-Gravity-v0",
        "TDWRoom-Stability-v0",
        "TDWRoom-Playroom-v0",
    ],
)
def test_every_generated_scene_passes_the_scene_checks(env_id: str) -> None:
    """Each scenario, level and split, 50 seeds: no generated scene interpenetrates or leaves the room (a refusal
    would be a SceneError out of sample_scene). Levels 2-3 once built distractors into the panel or clutter."""
    from tdwgym.envs.factors import LEVELS, SPLITS

    for level in LEVELS:
        for split in SPLITS:
            env = gym.make(env_id, level=level, split=split, resolution=8).unwrapped
            try:
                for seed in range(50):
                    env.sample_scene(seed=seed)
            finally:
                env.close()


def test_a_quadruplet_whose_counterpart_would_start_interpenetrating_is_left_out() -> None:
    """Stability's shape_change counterpart starts the top block as a sphere of the block's width at the block's
    centre: taller than the block, it starts 2-6 cm inside the block below (most seeds), which the scene refuses."""
    from tdwgym.envs.twins import _counterpart, _scenes, make_quadruplets
    from tdwgym.sim.scene import SceneError

    possible, impossible = _scenes("TDWRoom-Stability-v0", 0, "shape_change", {})
    env = gym.make("TDWRoom-Stability-v0", resolution=8)
    try:
        with pytest.raises(SceneError, match=r"->sphere\) overlap by"):
            _counterpart(env, possible, impossible)
    finally:
        env.close()
    assert make_quadruplets("TDWRoom-Stability-v0", 0, kinds="shape_change", frames=30, resolution=8) == []


@pytest.mark.parametrize(
    ("scene", "said"),
    [
        (
            lambda: SceneSpec(props=(PropSpec(9, position=(6.0, 0.5, 0.0)),)),
            "PropSpec.position of prop 9 is (6.0, 0.5, 0.0)",
        ),
        (lambda: SceneSpec(props=(PropSpec(9, position=(0.0, -0.6, 0.0)),)), "y in [0, 3]"),
        (lambda: SceneSpec(camera=Camera(position=(0.0, 1.2, -4.5))), "Camera.position is (0.0, 1.2, -4.5)"),
        (lambda: SceneSpec(camera=Camera(position=(0.0, -0.5, 0.0))), "x in [-4, 4], y in [0, 3], z in [-4, 4]"),
        (lambda: SceneSpec(room=Room(ceiling=False), camera=Camera(position=(9.0, 5.0, 0.0))), "y >= 0"),
        (
            lambda: SceneSpec(objects=(_cube(1),), events=(SceneEvent(3, "teleport", 1, {"offset": [0.0, 0.0, 9.0]}),)),
            "SceneEvent.params['offset'] of the teleport of object 1 at frame 3",
        ),
    ],
)
def test_props_camera_and_teleports_outside_the_room_are_refused_naming_the_range(scene, said: str) -> None:
    from tdwgym.sim.scene import SceneError

    with pytest.raises(SceneError) as caught:
        scene()
    message = str(caught.value)
    assert said in message and "\n" not in message, message


def test_set_camera_pose_and_a_teleport_at_their_step_stay_inside_the_room() -> None:
    from tdwgym.sim.scene import SceneError

    env = gym.make("TDWRoom-Occlusion-v0", resolution=16).unwrapped
    try:
        # the teleport's offset fits the room, but from where the object is it lands beyond the wall
        scene = SceneSpec(
            objects=(_cube(1, position=(3.0, 0.1, 0.0)),),
            events=(SceneEvent(2, "teleport", 1, {"offset": [2.0, 0.0, 0.0]}),),
        )
        env.reset(seed=0, options={"scene": scene})
        pose = env.camera_pose
        with pytest.raises(SceneError, match=r"set_camera_pose: position is \(0.0, 1.0, 7.0\), outside the 8 x 8 x 3"):
            env.set_camera_pose((0.0, 1.0, 7.0), 0.0, 0.0)
        with pytest.raises(SceneError, match=r"y in \[0, 3\]"):
            env.set_camera_pose((0.0, 3.5, 0.0), 0.0, 0.0)
        assert np.array_equal(env.camera_pose[0], pose[0])
        env.set_camera_pose((3.9, 2.9, -3.9), 0.0, 0.0)  # in a corner, under the ceiling: fine
        env.step(0)
        with pytest.raises(SceneError, match=r"teleport at frame 2 moves object 1 from .*x in \[-4, 4\]"):
            env.step(0)
        assert abs(env.movable_positions()[1][0] - 3.0) < 0.1  # not moved
    finally:
        env.close()


# -- --env-kwargs against the env's signature -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--out", "OUT"],
        ["compare", "--out", "OUT"],
        ["audit"],
        ["eval", "--export-sets", "OUT"],
        ["record", "--out", "OUT.mp4"],
        ["dataset", "--out", "OUT"],
        ["play", "--out", "OUT.mp4"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_command_checks_env_kwargs_against_the_envs_signature(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # play reaches its door with or without a display
    out = tmp_path / "out"
    argv = [a.replace("OUT", str(out)) for a in argv]
    # a float for the integer level used to pass (1.0 == 1) and ran on
    assert cli_main([*argv, "--env-kwargs", '{"level": 1.0}']) == 2
    line = _one_line(capsys.readouterr().err)
    assert "level of" in line and "must be an integer, got 1.0" in line, line
    assert not list(tmp_path.iterdir()), "nothing is written before the door"


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"level": "1"}, 'level of TDWRoom-Occlusion-v0 must be an integer, got "1"'),
        ({"render_mode": 3}, "render_mode of TDWRoom-Occlusion-v0 must be a string or null, got 3"),
        ({"num_objects": "2"}, "num_objects of TDWRoom-Occlusion-v0 must be an integer or a list of 2 [an integer"),
        ({"backend_kwargs": 5}, "backend_kwargs of TDWRoom-Occlusion-v0 must be a JSON object or null, got 5"),
        ({"extra_passes": 5}, "extra_passes of TDWRoom-Occlusion-v0 must be a list (each item a string), got 5"),
        ({"substeps": 10**9}, "substeps must be an int in 1..240, got 1000000000"),
        ({"push_impulse": 1e300}, "push_impulse must be in [0, 100] N*s"),
        ({"level": 7}, "unknown level 7; valid values are [0, 1, 2, 3]"),
        ({"bogus": 1}, "takes no 'bogus'; valid arguments are action_type, backend,"),
    ],
)
def test_env_kwargs_of_a_wrong_type_out_of_range_or_unknown_are_one_line(kwargs: dict, said: str) -> None:
    from tdwgym.commands.door import check_env
    from tdwgym.util.errors import UsageError

    with pytest.raises(UsageError) as caught:
        check_env("occlusion", kwargs)
    message = str(caught.value)
    assert said in message and "\n" not in message and "environment creator" not in message, message
