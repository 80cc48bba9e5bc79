"""Fault injection: what a crash, a damaged file, a full disk, a failed reset or odd input does (docs/faults.md).

Each class of fault has a test here or names the test elsewhere that covers it:

* kill -9 during a save: ``tests/agents/test_agents_train.py::test_train_example_survives_kill_9_and_resumes``,
  ``tests/test_dataset.py::test_killed_generator_resumes_to_a_complete_identical_dataset`` and
  ``tests/agents/test_pretrain.py`` (kill -9 of a pretraining run); here, a save that fails midway.
* kill -9 of a command with workers: ``tests/test_dataset.py::test_nothing_the_generator_started_outlives_its_kill_9``
  and ``tests/agents/test_agents_train.py::test_env_workers_die_with_a_*_killed_by_sigkill``.
* damaged and truncated files, a full disk, a failed reset, and a fuzz of random scenes and actions: here.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tiny_train import TINY

from tdwgym.cli import main as cli_main
from tdwgym.sim.scene import PATTERNS, SHAPES, Camera, ObjectSpec, Room, SceneError, SceneSpec
from tdwgym.tools import dataset as ds
from tdwgym.tools.dataset import writer as dswriter


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _full_disk(path: object = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- a save that fails midway ------------------------------------------------------------------------------------
def test_a_checkpoint_that_fails_midway_leaves_the_last_one_whole(tmp_path: Path) -> None:
    from tdwgym.agents.rundir import RunDir

    run = RunDir(tmp_path / "run")
    with run.checkpoint(64) as folder:
        (folder / "agent.zip").write_bytes(b"agent at 64")
    pointer = (run.checkpoints_dir / "latest.json").read_text()
    with pytest.raises(OSError, match="No space left"), run.checkpoint(128) as folder:
        (folder / "agent.zip").write_bytes(b"half an agent")
        raise _full_disk(folder / "world_model.pt")
    assert (run.checkpoints_dir / "latest.json").read_text() == pointer
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == ["latest.json", "step_0000000064"]
    assert run.latest_checkpoint() == run.checkpoints_dir / "step_0000000064"
    assert (run.latest_checkpoint() / "agent.zip").read_bytes() == b"agent at 64"


# -- a full disk -----------------------------------------------------------------------------------------------
def test_a_full_disk_while_generating_is_one_line_and_no_partial_episode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    write = dswriter._write_episode
    calls = []

    def fills_the_disk(path: Path, *args: object) -> None:
        calls.append(path)
        if len(calls) == 2:  # the second episode: some bytes reach the file, then the disk is full
            Path(path).write_bytes(b"\x89HDF\r\n partial")
            raise _full_disk(path)
        write(path, *args)

    monkeypatch.setattr(dswriter, "_write_episode", fills_the_disk)
    out = tmp_path / "d"
    argv = ["--out", str(out), "--episodes", "3", "--steps", "3", "--resolution", "16", "--workers", "1"]
    assert cli_main(["dataset", *argv, "--no-progress"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "no space left on the device writing" in line and "run the same command again" in line
    assert [p.name for p in ds.episode_files(out)] == ["episode_000000.hdf5"]
    assert ds.episode_is_valid(ds.episode_path(out, 0))
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")], "a partial file was kept"
    manifest = json.loads((out / ds.MANIFEST_NAME).read_text())
    assert manifest["episodes"] == ["episode_000000.hdf5"] and not manifest["complete"]
    # room again: the same command finishes the dataset
    monkeypatch.setattr(dswriter, "_write_episode", write)
    assert cli_main(["dataset", *argv, "--no-progress"]) == 0
    assert len(ds.episode_files(out)) == 3


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from tdwgym.agents import online

    save = online.atomic_torch_save
    calls = []

    def fills_the_disk(obj: object, path: str | os.PathLike) -> None:
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint's world model
            raise _full_disk(path)
        save(obj, path)

    monkeypatch.setattr(online, "atomic_torch_save", fills_the_disk)
    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--total-steps", "128", "--checkpoint-every", "64", "--curiosity", "rnd"]
    argv += ["--env-kwargs", '{"resolution": 36}', "--n-envs", "2", "--vec-env", "dummy", "--n-steps", "32"]
    argv += ["--batch-size", "32", "--n-epochs", "1", "--video-steps", "0", "--device", "cpu", "--no-progress"]
    assert cli_main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert "no space left on the device writing" in line and "world_model.pt" in line
    root = run / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step_0000000064"]
    assert json.loads((root / "latest.json").read_text())["dir"] == "step_0000000064"
    assert not list(run.rglob("*.tmp")) and not list(root.glob(".*partial"))


# -- damaged and truncated files -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tdwgym.agents.training import TrainConfig, train

    run = tmp_path_factory.mktemp("faults") / "run"
    train(TrainConfig(total_steps=64, checkpoint_every=64, run_dir=str(run), curiosity="rnd", **TINY))
    return run


@pytest.mark.parametrize("name", ["agent.zip", "world_model.pt", "curiosity.json"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_file_is_one_line_naming_it(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, name: str, damage: str
) -> None:
    import shutil

    from tdwgym.agents.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    bad = RunDir(run).latest_checkpoint() / name
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00garbage" * 16)
    argv = ["train", "--resume", str(run), "--total-steps", "128", "--no-progress"]
    assert cli_main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(bad) in line and ("damaged" in line or "does not load" in line), line
    assert "Traceback" not in line


def test_a_truncated_episode_file_is_refused_by_the_reader_and_regenerated(tmp_path: Path) -> None:
    out = tmp_path / "d"
    config = ds.DatasetConfig(out=out, episodes=2, frames=3, resolution=16)
    ds.generate(config, progress=False)
    path = ds.episode_path(out, 1)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    assert not ds.episode_is_valid(path)
    with pytest.raises(ds.DamagedEpisodeError, match=f"{path}: damaged episode file.*truncated"):
        ds.load_episode(path)
    ds.generate(config, progress=False)  # resume: the damaged episode is recorded again
    assert path.read_bytes() == good


@pytest.mark.parametrize("compression", ["gzip", None])
def test_flipped_bytes_in_an_episode_are_caught_by_its_checksums_named_and_regenerated(tmp_path, compression):
    out = tmp_path / "d"
    config = ds.DatasetConfig(out=out, episodes=2, frames=12, resolution=32, compression=compression)
    ds.generate(config, progress=False)
    path = ds.episode_path(out, 1)
    good = path.read_bytes()
    data = bytearray(good)
    start = len(data) // 2
    for k in range(400):  # 400 flipped bytes in the middle of the file, where the frames are
        data[start + k] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not ds.episode_is_valid(path)
    with pytest.raises(ds.DamagedEpisodeError, match=f"{path}: damaged episode file"):
        ds.load_episode(path)
    clips = ds.ClipDataset(out, clip_len=12, stride=12, keys=("rgb", "depth"))
    with pytest.raises(ds.DamagedEpisodeError, match=str(path)):
        [clips[i] for i in range(len(clips))]
    ds.generate(config, progress=False)  # resume finds it damaged and records it again
    assert path.read_bytes() == good and ds.episode_is_valid(path)


def test_episodes_of_other_settings_are_never_replaced_without_overwrite(tmp_path):
    out = tmp_path / "d"
    ds.generate(ds.DatasetConfig(out=out, episodes=2, frames=3, resolution=16), progress=False)
    (out / ds.MANIFEST_NAME).unlink()  # the fingerprint inside each episode file decides, not dataset.json
    before = {p.name: p.read_bytes() for p in ds.episode_files(out)}
    other = ds.DatasetConfig(out=out, episodes=2, frames=3, resolution=16, seed=1)
    with pytest.raises(ValueError, match=r"holds 2 episode\(s\) recorded with other settings.*--overwrite"):
        ds.generate(other, progress=False)
    assert {p.name: p.read_bytes() for p in ds.episode_files(out)} == before
    (out / ds.MANIFEST_NAME).write_text("{not json")  # a damaged dataset.json gives way to --overwrite too
    ds.generate(dataclasses.replace(other, overwrite=True), progress=False)
    assert all(ds.episode_is_valid(p, other.fingerprint()) for p in ds.episode_files(out))
    assert other.fingerprint() == dataclasses.replace(other, overwrite=True).fingerprint()


# -- a failed reset ------------------------------------------------------------------------------------------------
def test_a_reset_that_fails_midway_leaves_an_env_that_resets_as_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    env = gym.make("TDWRoom-Playroom-v0", resolution=16, level=2)
    fresh = gym.make("TDWRoom-Playroom-v0", resolution=16, level=2)
    try:
        env.reset(seed=0)
        for _ in range(5):
            env.step(env.action_space.sample())
        backend = env.unwrapped.backend
        load = backend.load

        def fails_after_the_room(scene: SceneSpec) -> None:
            load(dataclasses.replace(scene, objects=scene.objects[:1]))  # a half-built world
            raise RuntimeError("simulator failed while loading the scene")

        monkeypatch.setattr(backend, "load", fails_after_the_room)
        with pytest.raises(RuntimeError, match="while loading"):
            env.reset(seed=7)
        monkeypatch.setattr(backend, "load", load)
        obs, info = env.reset(seed=7)
        expected, expected_info = fresh.reset(seed=7)
        np.testing.assert_array_equal(obs, expected)
        for t in range(10):
            a = t % env.action_space.n
            o1, *_ = env.step(a)
            o2, *_ = fresh.step(a)
            np.testing.assert_array_equal(o1, o2)
    finally:
        env.close()
        fresh.close()


# -- fuzz: random scenes and actions -------------------------------------------------------------------------------
def _random_scene(rng: np.random.Generator) -> SceneSpec:
    """A valid scene at random: room size, shapes, sizes, masses, frictions, restitutions, speeds and spins."""
    room = Room(
        width=float(rng.uniform(3, 10)),
        length=float(rng.uniform(3, 10)),
        height=float(rng.uniform(2, 4)),
        floor_pattern=str(rng.choice(PATTERNS)),
        wall_pattern=str(rng.choice(PATTERNS)),
        tile_size=float(rng.uniform(0.2, 1.0)),
        floor_color=tuple(float(v) for v in rng.uniform(0, 1, 3)),
    )
    objects = []
    for i in range(int(rng.integers(1, 7))):
        shape = str(rng.choice(SHAPES))
        d = float(rng.uniform(0.1, 0.6))
        h = d if shape in ("sphere", "cube") else float(rng.uniform(d, 2 * d))
        size = (d, d, d) if shape == "sphere" else (d, h, d if shape != "cube" else float(rng.uniform(0.1, 0.6)))
        for _ in range(100):  # objects may not interpenetrate at reset (the scene refuses it): draw another spot
            x = float(rng.uniform(-room.width / 2 + 0.7, room.width / 2 - 0.7))
            z = float(rng.uniform(-room.length / 2 + 0.7, room.length / 2 - 0.7))
            y = size[1] / 2 + float(rng.uniform(0, 1.0))
            obj = ObjectSpec(
                id=i + 1,
                shape=shape,
                size=size,
                mass=float(10 ** rng.uniform(-1.5, 1.5)),
                friction=float(rng.uniform(0, 1.2)),
                restitution=float(rng.uniform(0, 1)),
                position=(x, y, z),
                rotation=tuple(float(v) for v in rng.uniform(-180, 180, 3)),
                velocity=tuple(float(v) for v in rng.uniform(-4, 4, 3)),
                angular_velocity=tuple(float(v) for v in rng.uniform(-6, 6, 3)),
            )
            try:
                SceneSpec(room=room, objects=(*objects, obj))
            except SceneError:
                continue
            objects.append(obj)
            break
    camera = Camera(position=(0.0, float(rng.uniform(0.5, room.height - 0.3)), -room.length / 2 + 0.5))
    # objects close together and fast, towards each other: the solver must handle the collisions without blowing up
    return SceneSpec(room=room, objects=tuple(objects), camera=camera)


def _check_states(scene: SceneSpec, info: dict, where: str) -> None:
    room = scene.room
    for oid, st in info["objects"].items():
        pos = np.asarray(st["position"])
        assert np.all(np.isfinite(pos)) and np.all(np.isfinite(st["velocity"])), f"{where}: object {oid} is NaN/inf"
        slack = 0.05 + 0.5 * math.sqrt(sum(s * s for s in scene.object(oid).size))
        assert abs(pos[0]) <= room.width / 2 + slack and abs(pos[2]) <= room.length / 2 + slack, (
            f"{where}: object {oid} left the room at {pos}"
        )
        assert -slack <= pos[1] <= room.height + slack, f"{where}: object {oid} left through the floor/ceiling: {pos}"


ACTION_SEED = int(os.environ.get("TDWGYM_FUZZ_ACTION_SEED", "16"))
"""Seed of the fuzz's action spaces (set ``TDWGYM_FUZZ_ACTION_SEED`` to fuzz other actions)."""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_fuzz_random_scenes_and_actions_stay_finite_inside_the_room_and_in_bounded_memory() -> None:
    rng = np.random.default_rng(16)
    env = gym.make("TDWRoom-Occlusion-v0", resolution=16, action_type="continuous", push_impulse=8.0)
    env.action_space.seed(ACTION_SEED)  # the same actions every run (an unseeded space drew new ones each time)
    base = env.unwrapped
    try:
        for episode in range(4):  # warm-up: allocator pools, first textures
            env.reset(seed=episode, options={"scene": _random_scene(rng)})
        start, steps = _rss_mb(), 0
        for episode in range(12):
            scene = _random_scene(rng)
            _, info = env.reset(seed=episode, options={"scene": scene})
            _check_states(scene, info, f"episode {episode} reset")
            for t in range(30):
                action = env.action_space.sample()
                action[4] = float(rng.random() < 0.5)  # push half of the time
                _, _, _, _, info = env.step(action)
                _check_states(scene, info, f"episode {episode} step {t}")
                steps += 1
            base.set_camera_pose((0.0, 1.0, 0.0), float(rng.uniform(0, 360)), 0.0)
        for name in ("Collision", "Gravity", "Stability", "Playroom"):  # the scenarios' own scenes, every level
            other = gym.make(f"TDWRoom-{name}-v0", resolution=16, level=int(rng.integers(0, 4)))
            other.action_space.seed(ACTION_SEED)
            try:
                _, info = other.reset(seed=int(rng.integers(1_000)))
                scene = other.unwrapped.scene
                for t in range(30):
                    _, _, _, _, info = other.step(other.action_space.sample())
                    _check_states(scene, info, f"{name} step {t}")
                    steps += 1
            finally:
                other.close()
        growth = _rss_mb() - start
    finally:
        env.close()
    assert steps == 12 * 30 + 4 * 30
    assert growth < 40.0, f"RSS grew {growth:.1f} MB over the fuzz"


