"""scripts/action_bias.py: uniform and lopsided fixed action distributions and a trained agent with its matched
distribution, on the same held-out episodes, in a table and JSON written by the script (tiny settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from script_tools import load_script


def _script():
    return load_script("action_bias")


def test_action_bias_measures_every_policy_and_an_agents_own_action_shares(tmp_path, capsys):
    import gymnasium as gym
    from stable_baselines3 import PPO

    import tdwgym  # noqa: F401 - registers the ids

    script = _script()
    env = gym.make("TDWRoom-Occlusion-v0", level=1, push_cone=20.0)
    agent = tmp_path / "agent.zip"
    PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu").save(agent)  # untrained: any policy will do
    env.close()
    doc, out = tmp_path / "bias.md", tmp_path / "bias.json"
    argv = ["--policies", "2", "--episodes", "1", "--uniform-episodes", "2", "--agent-episodes", "3", "--steps", "12"]
    argv += ["--agents", str(agent), "--doc", str(doc), "--json", str(out)]
    assert script.main(argv) == 0
    rows = json.loads(out.read_text())
    assert [r["policy"] for r in rows] == ["uniform", "lopsided 0", "lopsided 1", f"agent 0: {agent}", "matched 0"]
    assert [r["eval_steps"] for r in rows] == [24, 12, 12, 36, 36]
    for r in rows:
        assert np.isclose(sum(r["probs"]), 1.0, atol=1e-3) and 0 <= r["object_in_view_frac"] <= 1
    assert np.isclose(rows[0]["entropy_bits"], np.log2(10))  # uniform over the 10 actions
    assert rows[1]["probs"] != rows[2]["probs"] and rows[1]["entropy_bits"] < np.log2(10)
    assert rows[4]["probs"] == rows[3]["probs"]  # the matched policy draws from the agent's own shares
    text = doc.read_text()
    assert text in capsys.readouterr().out  # printed as written
    assert "Written by `python scripts/action_bias.py --policies 2" in text and "| matched 0 | 36 |" in text
    assert "| uniform | 24 |" in text and "of 2 above it" in text
    # the same seed draws the same lopsided distributions
    assert script.main(argv[:-4] + ["--doc", "", "--json", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert [r["probs"] for r in again[:3]] == [r["probs"] for r in rows[:3]]


def test_action_bias_refuses_bad_arguments(tmp_path, capsys):
    script = _script()
    for argv, message in [
        (["--episodes", "0"], "--episodes >= 1"),
        (["--alpha", "0"], "--alpha > 0"),
        (["--agent-episodes", "-1"], "--agent-episodes and --steps must be >= 0"),
        (["--agents", str(tmp_path / "missing")], "no such run folder or file"),
    ]:
        with pytest.raises(SystemExit) as exc:
            script.main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err
