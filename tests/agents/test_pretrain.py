"""``tdwgym pretrain``: settings checked at the door, streamed and on-disk clips, checkpoints that survive kill -9,
training clips disjoint from the evaluation's, and the shipped pretrained model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import tdwgym
from tdwgym.agents.models import PRETRAINED, SHIPPED, load_world_model
from tdwgym.agents.pretraining import ClipStream, PretrainConfig, parse_mix, pretrain
from tdwgym.envs.sampling import split_bucket
from tdwgym.tools import dataset as ds

TINY = {
    "model": "recurrent",
    "envs": "occlusion:2,collision",
    "level": "0,1",
    "resolution": 16,
    "clip_steps": 8,
    "tbptt": 4,
    "batch_size": 2,
    "total_steps": 64,
    "val_every": 32,
    "val_clips": 1,
    "workers": 0,
    "model_kwargs": {"width": 8, "hidden": 8},
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("envs", "occlusion:2,kitchen", "unknown env 'kitchen'"),
        ("envs", "occlusion:-1", "positive number"),
        ("level", "0,4", "comma list of the env levels 0,1,2,3"),
        ("total_steps", 0, "--total-steps must be a positive integer"),
        ("model", "transformer", "unknown --model 'transformer'"),
        ("resolution", 30, "multiple of 4"),
        ("device", "tpu", "--device must be auto, cpu or cuda"),
        ("env_kwargs", {"gravity": {"slide_distance": 12}}, "names 'gravity', which is not in --envs"),
        ("env_kwargs", {"occlusion": 12}, "arguments must be a JSON object"),
        ("env_kwargs", {"occlusion": {"level": 2}}, "level are set by the run"),
    ],
)
def test_bad_settings_fail_at_the_door_and_write_nothing(tmp_path, field, value, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        pretrain(PretrainConfig(**{**TINY, field: value, "out": str(out)}), progress=False)
    assert not out.exists()


def test_the_cli_reports_a_bad_setting_in_one_line_with_exit_status_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tdwgym", "pretrain", "--envs", "kitchen", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "pybullet build time" not in line]
    assert len(lines) == 1 and "kitchen" in lines[0] and "occlusion" in lines[0]
    assert not (tmp_path / "r").exists()


def test_mixes_take_short_names_and_ids():
    assert parse_mix("occlusion:3, TDWRoom-Gravity-v0") == {"TDWRoom-Occlusion-v0": 3.0, "TDWRoom-Gravity-v0": 1.0}


def test_a_streamed_run_validates_checkpoints_and_writes_a_loadable_model(tmp_path):
    out = tmp_path / "run"
    summary = pretrain(PretrainConfig(**{**TINY, "out": str(out)}), progress=False)
    assert summary["frames"] == 64 and summary["clips"] == 8
    assert 0 < summary["loader_ratio"] <= 1.0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["frames"] for r in rows] == [32, 64]
    for split in ("test_id", "test_ood"):
        assert all(r[f"{split}/loss"] > 0 and r[f"{split}/copy_last"] >= 0 for r in rows)
    pointer = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert pointer == {"file": "ckpt-64.pt", "frames": 64}
    model = load_world_model(out / "world_model.pt", device="cpu")
    assert model.name == "recurrent" and model.frame_shape == (3, 16, 16)
    assert list((out / "tb").iterdir())  # TensorBoard events
    with pytest.raises(ValueError, match="--resume"):  # a second run in the same folder is refused
        pretrain(PretrainConfig(**{**TINY, "out": str(out)}), progress=False)


def test_the_clip_stream_is_a_function_of_seed_and_index():
    stream = ClipStream(parse_mix("occlusion,gravity"), [0, 1], 16, 6, seed=3)
    envs: dict = {}
    try:
        a, b = stream.clip(5, envs), stream.clip(5, envs)
        c = stream.clip(6, envs)
    finally:
        for env in envs.values():
            env.close()
    assert torch.equal(a.frames, b.frames) and torch.equal(a.actions, b.actions)
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.shape == (7, 3, 16, 16) and a.actions.shape == (6, 10)


def test_training_scenes_never_are_evaluation_scenes():
    """The pretraining stream draws train-split scenes; the VoE and probe sets draw test_id (and test_ood) scenes,
    which the split hash keeps disjoint from train, whatever the seeds."""
    stream = ClipStream(parse_mix("occlusion"), [0, 1], 16, 1, seed=0)
    envs: dict = {}
    train_scenes = []
    try:
        for i in range(12):
            stream.clip(i, envs)
            train_scenes += [env.unwrapped.scene for env in envs.values()]
    finally:
        for env in envs.values():
            env.close()
    assert all(split_bucket(s) != 0 for s in train_scenes)
    eval_scenes = []
    for seed in range(10_000 + 50_000, 10_000 + 50_004):  # EvalSettings' VoE seeds
        env = gym.make("TDWRoom-Occlusion-v0", resolution=8, split="test_id")
        env.reset(seed=seed)
        eval_scenes.append(env.unwrapped.scene)
        env.close()
    assert all(split_bucket(s) == 0 for s in eval_scenes)
    train_json = {json.dumps(s.to_dict(), sort_keys=True) for s in train_scenes}
    assert not train_json & {json.dumps(s.to_dict(), sort_keys=True) for s in eval_scenes}


def test_training_from_a_dataset_folder(tmp_path):
    data = tmp_path / "data"
    ds.generate(ds.DatasetConfig(out=data, episodes=2, frames=10, resolution=16), progress=False)
    out = tmp_path / "run"
    summary = pretrain(PretrainConfig(**{**TINY, "data": str(data), "out": str(out)}), progress=False)
    assert summary["frames"] == 64
    assert load_world_model(out / "world_model.pt", device="cpu").name == "recurrent"


def _run(out: Path, total: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "tdwgym", "pretrain", "--out", str(out), "--total-steps", str(total), "--no-progress"]
    for key in ("model", "envs", "level", "resolution", "clip_steps", "tbptt", "batch_size", "val_every", "val_clips"):
        args += [f"--{key.replace('_', '-')}", str(TINY[key])]
    args += ["--workers", "1", "--model-kwargs", json.dumps(TINY["model_kwargs"])]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_with_sigkill_resumes_from_its_newest_complete_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = _run(out, 100_000)
    pointer = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not pointer.exists():
        time.sleep(0.2)
    assert pointer.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint written"
    children = [
        int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    ]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15  # the DataLoader's clip worker notices its parent is gone and exits
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.2)
    assert not any(_alive(c) for c in children), f"workers {children} outlived the killed run"
    frames_at_kill = json.loads(pointer.read_text())["frames"]
    assert frames_at_kill >= 32  # the pointer names a complete checkpoint, even if the kill came mid-save
    # a kill during a save leaves that save's temporary file (never read); the resume below drops it
    (out / "checkpoints" / "ckpt-999999.pt12345678.tmp").write_bytes(b"half a checkpoint")
    # a damaged newest checkpoint is skipped with a warning, never trusted
    newest = out / "checkpoints" / json.loads(pointer.read_text())["file"]
    older = sorted((out / "checkpoints").glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    resumed = _resume(out, frames_at_kill + 32)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((out / "checkpoints").glob("*.tmp"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["frames"] == frames_at_kill + 32 and json.loads(pointer.read_text())["frames"] == rows[-1]["frames"]
    newest = out / "checkpoints" / json.loads(pointer.read_text())["file"]
    newest.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="damaged"):
        from tdwgym.agents.pretraining import _latest

        found = _latest(out / "checkpoints")
    assert found is not None and found != newest and len(older) >= 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")  # a zombie has exited


def _resume(out: Path, total: int) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "tdwgym", "pretrain", "--resume", str(out), "--total-steps", str(total)]
    return subprocess.run(args + ["--workers", "0", "--no-progress"], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: mixed precision and pinned memory")
def test_cuda_pretraining_uses_mixed_precision_and_pinned_memory(tmp_path):
    summary = pretrain(PretrainConfig(**{**TINY, "device": "cuda", "out": str(tmp_path / "run")}), progress=False)
    assert summary["device"].startswith("cuda")


def test_cuda_without_a_gpu_is_an_error_not_a_silent_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        pretrain(PretrainConfig(**{**TINY, "device": "cuda", "out": str(tmp_path / "run")}), progress=False)


def test_the_shipped_models_load_into_todays_code():
    """``pretrained`` names the objects model, ``pretrained-recurrent`` the pixel one, ``pretrained-playroom`` the
    objects model fine-tuned on Playroom; each file holds the command that made it."""
    assert set(SHIPPED) == {"pretrained", "pretrained-recurrent", "pretrained-playroom"}
    assert PRETRAINED == SHIPPED["pretrained"]
    expected = {
        "pretrained": ("objects", (24, 19)),
        "pretrained-recurrent": ("recurrent", (3, 32, 32)),
        "pretrained-playroom": ("objects", (24, 19)),
    }
    for name, (family, shape) in expected.items():
        assert SHIPPED[name].is_file(), f"{SHIPPED[name]} is missing from the package"
        model = load_world_model(name, device="cpu")
        assert model.name == family and tuple(model.frame_shape) == shape
        state = torch.load(SHIPPED[name], weights_only=True)
        assert "tdwgym pretrain" in state["meta"]["command"]
    assert load_world_model("pretrained", device="cpu").resolution == (64, 64)
    tuned = torch.load(SHIPPED["pretrained-playroom"], weights_only=True)["meta"]["command"]
    assert "--init pretrained" in tuned and "--envs playroom" in tuned
    # `pretrained` is the reference run with whole_loss fine-tuned with hidden_inertia: its file records both runs
    meta = torch.load(SHIPPED["pretrained"], weights_only=True)["meta"]
    assert '"hidden_inertia": true' in meta["command"] and "whole-base/world_model.pt" in meta["command"]
    assert '"whole_loss": true' in meta["init_meta"]["command"] and "whole-base" in meta["init_meta"]["command"]
    shipped = load_world_model("pretrained", device="cpu")
    assert shipped.hidden_inertia and shipped.whole_loss
    assert tdwgym.ENV_IDS  # the package's ids are registered beside it


def test_the_objects_model_pretrains_on_slot_clips_from_the_generators(tmp_path):
    """An object model's clips are slot tables made in the data workers from RGB, segmentation and depth; its
    validation has no pixel baseline; the saved model loads and reads the passes."""
    from tdwgym.agents.models import load_world_model
    from tdwgym.agents.pretraining import PretrainConfig, pretrain

    cfg = PretrainConfig(
        model="objects",
        envs="occlusion",
        total_steps=48,
        clip_steps=8,
        tbptt=8,
        batch_size=2,
        val_every=48,
        val_clips=1,
        resolution=32,
        workers=0,
        out=str(tmp_path / "run"),
        model_kwargs={"hidden": 8},
    )
    summary = pretrain(cfg, progress=False)
    row = summary["history"][-1]
    assert summary["frames"] == 48 and row["test_id/loss"] == row["test_id/loss"]  # finite
    assert row["test_id/copy_last"] != row["test_id/copy_last"]  # NaN: no pixel baseline for slot tables
    model = load_world_model(tmp_path / "run" / "world_model.pt", device="cpu")
    assert model.name == "objects" and model.resolution == (32, 32) and model.passes[1:] == ("segmentation", "depth")


def test_init_fine_tunes_a_model_file_and_refuses_one_that_does_not_fit(tmp_path):
    """``--init`` starts from a file's weights (its settings kept, ``model_kwargs`` over them); a file of another
    variant, another render size, or settings that change a weight's shape or drop weights are refused before anything
    is written; settings that add a part are accepted (its weights start fresh)."""
    first = PretrainConfig(**{**TINY, "model": "objects", "model_kwargs": {"hidden": 8}, "envs": "occlusion"})
    first.resolution, first.out = 32, str(tmp_path / "first")
    pretrain(first, progress=False)
    start = load_world_model(tmp_path / "first" / "world_model.pt", device="cpu")
    tuned_cfg = PretrainConfig(**{**vars(first), "out": str(tmp_path / "tuned")})
    tuned_cfg.init, tuned_cfg.model_kwargs, tuned_cfg.total_steps = (
        str(tmp_path / "first" / "world_model.pt"),
        {"withhold": 0.25, "ego_sigma": True},
        16,
    )
    pretrain(tuned_cfg, progress=False)
    tuned = load_world_model(tmp_path / "tuned" / "world_model.pt", device="cpu")
    assert tuned.hidden == 8 and tuned.withhold == 0.25  # the file's size, the run's setting
    assert tuned.ego_sigma and not start.ego_sigma  # a part the file did not have, added (from zero)
    meta = torch.load(tmp_path / "tuned" / "world_model.pt", weights_only=True)["meta"]
    assert meta["init_meta"]["command"] == torch.load(tuned_cfg.init, weights_only=True)["meta"]["command"]
    moved = [k for k, v in start.state_dict().items() if not torch.equal(v, tuned.state_dict()[k])]
    assert moved  # it trained from there
    fresh_kwargs = {"hidden": 8, "withhold": 0.25, "ego_sigma": True}
    fresh = PretrainConfig(
        **{**vars(tuned_cfg), "init": None, "model_kwargs": fresh_kwargs, "out": str(tmp_path / "fresh")}
    )
    pretrain(fresh, progress=False)
    # from the file's weights, not new ones: closer to the start than a fresh model of the same seed is
    gap = {k: float((tuned.state_dict()[k] - v).abs().sum()) for k, v in start.state_dict().items()}
    fresh_gap = load_world_model(tmp_path / "fresh" / "world_model.pt", device="cpu").state_dict()
    assert sum(gap.values()) < sum(float((fresh_gap[k] - v).abs().sum()) for k, v in start.state_dict().items())
    bad = [
        ({"model": "recurrent", "model_kwargs": {"width": 8, "hidden": 8}}, "holds a 'objects' model"),
        ({"resolution": 64}, "reads frames at 32x32 but --resolution is 64"),
        ({"model_kwargs": {"hidden": 16}}, "do not fit the weights"),
        ({"init": str(tmp_path / "nothing.pt")}, "is not a file"),
        (
            {"init": str(tmp_path / "tuned" / "world_model.pt"), "model_kwargs": {"ego_sigma": False}},
            "drop its weights sigma_ego.weight, sigma_ego.bias",
        ),
    ]
    for change, message in bad:
        out = tmp_path / "refused"
        with pytest.raises(ValueError, match=message):
            pretrain(PretrainConfig(**{**vars(tuned_cfg), **change, "out": str(out)}), progress=False)
        assert not out.exists()


def test_a_clip_cache_round_trips_and_refuses_another_streams_folder(tmp_path):
    """A cached clip equals the clip the stream renders; the folder records the stream's settings and a stream with
    other settings is refused."""
    from functools import partial

    from tdwgym.agents.models.slots import clip_features

    encode = partial(clip_features, fov=54.43, max_slots=24)
    plain = ClipStream(parse_mix("occlusion"), [1], 16, 5, seed=3, encode=encode)
    cached = ClipStream(parse_mix("occlusion"), [1], 16, 5, seed=3, encode=encode, cache=tmp_path / "c")
    envs: dict = {}
    try:
        want = plain.clip(4, envs)
        first = cached.clip(4, envs)  # rendered, then written
        assert (tmp_path / "c" / "clip-00000004.npz").exists()
        again = cached.clip(4, {})  # read back: no env needed
    finally:
        for env in envs.values():
            env.close()
    for got in (first, again):
        assert got.frames.dtype == want.frames.dtype == torch.float32 and got.frames.shape == (6, 24, 19)
        assert torch.equal(got.frames, want.frames) and torch.equal(got.actions, want.actions)
    assert json.loads((tmp_path / "c" / "cache.json").read_text())["seed"] == 3
    with pytest.raises(ValueError, match="holds clips of another stream"):
        ClipStream(parse_mix("occlusion"), [1], 16, 5, seed=4, encode=encode, cache=tmp_path / "c")


def test_env_kwargs_make_the_streams_scenes_and_key_their_cache(tmp_path):
    """``env_kwargs`` reach the env that makes each clip (Occlusion's ``slide_distance``: the same scene at the
    start, a slider that goes farther after it), are recorded in the cache folder's settings (a folder of the stream
    without them is refused), and a stream without them records what it did before the option existed."""
    from functools import partial

    from tdwgym.agents.models.slots import clip_features

    encode = partial(clip_features, fov=54.43, max_slots=24)
    far = {"TDWRoom-Occlusion-v0": {"slide_distance": 12.0}}
    plain = ClipStream(parse_mix("occlusion"), [0], 32, 60, seed=3, encode=encode, static_fraction=1.0)
    sliding = ClipStream(
        parse_mix("occlusion"), [0], 32, 60, seed=3, encode=encode, static_fraction=1.0, env_kwargs=far
    )
    envs: dict = {}
    far_envs: dict = {}
    moved = []
    try:
        for index in range(6):
            a, b = plain.clip(index, envs), sliding.clip(index, far_envs)
            assert torch.equal(a.frames[0], b.frames[0])  # the same scene at the start
            moved.append(not torch.equal(a.frames, b.frames))  # a slider goes farther
    finally:
        for env in [*envs.values(), *far_envs.values()]:
            env.close()
    assert any(moved), "some clip's slider must move otherwise with slide_distance"
    assert "env_kwargs" not in plain.settings()
    ClipStream(parse_mix("occlusion"), [0], 16, 5, seed=3, encode=encode, cache=tmp_path / "c", env_kwargs=far)
    assert json.loads((tmp_path / "c" / "cache.json").read_text())["env_kwargs"] == far
    with pytest.raises(ValueError, match="holds clips of another stream"):
        ClipStream(parse_mix("occlusion"), [0], 16, 5, seed=3, encode=encode, cache=tmp_path / "c")
    with pytest.raises(ValueError, match="may not set level"):
        ClipStream(parse_mix("occlusion"), [0], 16, 5, env_kwargs={"TDWRoom-Occlusion-v0": {"level": 1}})


def test_the_cli_refuses_env_kwargs_an_env_does_not_take_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tdwgym",
            "pretrain",
            "--envs",
            "occlusion",
            "--env-kwargs",
            '{"occlusion": {"slide_distanse": 12}}',
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "pybullet build time" not in line]
    assert len(lines) == 1 and "slide_distanse" in lines[0] and "slide_distance" in lines[0], lines
    assert not (tmp_path / "r").exists()


def test_distinct_clips_cycle_in_shuffled_epochs():
    stream = ClipStream(parse_mix("occlusion"), [0], 16, 5, seed=3, distinct=5)
    first = [stream.index_at(j) for j in range(5)]
    second = [stream.index_at(j) for j in range(5, 10)]
    third = [stream.index_at(j) for j in range(10, 15)]
    assert first == [0, 1, 2, 3, 4]  # the first epoch in order: as the stream without distinct
    assert sorted(second) == sorted(third) == first and second != third
    assert [ClipStream(parse_mix("occlusion"), [0], 16, 5, seed=3, distinct=5).index_at(j) for j in range(5, 10)] == (
        second
    )
    assert ClipStream(parse_mix("occlusion"), [0], 16, 5, seed=3).index_at(7) == 7
    with pytest.raises(ValueError, match="distinct"):
        ClipStream(parse_mix("occlusion"), [0], 16, 5, distinct=-1)


def test_a_cached_run_trains_the_same_model_as_a_rendered_one(tmp_path):
    """Two epochs over 2 distinct clips: the second run reads every clip from the first run's cache and ends with
    the same weights as a run that renders them."""
    base = {
        "model": "objects",
        "envs": "occlusion",
        "total_steps": 32,
        "clip_steps": 8,
        "tbptt": 8,
        "batch_size": 2,
        "val_every": 32,
        "val_clips": 1,
        "resolution": 32,
        "workers": 0,
        "distinct_clips": 2,
        "model_kwargs": {"hidden": 8, "withhold": 0.0},
    }
    weights = []
    for name, cache in (("rendered", None), ("first", tmp_path / "cache"), ("second", tmp_path / "cache")):
        cfg = PretrainConfig(**base, out=str(tmp_path / name), cache=None if cache is None else str(cache))
        pretrain(cfg, progress=False)
        weights.append(torch.load(tmp_path / name / "world_model.pt", weights_only=True)["model"])
    assert len(list((tmp_path / "cache").glob("clip-*.npz"))) == 2
    for w in weights[1:]:
        assert all(torch.equal(w[k], weights[0][k]) for k in w)
    with pytest.raises(ValueError, match="--distinct-clips"):
        PretrainConfig(**{**base, "distinct_clips": -2}, out=str(tmp_path / "bad")).validate()