# -- nothing in a file runs code (issue 32) -------------------------------------------------------------------------
class _Marker:
    """A pickle that creates ``path`` when it is unpickled (``open(path, "w")``): proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def _plant_payload(zip_path: Path, marker: Path) -> None:
    """Put a ``:serialized:`` payload into an SB3 ``.zip``'s ``data``: a key of its own and the ``_last_obs`` entry
    (``PPO.load`` unpickles both)."""
    import base64
    import pickle
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    evil = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(_Marker(marker))).decode()}
    data["planted"] = evil
    data["_last_obs"] = evil
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.fixture()
def planted_run(finished_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a finished run whose agent.zip carries a payload, and the marker the payload would create."""
    import shutil

    from tdwgym.agents.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "code-ran"
    _plant_payload(RunDir(run).agent_path(), marker)
    return run, marker


@pytest.mark.parametrize("command", ["resume", "eval", "record-run", "record-zip", "dataset"])
def test_no_path_that_reads_an_agent_unpickles_it(planted_run, tmp_path, capsys, command) -> None:
    from tdwgym.agents.rundir import RunDir

    run, marker = planted_run
    agent = RunDir(run).agent_path()
    elsewhere = tmp_path / "from-elsewhere.zip"  # a zip outside any run folder
    elsewhere.write_bytes(agent.read_bytes())
    argv = {
        "resume": ["train", "--resume", str(run), "--total-steps", "128", "--no-progress"],
        "eval": ["eval", "--run", str(run), "--quick", "--out", str(tmp_path / "ev"), "--no-progress"],
        "record-run": ["record", "--run", str(run), "--steps", "2", "--out", str(tmp_path / "v.mp4"), "--no-progress"],
        "record-zip": ["record", "--policy", str(elsewhere), "--steps", "2", "--out", str(tmp_path / "v.mp4")]
        + ["--env-kwargs", '{"resolution": 36}', "--no-progress"],
        "dataset": ["dataset", "--out", str(tmp_path / "d"), "--policy", str(elsewhere), "--episodes", "1"]
        + ["--steps", "2", "--resolution", "36", "--no-progress"],
    }[command]
    assert cli_main(argv) == 0, capsys.readouterr().err
    assert not marker.exists(), f"{command} unpickled the agent's data"
    if command == "resume":
        assert json.loads((run / "checkpoints" / "latest.json").read_text())["num_timesteps"] == 128
    if command == "eval":
        report = json.loads((tmp_path / "ev" / "report.json").read_text())
        assert "agent" in json.dumps(report["exploration"])  # the agent was loaded and acted


