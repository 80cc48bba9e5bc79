"""scripts/sample_efficiency.py: one folder per env and seed, resumed by skipping what is finished, and a table
computed from its own output (tiny settings)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from script_tools import load_script
from tiny_train import TINY_PPO

TINY = {**TINY_PPO, "device": "cpu"}


def _script():
    return load_script("sample_efficiency")


def test_sample_efficiency_runs_every_env_and_seed_resumes_and_reports_its_own_numbers(tmp_path, capsys):
    se = _script()
    out, doc = tmp_path / "runs", tmp_path / "se.md"
    argv = ["--seeds", "0", "--total-steps", "64", "--eval-episodes", "2", "--eval-steps", "6"]
    argv += ["--out", str(out), "--doc", str(doc), "--train-overrides", json.dumps(TINY)]
    assert se.main(argv) == 0
    for name in ("playroom", "occlusion"):
        folder = out / f"{name}_s0"
        assert se.finished(name, 0, str(out))
        draw2 = json.loads((folder / "draw2.json").read_text())
        assert draw2["heldout_seeds"] == [50_000, 50_001]
        assert {"random", "ppo", "curiosity"} <= set(draw2) and draw2["ppo"]["eval_steps"] == 12
        results = json.loads((folder / "compare" / "results.json").read_text())
        assert results["runs"][0]["heldout_seeds"] == [10_000, 10_001]
    text = doc.read_text()
    assert "## TDWRoom-Playroom-v0" in text and "## TDWRoom-Occlusion-v0" in text
    assert "1 of 1 seeds finished: [0]" in text and "curiosity / random" in text and "curiosity / ppo" in text
    rate = json.loads((out / "playroom_s0" / "random.json").read_text())["pushes_moved_per_1k"]
    assert f"| 1 | random | {rate:.1f} |" in text  # the table is the runs' own figures
    assert " / 12 |" in text  # pushes out of 2 episodes x 6 steps

    # finished steps are skipped: a second call trains nothing and gives the same table
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    assert se.main([*argv, "--report-only"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} == stamps
    assert doc.read_text() == text
    # a step lost (an interrupted run) is redone, and only it
    (out / "occlusion_s0" / "draw2.json").unlink()
    assert se.main(argv) == 0
    assert (out / "occlusion_s0" / "draw2.json").is_file()
    assert (out / "playroom_s0" / "draw2.json").stat().st_mtime_ns == stamps[out / "playroom_s0" / "draw2.json"]


def test_bootstrap_interval_and_ratio():
    se = _script()
    rng = np.random.default_rng(0)
    lo, hi = se.bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), rng)
    assert 1.0 <= lo < 3.0 < hi <= 5.0
    assert np.isnan(se.bootstrap_ci(np.array([2.0]), rng)[0])  # one seed: no interval
    no_pushes = np.zeros((3, 2))  # no push by either agent on any seed: every resampled ratio is 0 / 0
    assert np.isnan(se.bootstrap_ci(no_pushes, rng, stat=se._ratio)).all()
    assert se._ratio(np.array([[6.0, 2.0], [3.0, 1.0]])) == 3.0  # ratio of the means
    assert se._ratio(np.array([[1.0, 0.0]])) == float("inf")
    assert np.isnan(se._ratio(np.array([[0.0, 0.0]])))  # no push by either: no ratio, and no target met


def test_sample_efficiency_refuses_to_mix_results_of_other_settings(tmp_path, capsys):
    """A folder measured with other TrainConfig settings (older defaults) or sizes is not skipped as finished."""
    se = _script()
    out, doc = tmp_path / "runs", tmp_path / "se.md"
    argv = ["--envs", "playroom", "--seeds", "0", "--total-steps", "64", "--eval-episodes", "2", "--eval-steps", "6"]
    argv += ["--out", str(out), "--doc", str(doc)]
    assert se.main([*argv, "--train-overrides", json.dumps(TINY)]) == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    other = {**TINY, "n_epochs": 2}
    with pytest.raises(SystemExit) as exc:
        se.main([*argv, "--train-overrides", json.dumps(other)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "n_epochs: 1 there, 2 now" in err and "--out" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps  # nothing touched
    # how the envs are stepped is not a setting (every vec_env gives the same run): such a folder still matches
    path = out / "playroom_s0" / "settings.json"
    recorded = json.loads(path.read_text())
    recorded["train"]["vec_env"] = "subproc"
    path.write_text(json.dumps(recorded))
    assert se.main([*argv, "--train-overrides", json.dumps({**TINY, "vec_env": "lockstep"})]) == 0
    # a folder measured with a retired field at the value every run has now (stagger_episodes off) still matches; one
    # measured with it on does not
    recorded = json.loads(path.read_text())
    recorded["train"]["stagger_episodes"] = False
    path.write_text(json.dumps(recorded))
    assert se.main([*argv, "--train-overrides", json.dumps(TINY)]) == 0
    recorded["train"]["stagger_episodes"] = True
    path.write_text(json.dumps(recorded))
    with pytest.raises(SystemExit):
        se.main([*argv, "--train-overrides", json.dumps(TINY)])
    assert "stagger_episodes: True there, False now" in capsys.readouterr().err
    # a folder from before settings.json existed is refused too
    (out / "playroom_s0" / "settings.json").unlink()
    with pytest.raises(SystemExit):
        se.main([*argv, "--train-overrides", json.dumps(TINY)])
    assert "without settings.json" in capsys.readouterr().err


def test_report_gives_the_ratios_without_the_seeds_that_chose_the_defaults():
    se = _script()
    agents = ("random", "ppo", "curiosity")

    def row(*rates):
        per = dict(zip(agents, rates, strict=True))
        return {"draw1": per, "draw2": per, **{k: dict.fromkeys(agents, 10_000) for k in ("steps1", "steps2")}}

    args = argparse.Namespace(total_steps=30_000, seeds=[0, 1, 2, 3, 4], eval_episodes=20, out="x")
    assert se.CHOSEN_ON["playroom"] == (0, 1, 2)
    rows = {0: row(6.0, 6.0, 48.0), 1: row(6.0, 5.0, 20.0), 3: row(6.0, 5.0, 20.0), 4: row(7.0, 6.0, 14.0)}
    text = se.report({"playroom": rows, "occlusion": rows}, args)
    assert "curiosity / random = **4.08**" in text  # (48 + 20 + 20 + 14) / (6 + 6 + 6 + 7)
    # seed 0 carries the mean: met on it, but resampled seeds reach below the target, and the verdict says so
    assert "target 3x: met on the mean, but the 95 % CI reaches down to" in text
    line = "draw 1 without the seeds that chose the defaults ([0, 1]; seeds [3, 4]): curiosity / random = **2.62**"
    assert line in text and "curiosity / ppo = **3.09**" in text
    assert text.count("without the seeds") == 2  # both draws of Playroom; no seed of Occlusion chose them
    only_later = se.report({"playroom": {3: row(6.0, 5.0, 20.0)}}, args)
    assert "without the seeds" not in only_later  # nothing to leave out
    assert "with the defaults of `tdwgym train` (env kwargs" in text and "--train-overrides" not in text
    # a table measured with some fields changed says which, in its command and its text
    args.train_overrides = {"gamma": 0.99, "ent_coef": 0.003}
    changed = se.report({"playroom": rows}, args)
    assert """--train-overrides '{"ent_coef": 0.003, "gamma": 0.99}'""" in changed
    assert "with the defaults of `tdwgym train` except `ent_coef` 0.003, `gamma` 0.99 (env kwargs" in changed


def test_baselines_from_reuses_random_and_ppo_when_only_the_curiosity_reward_differs(tmp_path, capsys):
    """``--baselines-from``: only the curiosity agent trains; the earlier folder's random and PPO figures are the
    table's; a folder whose baselines were measured with other settings is refused, naming them."""
    se = _script()
    first, second, doc = tmp_path / "first", tmp_path / "second", tmp_path / "se.md"
    argv = ["--envs", "playroom", "--seeds", "0", "--total-steps", "64", "--eval-episodes", "2", "--eval-steps", "6"]
    assert se.main([*argv, "--out", str(first), "--doc", str(doc), "--train-overrides", json.dumps(TINY)]) == 0
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    other_reward = {**TINY, "zscore_threshold": 1.5, "reward_gate": "none", "progress_base": "objects"}
    again = [*argv, "--out", str(second), "--doc", str(doc), "--baselines-from", str(first)]
    assert se.main([*again, "--train-overrides", json.dumps(other_reward)]) == 0
    assert "reused from" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == stamps  # the source is untouched
    folder = second / "playroom_s0"
    assert not (folder / "compare" / "ppo_s0").exists() and (folder / "compare" / "curiosity_s0").is_dir()
    old = {f: json.loads((first / "playroom_s0" / f).read_text()) for f in ("random.json", "draw2.json")}
    new = {f: json.loads((folder / f).read_text()) for f in ("random.json", "draw2.json")}
    assert new["random.json"]["pushes_moved_per_1k"] == old["random.json"]["pushes_moved_per_1k"]
    assert new["draw2.json"]["ppo"] == old["draw2.json"]["ppo"] and "curiosity" in new["draw2.json"]
    text = doc.read_text()
    assert "reused from" in text and f"--baselines-from {first}" in text
    ppo_rate = json.loads((first / "playroom_s0" / "compare" / "results.json").read_text())["runs"][0]["agents"]["ppo"]
    assert f"| 1 | ppo | {ppo_rate['pushes_moved_per_1k']:.1f} |" in text
    # a third, larger draw acts again with plain PPO's saved policy from the source folder
    assert se.main([*again, "--large-draw", "3", "--train-overrides", json.dumps(other_reward)]) == 0
    draw3 = json.loads((folder / "draw3.json").read_text())
    assert draw3["heldout_seeds"] == [90_000, 90_001, 90_002]
    assert all(draw3[a]["eval_steps"] == 18 for a in ("random", "ppo", "curiosity"))
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == stamps
    assert f"| 3 | ppo | {draw3['ppo']['pushes_moved_per_1k']:.1f} |" in doc.read_text()
    # a folder that reused its baselines passes on the ones it reused: they are read where they were measured
    chained = [*argv, "--out", str(tmp_path / "chained"), "--doc", str(doc), "--baselines-from", str(second)]
    assert se.main([*chained, "--train-overrides", json.dumps({**other_reward, "zscore_threshold": 2.0})]) == 0
    assert not (tmp_path / "chained" / "playroom_s0" / "compare" / "ppo_s0").exists()
    assert f"| 1 | ppo | {ppo_rate['pushes_moved_per_1k']:.1f} |" in doc.read_text()

    # baselines measured with other PPO settings are not reused
    with pytest.raises(SystemExit) as exc:
        se.main(
            [*argv, "--out", str(tmp_path / "third"), "--doc", str(doc), "--baselines-from", str(first)]
            + ["--train-overrides", json.dumps({**TINY, "n_epochs": 2})]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "n_epochs: 1 there, 2 now" in err and "only the curiosity reward's settings may differ" in err
    # a folder measured under other rules of the curiosity reward is not resumed as if finished
    settings = folder / "settings.json"
    recorded = json.loads(settings.read_text())
    recorded["train"]["reward_version"] = se.REWARD_VERSION - 1
    settings.write_text(json.dumps(recorded))
    with pytest.raises(SystemExit):
        se.main([*again, "--train-overrides", json.dumps(other_reward)])
    assert "reward_version" in capsys.readouterr().err


def test_large_draw_measures_a_third_draw_once_and_report_only_never_measures_it(tmp_path, capsys):
    """``--large-draw N``: ``draw3.json`` with N more episodes per agent, in the table as draw 3; ``--report-only``
    leaves a folder without it alone; another N is refused, naming the file."""
    se = _script()
    out, doc = tmp_path / "runs", tmp_path / "se.md"
    argv = ["--envs", "occlusion", "--seeds", "0", "--total-steps", "64", "--eval-episodes", "2", "--eval-steps", "6"]
    argv += ["--out", str(out), "--doc", str(doc), "--train-overrides", json.dumps(TINY)]
    assert se.main(argv) == 0
    assert se.main([*argv, "--report-only", "--large-draw", "2"]) == 0
    assert not (out / "occlusion_s0" / "draw3.json").exists() and "| 3 |" not in doc.read_text()
    assert se.main([*argv, "--large-draw", "2"]) == 0
    draw3 = json.loads((out / "occlusion_s0" / "draw3.json").read_text())
    assert draw3["heldout_seeds"] == [90_000, 90_001]
    text = doc.read_text()
    for agent in ("random", "ppo", "curiosity"):
        assert f"| 3 | {agent} | {draw3[agent]['pushes_moved_per_1k']:.1f} |" in text
    assert "--large-draw 2" in text and text.count("- draw 3: curiosity /") == 2
    stamp = (out / "occlusion_s0" / "draw3.json").stat().st_mtime_ns
    assert se.main([*argv, "--large-draw", "2"]) == 0  # measured once
    assert (out / "occlusion_s0" / "draw3.json").stat().st_mtime_ns == stamp
    with pytest.raises(SystemExit) as exc:
        se.main([*argv, "--large-draw", "5"])
    assert exc.value.code == 2 and "holds 2 episodes, not --large-draw 5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        se.main([*argv, "--large-draw", "1001"])
    assert "--large-draw must be between 0 and 1000" in capsys.readouterr().err


def test_sample_efficiency_on_ray_gives_the_local_numbers(tmp_path, capsys):
    """``--ray``: the comparisons' runs are Ray tasks (one pool for every env and seed); the numbers equal a local
    run's."""
    pytest.importorskip("ray")
    se = _script()
    argv = ["--seeds", "0", "--total-steps", "64", "--eval-episodes", "1", "--eval-steps", "6"]
    argv += ["--train-overrides", json.dumps(TINY)]
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert se.main([*argv, "--out", str(local), "--doc", str(tmp_path / "a.md")]) == 0
    assert se.main([*argv, "--out", str(remote), "--doc", str(tmp_path / "b.md"), "--ray", "local"]) == 0
    assert "[ray] 4 runs of 2 comparisons" in capsys.readouterr().out
    for name in ("playroom", "occlusion"):
        got, want = (json.loads((d / f"{name}_s0" / "compare" / "results.json").read_text()) for d in (remote, local))
        for results in (got, want):
            results["config"].pop("out")
            for run in results["runs"]:
                for row in run["agents"].values():
                    row.pop("train_wall_s")
            for stats in results["summary"].values():
                stats.pop("train_wall_s", None)
        assert got == want
        for file in ("random.json", "draw2.json"):
            assert (remote / f"{name}_s0" / file).read_text() == (local / f"{name}_s0" / file).read_text()
