"""tdwgym.tools.dataset: round-trip against the env, determinism across worker counts, atomic writes and resume after a
kill, labels, bad input, ClipDataset and the CLI parser."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import tdwgym
from tdwgym.cli import main as cli_main
from tdwgym.commands import dataset as dataset_cli
from tdwgym.sim.geometry import intrinsics
from tdwgym.tools import dataset as ds

EPISODES, FRAMES, RES = 3, 8, 32


def _config(out: Path, **kwargs) -> ds.DatasetConfig:
    base = {"episodes": EPISODES, "frames": FRAMES, "resolution": RES}
    return ds.DatasetConfig(out=out, **{**base, **kwargs})


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ds.episode_files(out)}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "one_worker"
    ds.generate(_config(out), progress=False)
    return out


def test_writes_every_episode_with_the_documented_layout(dataset_dir: Path) -> None:
    files = ds.episode_files(dataset_dir)
    assert [p.name for p in files] == [f"episode_{i:06d}.hdf5" for i in range(EPISODES)]
    assert not [p for p in dataset_dir.iterdir() if p.name.endswith(".tmp")]
    manifest = json.loads((dataset_dir / ds.MANIFEST_NAME).read_text())
    assert manifest["complete"] and manifest["tdwgym_version"] == tdwgym.__version__
    assert manifest["env_id"] == "TDWRoom-Occlusion-v0" and manifest["config"]["frames"] == FRAMES
    with h5py.File(files[0], "r") as f:
        for name in (
            "static/object_ids",
            "frames/images/_img",
            "frames/images/_depth",
            "frames/images/_id",
            "frames/objects/positions",
            "frames/objects/bboxes",
            "collisions/frame",
            "camera_matrices/intrinsics",
            "camera_matrices/world_to_camera",
            "labels/scenario",
            "labels/level",
            "labels/split",
            "labels/possible",
            "labels/event_frame",
            "labels/factors",
            "static/scene_json",
            "metadata",
        ):
            assert name in f, name
        assert f["frames/images/_img"].shape == (FRAMES, RES, RES, 3)
        assert f["frames/images/_img"].dtype == np.uint8 and f["frames/images/_depth"].dtype == np.float32
        assert f.attrs["complete"]


def test_round_trip_equals_the_envs_own_frames(dataset_dir: Path) -> None:
    """Frames, states and camera equal a plain env's for the stored seed and actions (and for the stored scene)."""
    ep = ds.load_episode(ds.episode_path(dataset_dir, 1))
    meta = ep["metadata"]
    env = gym.make(meta["env_id"], resolution=RES, obs_mode="rgbd")
    try:
        for reset_kwargs in ({"seed": meta["env_seed"]}, {"options": {"scene": ep["scene"]}}):
            obs, info = env.reset(**reset_kwargs)
            rgb, depth, positions = [obs["rgb"]], [obs["depth"][..., 0]], [info["objects"]]
            for action in ep["actions"][1:]:
                obs, *_, info = env.step(int(action))
                rgb.append(obs["rgb"])
                depth.append(obs["depth"][..., 0])
                positions.append(info["objects"])
            np.testing.assert_array_equal(np.stack(rgb), ep["rgb"])
            np.testing.assert_array_equal(np.stack(depth), ep["depth"])
            for t, objects in enumerate(positions):
                for j, oid in enumerate(ep["object_ids"]):
                    np.testing.assert_array_equal(objects[int(oid)]["position"], ep["positions"][t, j])
            assert json.loads(ep["scene"].to_json()) == json.loads(env.unwrapped.scene.to_json())
    finally:
        env.close()
    seg_env = gym.make(meta["env_id"], resolution=RES, obs_mode="rgb_seg")
    try:
        obs, _ = seg_env.reset(seed=meta["env_seed"])
        segmentation = [obs["segmentation"][..., 0]]
        segmentation += [seg_env.step(int(a))[0]["segmentation"][..., 0] for a in ep["actions"][1:]]
        np.testing.assert_array_equal(np.stack(segmentation), ep["segmentation"])
    finally:
        seg_env.close()