def test_trust_pickles_is_the_only_way_to_sb3s_loader(planted_run, tmp_path, capsys) -> None:
    run, marker = planted_run
    argv = ["record", "--run", str(run), "--steps", "2", "--out", str(tmp_path / "v.mp4"), "--no-progress"]
    assert cli_main(argv) == 0 and not marker.exists()
    assert cli_main([*argv, "--trust-pickles"]) == 0
    assert marker.exists()  # the payload is live: SB3's PPO.load runs it
    assert "TDWGYM_TRUST_PICKLES" not in os.environ  # the flag holds for its command only


def test_an_agent_rebuilt_without_pickles_equals_sb3s(finished_run: Path) -> None:
    import torch
    from stable_baselines3 import PPO

    from tdwgym.agents.agent_zip import load_agent
    from tdwgym.agents.rundir import RunDir

    path = RunDir(finished_run).agent_path()
    safe, sb3 = load_agent(path, device="cpu"), PPO.load(path, device="cpu")
    assert safe.observation_space == sb3.observation_space and safe.action_space == sb3.action_space
    assert safe.num_timesteps == sb3.num_timesteps and safe._n_updates == sb3._n_updates
    for (k, a), (k2, b) in zip(safe.policy.state_dict().items(), sb3.policy.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    obs = np.zeros(sb3.observation_space.shape, np.uint8)
    assert safe.predict(obs, deterministic=True)[0] == sb3.predict(obs, deterministic=True)[0]


def test_resuming_without_pickles_trains_exactly_as_sb3s_loader_did(finished_run: Path, tmp_path: Path) -> None:
    import shutil

    import torch

    from tdwgym.agents.training import TrainConfig, train

    runs = {}
    for trusted in (True, False):
        run = tmp_path / f"run-{trusted}"
        shutil.copytree(finished_run, run)
        result = train(TrainConfig(total_steps=128, progress_bar=False), resume=run, trust_pickles=trusted)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rows = [{k: v for k, v in r.items() if "per_s" not in k and "time" not in k} for r in rows]
        runs[trusted] = rows, result.model.policy.state_dict(), result.model._n_updates
    assert runs[True][0] == runs[False][0] and runs[True][2] == runs[False][2]
    assert all(torch.equal(runs[True][1][k], runs[False][1][k]) for k in runs[True][1])


def test_a_zip_whose_weights_are_a_pickle_is_refused_in_one_line(finished_run, tmp_path, capsys) -> None:
    import pickle
    import zipfile

    from tdwgym.agents.rundir import RunDir

    marker = tmp_path / "code-ran"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(RunDir(finished_run).agent_path()) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, pickle.dumps(_Marker(marker)) if name == "policy.pth" else src.read(name))
    argv = ["record", "--policy", str(bad), "--steps", "2", "--out", str(tmp_path / "v.mp4"), "--device", "cpu"]
    assert cli_main([*argv, "--env-kwargs", '{"resolution": 36}', "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(bad) in line and not marker.exists()
