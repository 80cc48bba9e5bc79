"""Videos: panel composition, world-model recordings, plain and RecordVideo recordings, the record CLI and example."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tdwgym.tools.video import CAPTION_HEIGHT, compose_panels, error_heatmap, read_video, reward_plot, write_video

ROOT = Path(__file__).resolve().parents[1]
ENV = "TDWRoom-Occlusion-v0"
RES = 16  # observation / world-model resolution
PANEL = 32


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder in ``tdwgym train``'s layout holding an untrained 16x16 pixel world model (no agent)."""
    from tdwgym.agents.models import make_world_model

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    model = make_world_model("pixel", (3, RES, RES), 10, device="cpu", width=4, latent_dim=16)
    ckpt = run / "checkpoints" / "step_0000000064"
    ckpt.mkdir(parents=True)
    torch.save({"model_config": model.config(), "model": model.state_dict()}, ckpt / "world_model.pt")
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"dir": ckpt.name, "num_timesteps": 64}))
    (run / "config.json").write_text(json.dumps({"env_id": ENV, "env_kwargs": {"resolution": RES}, "frame_stack": 1}))
    return run


def test_write_read_roundtrip_keeps_frame_count_and_size(tmp_path):
    frames = [np.full((18, 22, 3), 10 * i, dtype=np.uint8) for i in range(7)]
    frames_odd = [np.full((17, 21, 3), 100, dtype=np.uint8)] * 3
    assert read_video(write_video(frames, tmp_path / "a.mp4", fps=10)).shape == (7, 18, 22, 3)
    assert read_video(write_video(frames_odd, tmp_path / "b.mp4")).shape[0] == 3
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        write_video(frames, tmp_path / "c.avi")


