"""Reward audit: does a curiosity reward pay a policy that pushes objects more than one that acts at random?

A PPO run takes minutes and answers only at the end; the audit asks the reward directly. It runs fixed behaviour
policies through the same curiosity wrapper training uses, each from a fresh world model that trains online on
that policy's own stream (as it would if PPO had learned the policy), and reports what each policy earns:

* ``random``: uniform random actions (where every PPO run starts);
* ``seek30``, ``seek``: the scripted pusher (:func:`tdwgym.tools.policies.seek_action`) on 30% / 100% of the steps,
  random actions on the others: what "seeks out and pushes objects" would earn;
* ``spin``: turning left on 80% of the steps: the classic way to farm a pixel-error reward.

Figures are means over the second half of each run (the first half lets the world model and the reward's running
statistics settle). "Reward" is the intrinsic reward before the return normalisation (the z-score excess, or the
raw error with ``action_baseline="none"``): the normalisation divides each run by its own scale, so only the
pre-normalisation figure compares across policies. A reward that can teach pushing must pay ``seek`` clearly more
than ``random`` and ``spin``.

    from tdwgym.agents.reward_audit import AuditConfig, audit, format_audit
    print(format_audit(audit(AuditConfig(steps=8000))))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from tdwgym.agents.comparison import COMPARE_ENV_KWARGS
from tdwgym.agents.training import TrainConfig, _make_env_fn, make_vec_env
from tdwgym.envs.base import DISCRETE_ACTIONS
from tdwgym.tools.policies import SEEK_REACH, seek_action

__all__ = ["AUDIT_POLICIES", "AuditConfig", "audit", "format_audit"]

AUDIT_POLICIES: dict[str, tuple[str, float]] = {
    "random": ("seek", 0.0),
    "seek30": ("seek", 0.3),
    "seek": ("seek", 1.0),
    "spin": ("spin", 0.8),
}
"""Audited policy -> (scripted part, fraction of steps it chooses; random actions on the others)."""

_TURN_LEFT = DISCRETE_ACTIONS.index("turn_left")


@dataclass
class AuditConfig:
    """Settings of :func:`audit`."""

    steps: int = 8_000
    """Environment steps per policy (summed over the vectorized envs)."""
    policies: list[str] = field(default_factory=lambda: list(AUDIT_POLICIES))
    """Which of :data:`AUDIT_POLICIES` to run."""
    env_id: str = "TDWRoom-Playroom-v0"
    """Environment (discrete actions)."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: dict(COMPARE_ENV_KWARGS))
    """Its ``gym.make`` keyword arguments (by default those of ``tdwgym compare``)."""
    seed: int = 0
    """Seed of the environments, the world model and the random actions (the same for every policy)."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """:class:`TrainConfig` fields of the reward (curiosity, action_baseline, wm_fovea, ...)."""
    out: str | None = None
    """Folder for ``audit.json`` and ``audit.md`` (None: write nothing)."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in AUDIT_POLICIES]
        if unknown or not self.policies:
            raise ValueError(f"unknown audit policies {unknown or self.policies}; valid are {list(AUDIT_POLICIES)}")
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps!r}")

    def train_config(self) -> TrainConfig:
        """The reward's configuration (``curiosity`` must not be ``"none"``)."""
        cfg = TrainConfig(
            **{"env_id": self.env_id, "env_kwargs": dict(self.env_kwargs), "seed": self.seed, **self.train_overrides}
        )
        if cfg.curiosity == "none":
            raise ValueError("the audit needs a curiosity reward; curiosity='none' has none")
        return cfg


def _env_steps(cfg: TrainConfig) -> dict[str, float]:
    """The env's step sizes and reach, read from one instance (so env kwargs that change them are honoured)."""
    env = _make_env_fn(cfg.env_id, cfg.env_kwargs)()
    try:
        u = env.unwrapped
        if env.action_space != spaces.Discrete(len(DISCRETE_ACTIONS)):
            raise ValueError(f"the audit needs the {len(DISCRETE_ACTIONS)} discrete actions, got {env.action_space}")
        return {
            "turn_step": u.turn_step,
            "pitch_step": u.pitch_step,
            "move_step": u.move_step,
            "reach": SEEK_REACH * u.push_reach,
        }
    finally:
        env.close()


