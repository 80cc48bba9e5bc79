"""The reward audit (tdwgym.agents.reward_audit) and ``tdwgym audit``."""

from __future__ import annotations

import json
import math

import pytest

from tdwgym.agents.reward_audit import AUDIT_POLICIES, AuditConfig, audit, format_audit

TINY = {"n_envs": 2, "vec_env": "dummy", "device": "cpu", "wm_width": 4, "wm_capacity": 64, "reward_gate": "none"}


def test_audit_pays_each_policy_from_its_own_stream_and_writes_its_tables(tmp_path):
    cfg = AuditConfig(
        steps=240,
        policies=["random", "seek", "spin"],
        env_kwargs={"level": 1, "resolution": 32},
        train_overrides=TINY,
        out=str(tmp_path / "audit"),
    )
    results = audit(cfg, progress=lambda _: None)
    rows = results["policies"]
    assert list(rows) == ["random", "seek", "spin"]
    for row in rows.values():
        assert row["steps"] >= 240 and row["reward"] >= 0 and math.isfinite(row["reward"])
        assert row["normalised_reward"] >= 0 and 0 <= row["object_in_view_frac"] <= 1
    # the scripted pusher pushes, keeps objects in view; spinning does not push
    assert rows["seek"]["pushes_moved_per_1k"] > 100 > rows["random"]["pushes_moved_per_1k"]
    assert rows["seek"]["object_in_view_frac"] > 0.9
    assert 0 <= rows["seek"]["reward_share_of_moving_pushes"] <= 1 and math.isnan(rows["spin"]["reward_on_moving_push"])
    assert rows["random"]["reward_vs_random"] == pytest.approx(1.0)
    saved = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert saved["policies"] == json.loads(json.dumps(rows))
    table = (tmp_path / "audit" / "audit.md").read_text()
    assert "| seek |" in table and "| spin |" in table and "TDWRoom-Playroom-v0" in table
    assert format_audit(results) == table.rstrip("\n")


def test_audit_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError, match="unknown audit policies"):
        AuditConfig(policies=["dance"])
    with pytest.raises(ValueError, match="needs a curiosity reward"):
        AuditConfig(train_overrides={"curiosity": "none"}).train_config()
    with pytest.raises(ValueError, match="discrete actions"):
        audit(
            AuditConfig(steps=4, env_kwargs={"action_type": "continuous"}, train_overrides=TINY),
            progress=lambda _: None,
        )


def test_audit_command(tmp_path, capsys):
    from tdwgym.cli import main
    from tdwgym.commands.audit import AUDIT_CHOICES

    assert AUDIT_CHOICES == tuple(AUDIT_POLICIES)
    argv = ["audit", "--steps", "16", "--policies", "random", "seek30", "--action-baseline", "none"]
    argv += ["--env-kwargs", '{"resolution": 32}', "--n-envs", "2", "--vec-env", "dummy", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "| random |" in out and "| seek30 |" in out and "action baseline `none`" in out
    for ignored in (["--total-steps", "100"], ["--n-steps", "8"], ["--learning-rate", "0.1"]):  # PPO: no such option
        with pytest.raises(SystemExit) as exc:
            main([*argv, *ignored])
        assert exc.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    saved = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert saved["train_config"]["action_baseline"] == "none" and saved["config"]["env_kwargs"] == {"resolution": 32}