def test_annotations_agree_with_each_other(dataset_dir: Path) -> None:
    checked = 0
    for path in ds.episode_files(dataset_dir):
        ep = ds.load_episode(path)
        assert ep["labels"]["scenario"] == "occlusion" and ep["labels"]["level"] == 0
        assert ep["labels"]["split"] == "train" and ep["labels"]["impossible"] is None
        assert ep["present"].all() and sorted(ep["object_ids"]) == sorted(o.id for o in ep["scene"].objects)
        k = intrinsics(RES, RES, ep["scene"].camera.fov)
        np.testing.assert_allclose(ep["intrinsics"], k)
        for t in range(FRAMES):
            for j, oid in enumerate(ep["object_ids"]):
                mask = ep["segmentation"][t] == oid
                assert (ep["boxes"][t, j, 0] >= 0) == mask.any()
                if not mask.any():
                    continue
                ys, xs = np.nonzero(mask)
                assert tuple(ep["boxes"][t, j]) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                assert ep["areas"][t, j] == mask.sum()
                # the object's centre projects into its box (a pixel of slack), unless the box is cut by the edge
                x = (ep["world_to_camera"][t] @ np.append(ep["positions"][t, j], 1.0))[:3]
                u, v = (k @ x)[:2] / x[2]
                x0, y0, x1, y1 = ep["boxes"][t, j]
                if ep["areas"][t, j] >= 4 and 0 < x0 and x1 < RES and 0 < y0 and y1 < RES:
                    assert x0 - 1 <= u <= x1 + 1 and y0 - 1 <= v <= y1 + 1, (t, oid, (u, v), (x0, y0, x1, y1))
                    checked += 1
        rot = ep["world_to_camera"][:, :3, :3]
        np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
        col = ep["collisions"]
        assert len(col["frame"]) == len(col["a"]) == len(col["impulse"]) and (col["frame"] >= 1).all()
    assert checked > 0


def test_two_workers_write_byte_identical_files(dataset_dir: Path, tmp_path: Path) -> None:
    ds.generate(_config(tmp_path / "two", workers=2), progress=False)
    assert _digests(tmp_path / "two") == _digests(dataset_dir)


