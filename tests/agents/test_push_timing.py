"""scripts/push_timing.py: the random agent and a trained agent on the same held-out episodes, their pushes and
objects in view split by stretch of the episode, in a table and JSON written by the script (tiny settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from script_tools import load_script


def test_push_timing_splits_each_policys_pushes_by_stretch_of_the_episode(tmp_path, capsys):
    import gymnasium as gym
    from stable_baselines3 import PPO

    import tdwgym  # noqa: F401 - registers the ids

    script = load_script("push_timing")
    env = gym.make("TDWRoom-Playroom-v0", level=1, push_cone=20.0)
    agent = tmp_path / "agent.zip"
    PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu").save(agent)  # untrained: any policy will do
    env.close()
    doc, out = tmp_path / "timing.md", tmp_path / "timing.json"
    argv = ["--agents", str(agent), "--episodes", "2", "--steps", "25", "--bin", "10"]
    assert script.main(argv + ["--doc", str(doc), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["random", f"agent 0: {agent}"]
    for r in rows:
        assert r["steps"] == [20, 20, 10]  # two episodes of 25 steps in stretches of 10, 10 and 5
        rates = np.asarray(r["pushes_moved_per_1k"])
        assert rates.shape == (3,) and (rates >= 0).all() and all(0 <= f <= 1 for f in r["object_in_view_frac"])
        whole = float(np.dot(rates, r["steps"]) / sum(r["steps"]))
        assert r["pushes_moved_per_1k_all"] == pytest.approx(whole, abs=0.01)
    # Playroom's objects start in front of the camera: the first stretch sees one
    assert rows[0]["object_in_view_frac"][0] > 0
    text = doc.read_text()
    assert text in capsys.readouterr().out
    assert "| policy | whole episode | 0-9 | 10-19 | 20-29 |" in text and "(scene seeds 80000+i)" in text
    # the same seed gives the same rows
    assert script.main(argv + ["--doc", "", "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text()) == rows


def test_push_timing_refuses_bad_arguments(tmp_path, capsys):
    script = load_script("push_timing")
    for argv, message in [
        (["--episodes", "0"], "--episodes and --steps must be >= 1"),
        (["--steps", "10", "--bin", "11"], "--bin in [1, --steps]"),
        (["--env-kwargs", "{level: 1}"], "--env-kwargs is not JSON"),
        (["--agents", str(tmp_path / "missing")], "no such run folder or file"),
    ]:
        with pytest.raises(SystemExit) as exc:
            script.main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err
