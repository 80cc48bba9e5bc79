"""Training recipe, resume, example scripts (tiny settings on the real environment)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_train import TINY

from tdwgym.agents.training import RunDirExistsError, TrainConfig, read_metrics, train
from tdwgym.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]


def test_train_writes_run_dir_and_resume_restores_state(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(
        total_steps=128,
        checkpoint_every=64,
        run_dir=str(run),
        curiosity="latent",
        frame_stack=2,
        # enough world-model steps for the background trainer's hand-overs (every 8 steps) to reach the logs
        wm_updates_per_transition=0.5,
        **{**TINY, "video_steps": 4, "video_size": 64},
    )
    first = train(cfg)
    assert first.num_timesteps == 128
    assert json.loads((run / "config.json").read_text())["total_steps"] == 128
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    ckpt = run / "checkpoints" / latest["dir"]
    assert {"agent.zip", "world_model.pt", "curiosity.json"} <= {p.name for p in ckpt.iterdir()}
    rows = read_metrics(run)
    assert rows and "curiosity/intrinsic_reward" in rows[-1] and "world_model/loss" in rows[-1]
    assert "rollout/object_in_view_frac" in rows[-1]
    assert (run / "training.png").stat().st_size > 0 and (run / "rollout.mp4").stat().st_size > 0
    assert any((run / "tb").rglob("events.out.tfevents*"))

    wm_state = {k: v.clone() for k, v in first.curiosity.world_model.state_dict().items()}
    stats = first.curiosity.get_statistics()
    # resuming a finished run restores step count, world model and statistics without training further
    again = train(resume=run)
    assert again.num_timesteps == 128
    assert again.curiosity.learner.updates == first.curiosity.learner.updates
    for k, v in again.curiosity.world_model.state_dict().items():
        assert torch.equal(v.cpu(), wm_state[k].cpu()), k
    assert again.curiosity.int_ret_rms.var == pytest.approx(stats["int_ret_rms"]["var"])
    assert again.curiosity.num_steps == stats["num_steps"]
    # raising the budget continues from the step count
    more = train(TrainConfig(total_steps=192, **TINY), resume=run)
    assert more.num_timesteps == 192
    assert more.curiosity.learner.updates > first.curiosity.learner.updates
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(steps) and steps[-1] == 192


def test_plain_ppo_train_and_a_fresh_run_never_silently_overwrites(tmp_path, capsys):
    cfg = TrainConfig(total_steps=64, curiosity="none", run_dir=str(tmp_path), **TINY)
    res = train(cfg)
    assert res.num_timesteps == 64 and res.curiosity is None
    assert (tmp_path / "training.png").exists()
    before = (tmp_path / "checkpoints" / "latest.json").read_text()
    with pytest.raises(RunDirExistsError, match=r"--resume .*--overwrite"):
        train(cfg)
    assert (tmp_path / "checkpoints" / "latest.json").read_text() == before
    # the CLI says the same and exits with status 2, before building any environment
    assert cli_main(["train", "--out", str(tmp_path), "--total-steps", "64", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and str(tmp_path) in err
    # --overwrite starts over: the old metrics go, the new run's rows are all that is left
    assert [r["step"] for r in read_metrics(tmp_path)] == [64]
    again = train(dataclasses.replace(cfg, total_steps=32, n_steps=16, overwrite=True))
    assert again.num_timesteps == 32
    assert [r["step"] for r in read_metrics(tmp_path)] == [32]


def _script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "examples" / name), *args]


TINY_ARGS = [
    "--env-kwargs",
    '{"resolution": 36}',
    "--n-envs",
    "2",
    "--n-steps",
    "32",
    "--batch-size",
    "32",
    "--n-epochs",
    "1",
    "--device",
    "cpu",
]


def test_train_example_survives_kill_9_and_resumes(tmp_path):
    run = tmp_path / "run"
    cmd = _script(
        "train_curiosity.py",
        "--total-steps",
        "100000",
        "--checkpoint-every",
        "64",
        "--out",
        str(run),
        "--no-progress",
        "--video-steps",
        "0",
        "--vec-env",
        "subproc",
        *TINY_ARGS,
    )
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    latest = run / "checkpoints" / "latest.json"
    deadline = time.time() + 90
    while time.time() < deadline and not (latest.exists() and json.loads(latest.read_text())["num_timesteps"] >= 128):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = json.loads(latest.read_text())["num_timesteps"]
    assert saved >= 128
    # resume with a budget just past the checkpoint
    out = subprocess.run(
        _script("train_curiosity.py", "--resume", str(run), "--total-steps", str(saved + 64), "--no-progress"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"trained {saved + 64} steps" in out.stdout


def test_train_and_its_resume_print_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    """One progress style: SB3's rich bar is gone; in a log the steps come as lines, counted from the resumed step."""
    run = tmp_path / "run"
    base = [sys.executable, "-m", "tdwgym", "train"]
    first = [*base, "--out", str(run), "--total-steps", "64", "--video-steps", "0", "--vec-env", "dummy", *TINY_ARGS]
    done = subprocess.run(first, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stderr and "train: 64/64 step (100%)" in done.stderr, done.stderr[-2000:]
    more = subprocess.run(
        [*base, "--resume", str(run), "--total-steps", "128"], capture_output=True, text=True, timeout=300
    )
    assert more.returncode == 0, more.stderr[-2000:]
    assert "\r" not in more.stderr and "train: 128/128 step (100%)" in more.stderr, more.stderr[-2000:]


def test_compare_example_smoke(tmp_path):
    out = subprocess.run(
        _script(
            "compare.py",
            "--total-steps",
            "64",
            "--eval-episodes",
            "1",
            "--eval-steps",
            "10",
            "--out",
            str(tmp_path / "cmp"),
            "--vec-env",
            "dummy",
            "--env",
            "TDWRoom-Occlusion-v0",
            *TINY_ARGS,
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    # the env id and kwargs given are the ones every agent used, and the table says so
    assert results["config"]["env_id"] == "TDWRoom-Occlusion-v0" and results["config"]["env_kwargs"] == {
        "resolution": 36
    }
    assert results["train_config"]["env_id"] == "TDWRoom-Occlusion-v0"
    assert json.loads((tmp_path / "cmp" / "ppo_s0" / "config.json").read_text())["env_kwargs"] == {"resolution": 36}
    for agent in ("random", "ppo", "curiosity"):
        row = results["runs"][0]["agents"][agent]
        assert row["pushes_moved_per_1k"] >= 0 and 0 <= row["object_in_view_frac"] <= 1
        assert row["heldout_wm_error"] >= 0
    assert "| curiosity |" in (tmp_path / "cmp" / "results.md").read_text()


def test_compare_runs_only_the_agents_asked_for_with_the_options_given(tmp_path):
    from tdwgym.agents.comparison import AGENTS
    from tdwgym.cli import main
    from tdwgym.commands.compare import AGENT_CHOICES

    assert AGENT_CHOICES == AGENTS
    argv = ["compare", "--agents", "curiosity", "--total-steps", "64", "--eval-episodes", "1", "--eval-steps", "5"]
    argv += ["--out", str(tmp_path / "cmp"), "--vec-env", "dummy", "--wm-fovea", "0.25", *TINY_ARGS]
    assert main(argv) == 0
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert list(results["runs"][0]["agents"]) == ["curiosity"] and results["train_config"]["wm_fovea"] == 0.25
    assert not (tmp_path / "cmp" / "ppo_s0").exists()
    saved = json.loads((tmp_path / "cmp" / "curiosity_s0" / "config.json").read_text())
    assert saved["wm_fovea"] == 0.25
    with pytest.raises(SystemExit):
        main([*argv[:2], "robot"])
    with pytest.raises(ValueError, match="wm_fovea must be"):
        TrainConfig(wm_fovea=0.0)


def test_compare_writes_plots_table_and_progress_lines(tmp_path, capsys):
    """Two seeds, two agents, tiny budgets: push-rate and training-curve plots, the markdown table file the README
    table is pasted from, training curves per agent and seed in results.json, and progress lines with the ETA
    (stderr is not a terminal)."""
    from tdwgym.agents.comparison import format_table
    from tdwgym.cli import main

    argv = ["compare", "--agents", "random", "ppo", "--seeds", "0", "1", "--total-steps", "128"]
    argv += ["--eval-episodes", "1", "--eval-steps", "5", "--out", str(tmp_path / "cmp"), "--vec-env", "dummy"]
    assert main([*argv, *TINY_ARGS]) == 0
    out = tmp_path / "cmp"
    for name in ("pushes.png", "training.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text() == format_table(results) + "\n"
    for run in results["runs"]:
        for agent in ("random", "ppo"):
            curve = run["curves"][agent]
            assert curve["step"] and curve["step"][-1] == 128
            assert len(curve["pushes_moved_per_1k"]) == len(curve["step"])
    captured = capsys.readouterr()
    # stderr is not a terminal here: plain progress lines, no carriage-return redraws
    assert "\r" not in captured.err
    assert f"{2 * 2 * (128 + 5)}/{2 * 2 * (128 + 5)} step (100%)" in captured.err  # the last line: the total
    assert re.search(r"compare seed \d \w+: \d+/532 step \(\d+%\), \d\d:\d\d, about \d\d:\d\d left", captured.err)
    assert "results.md" in captured.out and "pushes.png" in captured.out
    quiet = ["compare", "--agents", "curiosity", "--seeds", "1", "--total-steps", "128", "--eval-episodes", "1"]
    quiet += ["--eval-steps", "5", "--out", str(tmp_path / "quiet"), "--vec-env", "dummy", "--no-progress"]
    assert main([*quiet, *TINY_ARGS]) == 0
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "[compare]" in captured.out

    # the README table from the comparisons' own output: curiosity (seed 1 only) joined to random and ppo
    merged = tmp_path / "merged"
    assert main(["compare", "--merge", str(out), str(tmp_path / "quiet"), "--out", str(merged)]) == 0
    results = json.loads((merged / "results.json").read_text())
    assert results["config"]["agents"] == ["random", "ppo", "curiosity"] and results["config"]["seeds"] == [0, 1]
    assert results["summary"]["curiosity"]["pushes_moved_per_1k"]["n"] == 1
    table = (merged / "results.md").read_text()
    assert table == format_table(results) + "\n" and "(n=1)" in table and "| random |" in table
    assert (merged / "pushes.png").exists() and (merged / "training.png").exists()
    capsys.readouterr()
    assert main(["compare", "--merge", str(out), str(out), "--out", str(tmp_path / "twice")]) == 2
    assert "appears in more than one" in capsys.readouterr().err
    assert main(["compare", "--merge", str(out), "--out", str(out)]) == 2


def test_compare_oracle_is_ppo_paid_for_pushes_that_move_an_object(tmp_path):
    """The oracle trains on the env's push reward alone; it is measured on the same unrewarded held-out episodes."""
    from tdwgym.agents.comparison import ORACLE_PUSH_REWARD
    from tdwgym.cli import main

    argv = ["compare", "--agents", "oracle", "--total-steps", "64", "--eval-episodes", "1", "--eval-steps", "5"]
    argv += ["--out", str(tmp_path / "cmp"), "--vec-env", "dummy", "--int-norm-horizon", "512", *TINY_ARGS]
    assert main(argv) == 0
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    row = results["runs"][0]["agents"]["oracle"]
    assert row["pushes_moved_per_1k"] >= 0 and row["heldout_wm_error"] >= 0
    saved = json.loads((tmp_path / "cmp" / "oracle_s0" / "config.json").read_text())
    assert saved["env_kwargs"] == {"resolution": 36, "push_reward": ORACLE_PUSH_REWARD}
    assert saved["int_coef"] == 0.0 and saved["ext_coef"] == 1.0 and saved["int_norm_horizon"] == 512
    assert results["config"]["env_kwargs"] == {"resolution": 36}  # held-out episodes: the env as given
    assert "| oracle |" in (tmp_path / "cmp" / "results.md").read_text()
    with pytest.raises(ValueError, match="int_norm_horizon must be"):
        TrainConfig(int_norm_horizon=0)


def test_training_with_background_world_model_is_deterministic(tmp_path):
    """The world model trains in a worker thread (wm_background, the default), yet a seed fixes the run; and
    writing checkpoints (b) does not change it."""
    results = []
    for name, every in (("a", 10**9), ("b", 32)):
        cfg = TrainConfig(total_steps=128, run_dir=str(tmp_path / name), seed=3, checkpoint_every=every, **TINY)
        assert cfg.wm_background
        res = train(cfg)
        assert res.curiosity.learner.updates > 0
        results.append((res.curiosity.world_model.state_dict(), read_metrics(tmp_path / name)))
    (wm_a, rows_a), (wm_b, rows_b) = results
    for k, v in wm_a.items():
        assert torch.equal(v, wm_b[k]), k
    key = "curiosity/intrinsic_reward_raw"
    assert [r[key] for r in rows_a] == [r[key] for r in rows_b]


def test_lockstep_vec_env_trains_as_the_dummy_one_and_logs_the_same_metrics(tmp_path):
    """``vec_env="lockstep"`` (tdwgym.tools.vector.LockstepVecEnv: one env here, one in a worker) gives the same run as
    ``"dummy"`` for a seed: same world model, same logged metrics from the infos (pushes, objects in view) and the
    curiosity wrapper."""
    results = []
    for vec_env in ("dummy", "lockstep"):
        cfg = TrainConfig(total_steps=128, run_dir=str(tmp_path / vec_env), seed=5, **{**TINY, "vec_env": vec_env})
        res = train(cfg)
        results.append((res.curiosity.world_model.state_dict(), read_metrics(tmp_path / vec_env)))
    lock = res.model.get_env().unwrapped
    assert type(lock).__name__ == "LockstepVecEnv" and lock.in_process == 1  # beside PPO: one env here
    with pytest.raises(ValueError, match=r"vec_env must be one of \('subproc', 'lockstep', 'dummy'\), got 'spin'"):
        TrainConfig(vec_env="spin")
    (wm_a, rows_a), (wm_b, rows_b) = results
    for k, v in wm_a.items():
        assert torch.equal(v, wm_b[k]), k
    timing = {"rollout/steps_per_s", "world_model/train_time_s"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows_a] == [
        {k: v for k, v in r.items() if k not in timing} for r in rows_b
    ]
    assert {"rollout/pushes_moved_per_1k", "rollout/object_in_view_frac"} <= set(rows_b[-1])


def test_a_config_round_trips_through_json_and_unknown_fields_are_left_out(tmp_path):
    """``config.json`` holds every field; a field this tdwgym no longer has (a run of an earlier build) is left out."""
    TrainConfig(wm_fovea=0.25).to_json(tmp_path / "new.json")
    assert TrainConfig.from_json(tmp_path / "new.json") == TrainConfig(wm_fovea=0.25)
    data = {**dataclasses.asdict(TrainConfig()), "vec_spin": 0.0, "stagger_episodes": False}
    assert TrainConfig.from_dict(data) == TrainConfig()


@pytest.mark.parametrize("source", ["recurrent", "jepa", "file", "objects"])
def test_models_with_memory_train_resume_record_and_evaluate(tmp_path, source):
    """The new variants through the whole loop: `train` by name or from a pretrained file (the reward starts from
    it and it keeps learning), `--resume`, `record` with its panels and `eval` of the run."""
    from tdwgym.agents.evaluate import evaluate
    from tdwgym.agents.models import make_world_model
    from tdwgym.agents.panels import record_episode
    from tdwgym.agents.pretraining import save_world_model

    run = tmp_path / "run"
    extra: dict = {"curiosity": source}
    if source == "file":
        ready = make_world_model("recurrent", (3, 16, 16), 10, device="cpu", width=4, hidden=4)
        save_world_model(ready, tmp_path / "wm.pt")
        extra = {"world_model": str(tmp_path / "wm.pt")}
    cfg = TrainConfig(total_steps=64, checkpoint_every=64, run_dir=str(run), wm_resolution=16, **{**TINY, **extra})
    first = train(cfg)
    wm = first.curiosity.world_model
    assert wm.name == ("recurrent" if source == "file" else source) and wm.context_frames == 16
    assert first.curiosity.learner.updates > 0
    if source == "file":  # it kept learning from the pretrained weights
        before, after = ready.state_dict(), wm.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)
    resumed = train(dataclasses.replace(cfg, total_steps=128), resume=run)
    assert resumed.num_timesteps == 128 and resumed.curiosity.world_model.name == wm.name
    video = record_episode("TDWRoom-Occlusion-v0", out=tmp_path / "v.mp4", run_dir=run, steps=4, progress=False)
    assert video.stat().st_size > 0
    report = evaluate(run_dir=run, quick=True, out=tmp_path / "eval", device="cpu", progress=False)
    assert report["voe"]["kinds"] and report["meta"]["model_name"] == wm.name


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _running(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
@pytest.mark.parametrize("vec_env", ["subproc", "lockstep"])
def test_env_workers_die_with_a_training_run_killed_by_sigkill(tmp_path, vec_env):
    # lockstep on 2 cores: one worker and the resource tracker of its shared memory (which frees it)
    if vec_env == "lockstep" and (os.cpu_count() or 1) < 2:
        pytest.skip("on one core the lockstep vec env steps every env in the calling process")
    args = [sys.executable, "-m", "tdwgym", "train", "--n-envs", "2", "--vec-env", vec_env, "--total-steps"]
    args += ["100000", "--env-kwargs", '{"resolution": 36}', "--no-progress", "--out", str(tmp_path / "run")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_children(proc.pid)) < 2:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the run started no env workers"
        time.sleep(1.0)  # let them get past their start-up
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if _running(w)], "env workers outlived the killed run by 10 s"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_env_workers_die_with_a_comparison_killed_by_sigkill(tmp_path):
    from proc_tools import survivors_of_kill_9

    cmd = [sys.executable, "-m", "tdwgym", "compare", "--agents", "ppo", "--seeds", "0", "--total-steps", "100000"]
    cmd += ["--n-envs", "2", "--vec-env", "subproc", "--env-kwargs", '{"resolution": 36}', "--no-progress"]
    seen, left = survivors_of_kill_9([*cmd, "--out", str(tmp_path / "cmp")], expected=2)
    assert len(seen) >= 2, "the comparison started no env workers"
    assert not left, f"outlived the killed comparison by 10 s: {left}"


def test_checkpoints_are_never_rewritten_in_place_and_a_damaged_pointer_falls_back(tmp_path):
    from tdwgym.agents.training import save_checkpoint

    run = tmp_path / "run"
    cfg = TrainConfig(total_steps=64, checkpoint_every=64, run_dir=str(run), curiosity="rnd", **TINY)
    result = train(cfg)
    root = run / "checkpoints"
    first = json.loads((root / "latest.json").read_text())["dir"]
    agent_bytes = (root / first / "agent.zip").read_bytes()
    # resuming a finished run has nothing left to do: it keeps its one checkpoint at the final step as it was
    train(dataclasses.replace(cfg, total_steps=64), resume=run)
    assert json.loads((root / "latest.json").read_text())["dir"] == first
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", first]
    # a second save at the same step goes into a new folder, the old one untouched
    save_checkpoint(run, result.model, result.curiosity)
    second = json.loads((root / "latest.json").read_text())["dir"]
    assert second != first and second.startswith("step_0000000064")
    assert (root / first / "agent.zip").read_bytes() == agent_bytes
    assert not list(root.glob(".*.partial"))
    # a damaged pointer: resume warns and takes the newest complete checkpoint
    (root / "latest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="latest.json is damaged"):
        resumed = train(dataclasses.replace(cfg, total_steps=128), resume=run)
    assert resumed.num_timesteps == 128


# -- damaged run folders and bad starts: one line, naming the file, nothing deleted ----------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    train(TrainConfig(total_steps=64, checkpoint_every=64, run_dir=str(run), curiosity="rnd", **TINY))
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage", ["{not json", "", "[]"])
@pytest.mark.parametrize("command", ["resume", "record", "eval"])
def test_a_damaged_config_json_is_one_line_naming_it(finished_run, tmp_path, capsys, damage, command):
    run = _copy_run(finished_run, tmp_path / "run")
    (run / "config.json").write_text(damage)
    before = _snapshot(run)
    argv = {
        "resume": ["train", "--resume", str(run), "--total-steps", "128", "--no-progress"],
        "record": ["record", "--run", str(run), "--steps", "2", "--out", str(tmp_path / "v.mp4"), "--no-progress"],
        "eval": ["eval", "--run", str(run), "--out", str(tmp_path / "eval"), "--no-progress"],
    }[command]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{run / 'config.json'} is damaged" in err[0], err
    assert "JSONDecodeError" not in err[0] and _snapshot(run) == before


def test_eval_of_a_run_with_a_damaged_latest_json_takes_the_newest_complete_checkpoint(finished_run, tmp_path):
    from tdwgym.agents.evaluate import load_run

    run = _copy_run(finished_run, tmp_path / "run")
    (run / "checkpoints" / "latest.json").write_text('{"dir": ')
    with pytest.warns(UserWarning, match="latest.json is damaged"):
        loaded = load_run(run_dir=run, device="cpu")
    assert loaded.model_path.parent.name.startswith("step_0000000064")


def test_resuming_with_another_world_model_variant_is_one_line(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "curiosity": "pixel"}))
    before = _snapshot(run)
    assert cli_main(["train", "--resume", str(run), "--total-steps", "128", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "world_model.pt holds a different world model: name 'rnd' (this run: 'pixel')" in err[0]
    assert _snapshot(run) == before


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--env-kwargs", '{"resolution": -3}'], "resolution must be in 1..4096"),
        (["--env-kwargs", '{"colour": 1}'], "takes no 'colour'"),
        (["--env", "TDWRoom-Nowhere-v0"], "Nowhere"),
        (["--device", "tpu"], "--device tpu: unknown device"),
        (["--n-envs", "0"], "--n-envs: must be a positive integer, got 0"),
    ],
)
def test_overwrite_checks_everything_before_deleting_the_old_run(finished_run, tmp_path, capsys, bad, message):
    run = _copy_run(finished_run, tmp_path / "run")
    before = _snapshot(run)
    argv = ["train", "--overwrite", "--out", str(run), "--total-steps", "64", "--no-progress", *bad]
    code = None
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse's own errors (a bad --n-envs) exit 2 from the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert _snapshot(run) == before


def test_observations_too_small_for_the_cnn_policy_are_refused_before_anything_is_written(tmp_path, capsys):
    """NatureCNN needs 36x36 pixels: a smaller resolution is one line and exit 2 from `tdwgym train` and `tdwgym
    compare`, before a run folder is made or an env worker starts (it was a traceback from inside SB3)."""
    from tdwgym.agents.training import check_policy_input
    from tdwgym.cli import main

    for resolution in (32, [64, 35]):
        with pytest.raises(ValueError, match=r"too small for PPO's CnnPolicy .* at least 36x36 pixels"):
            check_policy_input({"resolution": resolution})
    for fine in ({}, {"resolution": 36}, {"resolution": [36, 48]}):
        check_policy_input(fine)
    run, cmp = tmp_path / "run", tmp_path / "cmp"
    kwargs = ["--env-kwargs", '{"resolution": 32}', "--no-progress"]
    assert main(["train", "--total-steps", "64", "--out", str(run), *kwargs]) == 2
    assert main(["compare", "--agents", "random", "ppo", "--total-steps", "64", "--out", str(cmp), *kwargs]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if ": error:" in line]
    assert len(err) == 2
    assert all("resolution 32 is too small" in line and "use a resolution of 36" in line for line in err)
    assert err[0].startswith("tdwgym train: error:") and err[1].startswith("tdwgym compare: error:")
    assert not run.exists() and not cmp.exists()