def test_compose_panels_layout():
    obs = np.zeros((8, 8, 3), dtype=np.uint8)
    obs[:, :4] = 255
    pred = np.full((8, 8, 3), 0.5)
    frame = compose_panels(
        [obs, pred, error_heatmap(pred, obs), reward_plot([0.1, 0.5, 0.2], PANEL, length=10)],
        caption=["env step 3", "push: moved #1"],
        panel_size=PANEL,
    )
    assert frame.shape == (CAPTION_HEIGHT + PANEL, 4 * PANEL, 3) and frame.dtype == np.uint8
    body = frame[CAPTION_HEIGHT:]
    assert body[:, : PANEL // 2 - 1].min() == 255 and body[:, PANEL // 2 + 1 : PANEL].max() == 0  # obs, upscaled
    assert np.all(body[5, PANEL + 5] == 128)  # prediction panel: 0.5 grey
    assert frame[:CAPTION_HEIGHT].max() > 100  # caption text was drawn
    none = compose_panels([obs, None], panel_size=PANEL)
    assert none.shape == (CAPTION_HEIGHT + PANEL, 2 * PANEL, 3) and none[CAPTION_HEIGHT + 2, PANEL + 2].max() < 20


@pytest.mark.parametrize("size", [64, 128, 256])
def test_record_captions_fit_the_frame_without_cutting_the_env_or_the_step(size):
    """The caption of a plain recording (one panel, ``size`` wide) keeps the env's name and the step whole and
    leaves the strip's margin free: at 128 px it was cut to "TDWRoom-Occlusion-v0 st"."""
    from tdwgym.registration import ENV_IDS, short_names
    from tdwgym.tools.recording import caption
    from tdwgym.tools.video import CAPTION_MARGIN, text_width

    short = {v: k for k, v in short_names().items()}
    for env_id in ENV_IDS:
        for note in ("", "push: moved #12  event: vanish", "push: missed  episode end"):
            lines = caption(env_id, "random", 7, 300, note, size)
            assert len(lines) == 2 and all(text_width(x) <= size - 2 * CAPTION_MARGIN for x in lines), lines
            assert not any(x.endswith("..") for x in lines), lines
            assert lines[0].split()[0] in (env_id, short[env_id]) and "7/300" in " ".join(lines), lines
            # the same layout through the video: the first line's layout does not depend on the step or the note
            assert lines[0].replace("7/300", "300/300") == caption(env_id, "random", 300, 300, "", size)[0]
            frame = compose_panels([np.zeros((size, size, 3), np.uint8)], lines, panel_size=size)
            strip = frame[:CAPTION_HEIGHT]
            assert strip.max() > 100 and strip[:, size - CAPTION_MARGIN + 1 :].max() == 0  # drawn, none at the edge
    wide = caption("TDWRoom-Occlusion-v0", "random", 7, 300, "push: moved #12", 256)
    assert wide == ["TDWRoom-Occlusion-v0  step 7/300  policy random", "push: moved #12"]
    assert caption("some-other/Env-With-A-Very-Long-Name-v3", "random", 1, 9, "", 64)[0].endswith("..")


def test_reward_plot_draws_the_series():
    empty = reward_plot([], 40)
    line = reward_plot([0.0, 1.0, 0.5, 1.0], 40, length=4)
    assert empty.shape == line.shape == (40, 40, 3)
    assert (np.abs(line.astype(int) - empty.astype(int)).sum(-1) > 0).sum() > 20


def test_world_model_video_has_four_panels(tiny_run, tmp_path):
    from tdwgym.agents.panels import record_episode

    steps = 6
    path = record_episode(
        ENV,
        out=tmp_path / "wm.mp4",
        policy="static",
        world_model=tiny_run,
        steps=steps,
        seed=1,
        panel_size=PANEL,
        progress=False,
        device="cpu",
    )
    frames = read_video(path)
    assert frames.shape == (steps + 1, CAPTION_HEIGHT + PANEL, 4 * PANEL, 3)
    body = frames[:, CAPTION_HEIGHT:].astype(int)
    panels = [body[:, :, i * PANEL : (i + 1) * PANEL] for i in range(4)]
    # observation panel: the env's observation upscaled (mp4 is lossy: compare loosely)
    env = gym.make(ENV, resolution=RES)
    obs, _ = env.reset(seed=1)
    env.close()
    from tdwgym.tools.video import resize_nearest

    up = resize_nearest(obs, PANEL).astype(int)
    assert np.abs(panels[0][0, :-14] - up[:-14]).mean() < 12  # (the title sits in the bottom rows)
    assert panels[1][0, 1:8, 1:8].max() < 40  # no prediction for the reset frame: dark "n/a" panel
    assert panels[1][-1, :-14].std() > 5  # later: a predicted picture
    assert panels[2][-1, :-14].mean() > 5  # the error heatmap is not black
    background = np.median(panels[3][-1].reshape(-1, 3), axis=0)  # the reward plot: mostly its dark background
    assert np.abs(background - np.array([20, 20, 28])).max() < 8


def test_plain_recording_in_the_run_folder_with_predictable_name(tiny_run, tmp_path, monkeypatch):
    from tdwgym.agents.panels import record_episode
    from tdwgym.tools.recording import default_video_path

    monkeypatch.chdir(tmp_path)
    path = record_episode(
        ENV, policy="orbit", steps=4, seed=2, panel_size=PANEL, progress=False, gif=True, env_kwargs={"resolution": RES}
    )
    assert path == Path("runs/videos") / f"{ENV}-orbit-seed2.gif"
    assert read_video(path).shape[0] == 5
    path = record_episode(ENV, run_dir=tiny_run, steps=3, seed=0, panel_size=PANEL, progress=False, device="cpu")
    assert path == default_video_path(ENV, "random", 0, run_dir=tiny_run)  # the run has no agent: random acts
    assert path == tiny_run / "videos" / f"{ENV}-random-seed0.mp4"
    assert read_video(path).shape == (4, CAPTION_HEIGHT + PANEL, 4 * PANEL, 3)


def test_gymnasium_record_video_works_on_the_env(tmp_path):
    from tdwgym.tools.recording import record_with_gym

    paths = record_with_gym(ENV, tmp_path / "gym", policy="random", steps=5, seed=0, render_size=PANEL, resolution=RES)
    assert len(paths) == 1 and paths[0].name == f"{ENV}-random-seed0-episode-0.mp4"
    frames = read_video(paths[0])
    assert frames.shape[1:] == (PANEL, PANEL, 3) and frames.shape[0] in (5, 6)


def test_sb3_policy_from_a_zip(tmp_path):
    from stable_baselines3 import PPO

    from tdwgym.tools.policies import load_policy
    from tdwgym.tools.recording import record_episode

    env = gym.make(ENV, resolution=RES)
    PPO("MlpPolicy", env, n_steps=8, batch_size=8, device="cpu").save(tmp_path / "tiny_agent.zip")
    pol = load_policy(str(tmp_path / "tiny_agent.zip"), env, seed=0, device="cpu")
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(pol(obs))
    env.close()
    path = record_episode(
        ENV,
        policy=str(tmp_path / "tiny_agent.zip"),
        steps=3,
        panel_size=PANEL,
        progress=False,
        out=tmp_path / "agent.mp4",
        env_kwargs={"resolution": RES},
        device="cpu",
    )
    assert read_video(path).shape == (4, CAPTION_HEIGHT + PANEL, PANEL, 3)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_policy("no/such/agent.zip", gym.make(ENV, resolution=RES))


def test_record_parser_and_errors(tmp_path):
    from tdwgym.agents.panels import record_episode
    from tdwgym.commands.record import add_parser as add_record_parser

    parser = argparse.ArgumentParser()
    add_record_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli.mp4"
    args = parser.parse_args(["record", "--policy", "static", "--steps", "2", "--size", str(PANEL), "--out", str(out)])
    assert args.func(args) == 0 and read_video(out).shape[0] == 3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        record_episode(ENV, run_dir=tmp_path / "missing", steps=1)
    with pytest.raises(ValueError, match="steps"):
        record_episode(ENV, steps=0)


def test_record_command_records_a_run_in_the_env_it_was_trained_on(tiny_run, tmp_path):
    """``tdwgym record --run RUN`` without ``--env``: the run's env id, not the command's default."""
    import shutil

    from tdwgym.agents.rundir import RunDir
    from tdwgym.commands.record import add_parser as add_record_parser

    run = tmp_path / "playroom_run"
    shutil.copytree(tiny_run, run)
    (run / "config.json").write_text(json.dumps({"env_id": "TDWRoom-Playroom-v0", "env_kwargs": {"resolution": RES}}))
    assert RunDir(run).env_id == "TDWRoom-Playroom-v0" and RunDir(tmp_path).env_id is None
    parser = argparse.ArgumentParser()
    add_record_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["record", "--run", str(run), "--steps", "2", "--size", str(PANEL), "--device", "cpu"])
    assert args.func(args) == 0
    assert (run / "videos" / "TDWRoom-Playroom-v0-random-seed0.mp4").exists()
    # --env still wins when given
    args = parser.parse_args(["record", "--run", str(run), "--env", ENV, "--steps", "1", "--size", str(PANEL)])
    assert args.func(args) == 0 and (run / "videos" / f"{ENV}-random-seed0.mp4").exists()


def test_record_rollout_example(tiny_run, tmp_path):
    out = tmp_path / "ex.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "record_rollout.py"),
            "--run",
            str(tiny_run),
            "--steps",
            "3",
            "--size",
            str(PANEL),
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_video(out).shape == (4, CAPTION_HEIGHT + PANEL, 4 * PANEL, 3)