def _run_policy(name: str, cfg: TrainConfig, steps: int, sizes: dict[str, float]) -> dict[str, float]:
    """One policy through a fresh curiosity wrapper; means over the second half of its steps."""
    scripted, share = AUDIT_POLICIES[name]
    venv, _ = make_vec_env(cfg)
    rng = np.random.default_rng(cfg.seed)
    venv.reset()
    infos: list[dict | None] = [None] * venv.num_envs
    rows: list[tuple[int, bool, bool, float, float]] = []
    try:
        while len(rows) < steps:
            actions = []
            for info in infos:
                if rng.random() >= share:
                    actions.append(int(rng.integers(len(DISCRETE_ACTIONS))))
                elif scripted == "spin":
                    actions.append(_TURN_LEFT)
                elif info is None:  # the first step of an episode: nothing known yet
                    actions.append(int(rng.integers(len(DISCRETE_ACTIONS))))
                else:
                    cam = info["camera"]
                    targets = {oid: np.asarray(o["position"]) for oid, o in info["objects"].items()}
                    actions.append(seek_action(cam["position"], cam["yaw"], cam["pitch"], targets, **sizes))
            _, _, dones, step_infos = venv.step(np.array(actions))
            infos = [None if done else info for done, info in zip(dones, step_infos, strict=True)]
            for action, info in zip(actions, step_infos, strict=True):
                c = info["curiosity"]
                moved = bool((info.get("push") or {}).get("moved"))
                rows.append(
                    (action, moved, int(info.get("objects_in_view", 0) or 0) > 0, c["r_int_excess"], c["r_int"])
                )
    finally:
        venv.close()
    late = rows[len(rows) // 2 :]
    moved = np.array([r[1] for r in late])
    reward = np.array([r[3] for r in late])
    normalised = np.array([r[4] for r in late])
    total = float(reward.sum())
    return {
        "steps": len(rows),
        "pushes_moved_per_1k": 1000.0 * float(moved.mean()),
        "object_in_view_frac": float(np.mean([r[2] for r in late])),
        "reward": float(reward.mean()),
        "reward_on_moving_push": float(reward[moved].mean()) if moved.any() else float("nan"),
        "reward_share_of_moving_pushes": float(reward[moved].sum() / total) if total > 0 else 0.0,
        "normalised_reward": float(normalised.mean()),
    }


def audit(cfg: AuditConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every policy of ``cfg`` through the reward; returns (and with ``cfg.out`` writes) the results."""
    tcfg = cfg.train_config()
    sizes = _env_steps(tcfg)
    results: dict[str, Any] = {"config": dataclasses.asdict(cfg), "train_config": dataclasses.asdict(tcfg)}
    rows: dict[str, dict[str, float]] = {}
    for name in cfg.policies:
        progress(f"[audit] {name}: {cfg.steps} steps")
        rows[name] = _run_policy(name, tcfg, cfg.steps, sizes)
        progress(f"[audit] {name}: {json.dumps({k: round(v, 5) for k, v in rows[name].items()})}")
    if "random" in rows and rows["random"]["reward"] > 0:
        for row in rows.values():
            row["reward_vs_random"] = row["reward"] / rows["random"]["reward"]
    results["policies"] = rows
    if cfg.out is not None:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "audit.md").write_text(format_audit(results) + "\n")
    return results


def format_audit(results: dict[str, Any]) -> str:
    """Markdown table of :func:`audit`'s results."""
    t = results["train_config"]
    cfg = results["config"]
    model = (
        f"world model `{t['world_model']}`, surprise terms `{t.get('wm_surprise')}`, "
        f"{t.get('wm_updates_per_transition')} updates per transition"
        if t.get("world_model") or t["curiosity"] == "objects"
        else f"fovea {t.get('wm_fovea')}, world model at {t.get('wm_resolution')} px"
    )
    head = (
        f"Reward audit on `{t['env_id']}` with env kwargs `{json.dumps(t['env_kwargs'])}`: curiosity "
        f"`{t['curiosity']}`, action baseline `{t['action_baseline']}`, gate `{t.get('reward_gate')}`, {model}; "
        f"{cfg['steps']} steps per policy, seed {cfg['seed']}, means over the second half."
    )
    cols = [
        ("pushes_moved_per_1k", "pushes moving an object / 1k"),
        ("object_in_view_frac", "object in view"),
        ("reward", "reward / step (before normalisation)"),
        ("reward_vs_random", "vs random"),
        ("reward_on_moving_push", "reward on a moving push"),
        ("reward_share_of_moving_pushes", "share paid for moving pushes"),
    ]
    lines = [head, "", "| policy | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in results["policies"].items():
        cells = [f"{row[k]:.4g}" if k in row and np.isfinite(row[k]) else "" for k, _ in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