def test_rerun_skips_finished_episodes_and_extends(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for p in ds.episode_files(dataset_dir)[:2]:
        (out / p.name).write_bytes(p.read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in ds.episode_files(out)}
    ds.generate(_config(out), progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in ds.episode_files(out)[:2]} == before
    assert _digests(out) == _digests(dataset_dir)
    # a different config in the same directory is refused, naming the difference and both values
    with pytest.raises(ValueError, match=f"frames: {FRAMES} on disk, {FRAMES + 1} now"):
        ds.generate(_config(out, frames=FRAMES + 1), progress=False)
    assert _digests(out) == _digests(dataset_dir)


def test_default_filters_store_reproducible_bytes_and_lzf_datasets_still_resume(
    dataset_dir: Path, tmp_path: Path
) -> None:
    # h5py's lzf leaves its match table uninitialised, so lzf chunk bytes vary between runs (a killed-and-resumed
    # run wrote a different episode_000004.hdf5 in about 1 of 40 tries); the defaults must be reproducible filters
    config = _config(tmp_path / "unused")
    assert config.compression == "gzip" and config.compression in ds.REPRODUCIBLE_COMPRESSIONS
    assert config.depth_compression in ds.REPRODUCIBLE_COMPRESSIONS and "lzf" not in ds.REPRODUCIBLE_COMPRESSIONS
    with h5py.File(ds.episode_files(dataset_dir)[0], "r") as f:
        assert f["frames/images/_img"].compression == "gzip" and f["frames/images/_id"].compression == "gzip"
        assert f["frames/images/_depth"].compression is None
    # a dataset made with the old lzf default: the new default is refused with both values, lzf resumes it
    out = tmp_path / "old_default"
    ds.generate(_config(out, episodes=1, compression="lzf"), progress=False)
    with pytest.raises(ValueError, match="compression: 'lzf' on disk, 'gzip' now"):
        ds.generate(_config(out), progress=False)
    ds.generate(_config(out, compression="lzf"), progress=False)
    assert len(ds.episode_files(out)) == EPISODES and all(ds.episode_is_valid(p) for p in ds.episode_files(out))
    for lzf_file, gzip_file in zip(ds.episode_files(out), ds.episode_files(dataset_dir), strict=True):
        with h5py.File(lzf_file, "r") as a, h5py.File(gzip_file, "r") as b:
            assert a["frames/images/_img"].compression == "lzf"
            for name in ("frames/images/_img", "frames/images/_id", "frames/images/_depth"):
                np.testing.assert_array_equal(a[name][()], b[name][()])


def test_corrupt_or_stale_files_are_regenerated(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "corrupt"
    out.mkdir()
    for p in ds.episode_files(dataset_dir):
        (out / p.name).write_bytes(p.read_bytes())
    bad = ds.episode_path(out, 1)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    stale_tmp = out / ".episode_000001.hdf5.999999999.tmp"
    stale_tmp.write_bytes(b"partial")
    assert not ds.episode_is_valid(bad)
    ds.generate(_config(out), progress=False)
    assert _digests(out) == _digests(dataset_dir) and not stale_tmp.exists()


@pytest.mark.parametrize("damage", [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00"])
def test_a_damaged_dataset_json_is_one_line_naming_it_and_nothing_is_rewritten(
    dataset_dir: Path, tmp_path: Path, damage: bytes, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "damaged"
    out.mkdir()
    for p in ds.episode_files(dataset_dir):
        (out / p.name).write_bytes(p.read_bytes())
    (out / ds.MANIFEST_NAME).write_bytes(damage)
    before = _digests(out)
    argv = ["--out", str(out), "--episodes", str(EPISODES), "--steps", str(FRAMES), "--resolution", str(RES)]
    assert cli_main(["dataset", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{out / ds.MANIFEST_NAME} is damaged" in err and "another --out" in err
    assert _digests(out) == before and (out / ds.MANIFEST_NAME).read_bytes() == damage


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_nothing_the_generator_started_outlives_its_kill_9(tmp_path: Path) -> None:
    from proc_tools import survivors_of_kill_9

    cmd = [sys.executable, "-m", "tdwgym", "dataset", "--out", str(tmp_path / "d"), "--episodes", "200"]
    cmd += ["--steps", "60", "--resolution", str(RES), "--workers", "2", "--no-progress"]
    # resource tracker, fork server, two workers
    seen, left = survivors_of_kill_9(cmd, expected=4)
    assert len(seen) >= 4, f"expected a resource tracker, a fork server and 2 workers, saw {len(seen)}"
    assert not left, f"outlived the killed generator by 10 s: {left}"


def test_killed_generator_resumes_to_a_complete_identical_dataset(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    episodes, frames = 8, 40
    cmd = [
        sys.executable,
        "-m",
        "tdwgym",
        "dataset",
        "--out",
        str(out),
        "--episodes",
        str(episodes),
        "--steps",
        str(frames),
        "--resolution",
        str(RES),
        "--workers",
        "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(ds.episode_files(out) if out.exists() else []) >= 1:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the generator finished before it could be killed; make the run longer"
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the generator and its workers, mid-run
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    written = ds.episode_files(out)
    assert 1 <= len(written) < episodes
    assert all(ds.episode_is_valid(p) for p in written), "a file under a final name is partial"
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    assert len(ds.episode_files(out)) == episodes
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    reference = tmp_path / "reference"
    ds.generate(ds.DatasetConfig(out=reference, episodes=episodes, frames=frames, resolution=RES), progress=False)
    assert _digests(out) == _digests(reference)


def test_scripted_and_model_policies(tmp_path: Path) -> None:
    static = ds.load_episode(ds.generate(_config(tmp_path / "static", policy="static", episodes=1), False)[0])
    assert (static["actions"][1:] == 0).all() and np.ptp(static["camera_positions"], axis=0).max() == 0
    orbit = ds.load_episode(ds.generate(_config(tmp_path / "orbit", policy="orbit", episodes=1), False)[0])
    assert set(orbit["actions"][1:].tolist()) == {4, 5}  # strafe right, turn left

    from stable_baselines3 import PPO

    env = gym.make("TDWRoom-Occlusion-v0", resolution=RES)
    model = PPO(
        "MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [8]}
    )
    zip_path = tmp_path / "tiny_ppo.zip"
    model.save(zip_path)
    env.close()
    ep = ds.load_episode(ds.generate(_config(tmp_path / "model", policy=str(zip_path), episodes=1), False)[0])
    obs, _ = (check := gym.make("TDWRoom-Occlusion-v0", resolution=RES)).reset(seed=ep["metadata"]["env_seed"])
    expected = int(model.predict(obs, deterministic=True)[0])
    check.close()
    assert int(ep["actions"][1]) == expected and ep["metadata"]["config"]["policy_sha256"]
    with pytest.raises(ValueError, match="--resolution 32"):
        ds.generate(_config(tmp_path / "bad_res", policy=str(zip_path), resolution=16, episodes=1), False)


@pytest.mark.parametrize("scenario", sorted(ds.scenarios()))
def test_every_scenario_records_its_labels(scenario: str, tmp_path: Path) -> None:
    path = ds.generate(_config(tmp_path, scenario=scenario, episodes=1, frames=3, level=1, split="test_ood"), False)[0]
    labels = ds.load_episode(path)["labels"]
    assert (labels["scenario"], labels["level"], labels["split"]) == (scenario, 1, "test_ood")
    assert isinstance(labels["factors"], dict) and isinstance(labels["ood_factors"], list)
    with h5py.File(path, "r") as f:
        assert f["labels/level"][()] == 1 and f["labels/split"][()].decode() == "test_ood"


def test_impossible_twin_matches_its_possible_twin_until_the_event(tmp_path: Path) -> None:
    kind = (ds.impossible_kinds("occlusion") or ("vanish",))[0]
    frames = 12
    possible = ds.load_episode(
        ds.generate(_config(tmp_path / "p", episodes=1, frames=frames, policy="static"), False)[0]
    )
    twin = ds.load_episode(
        ds.generate(_config(tmp_path / "i", episodes=1, frames=frames, policy="static", impossible=kind), False)[0]
    )
    assert possible["labels"]["impossible"] is None and possible["labels"]["event_frame"] is None
    assert twin["labels"]["impossible"] == kind and isinstance(twin["labels"]["event_frame"], int)
    with h5py.File(ds.episode_path(tmp_path / "i", 0), "r") as f:
        assert not f["labels/possible"][()] and f["labels/impossible"][()].decode() == kind
        assert f["labels/event_frame"][()] == twin["labels"]["event_frame"]
    before = min(twin["labels"]["event_frame"], frames)
    np.testing.assert_array_equal(twin["rgb"][:before], possible["rgb"][:before])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scenario": "nope"}, r"unknown scenario 'nope'; valid scenarios are \[.*'occlusion'"),
        ({"split": "val"}, r"unknown split 'val'; valid splits are \['train', 'test_id', 'test_ood'\]"),
        ({"level": 7}, r"unknown level 7; valid levels are \[0, 1, 2, 3\]"),
        (
            {"impossible": "teleport_everywhere"},
            r"unknown impossible kind 'teleport_everywhere'.*valid values are \[None",
        ),
        ({"policy": "no/such/model.zip"}, r"valid policies are \['random', 'orbit', 'static', 'seek'\]"),
        ({"frames": 0}, r"frames must be an int >= 1"),
        ({"compression": "zstd"}, r"valid values are \[None, 'lzf', 'gzip'\]"),
    ],
)
def test_bad_input_lists_valid_values(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ds.generate(_config(tmp_path / "bad", **kwargs), progress=False)


def test_clip_dataset(dataset_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    clips = ds.ClipDataset(
        dataset_dir,
        clip_len=4,
        stride=2,
        keys=("rgb", "depth", "boxes", "positions", "scenario", "level", "possible", "event_frame"),
    )
    assert len(clips) == EPISODES * 3
    item = clips[1]
    assert item["rgb"].shape == (4, 3, RES, RES) and item["rgb"].dtype == torch.uint8
    assert item["depth"].shape == (4, 1, RES, RES) and item["boxes"].shape[:1] == (4,)
    ep = ds.load_episode(ds.episode_path(dataset_dir, 0))
    np.testing.assert_array_equal(item["rgb"].numpy(), ep["rgb"][2:6].transpose(0, 3, 1, 2))
    assert item["scenario"] == "occlusion" and item["level"] == 0 and item["possible"] is True
    batch = next(iter(torch.utils.data.DataLoader(clips, batch_size=4, shuffle=False)))
    assert batch["rgb"].shape == (4, 4, 3, RES, RES) and batch["positions"].shape[-1] == 3
    floats = ds.ClipDataset(dataset_dir, clip_len=FRAMES, keys=("rgb",), rgb_float=True)
    assert len(floats) == EPISODES and floats[0]["rgb"].dtype == torch.float32 and floats[0]["rgb"].max() <= 1.0
    assert isinstance(clips, torch.utils.data.Dataset)


def test_clip_dataset_errors(dataset_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"unknown clip keys \['colour'\]; valid keys are \['rgb'"):
        ds.ClipDataset(dataset_dir, keys=("rgb", "colour"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no episode files"):
        ds.ClipDataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="longer than every episode"):
        ds.ClipDataset(dataset_dir, clip_len=FRAMES + 1)


def test_import_does_not_need_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; import tdwgym.tools.dataset as d; "
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]; print(d.SPLITS)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_cli_parser_builds_the_config(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="tdwgym")
    dataset_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "dataset",
            "--env",
            "occlusion",
            "--split",
            "test_id",
            "--level",
            "0",
            "--episodes",
            "2",
            "--steps",
            "5",
            "--resolution",
            "16",
            "--out",
            str(tmp_path),
            "--workers",
            "2",
            "--policy",
            "orbit",
            "--compression",
            "none",
        ]
    )
    assert args.func is dataset_cli.run
    config = dataset_cli.config_from_args(args)
    assert (config.split, config.episodes, config.workers, config.policy, config.compression) == (
        "test_id",
        2,
        2,
        "orbit",
        None,
    )
    assert ds.episode_seeds(0, "train", 0) != ds.episode_seeds(0, "test_id", 0)
    assert ds.episode_seeds(0, "train", 3) == ds.episode_seeds(0, "train", 3)
