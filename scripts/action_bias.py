"""Does a lopsided action distribution alone push more often than the uniform random agent? (issue 14, Occlusion)

    python scripts/action_bias.py                                   # Occlusion, 24 lopsided policies, 10 episodes each
    python scripts/action_bias.py --agents runs/ppo_s0 runs/ppo_s1  # also trained agents, and their action shares
    python scripts/action_bias.py --env playroom --policies 8 --episodes 5 --doc ''

On TDWRoom-Occlusion-v0 plain PPO, paid nothing, pushed objects 4-5 times as often as the uniform random agent on
held-out episodes (docs/results/, sample efficiency), which is why the curiosity agent's 2x-PPO target is missed there.
One explanation needs no learning at all: a policy that prefers some actions (as a PPO policy drifts to, trained on
a reward of zero) keeps walking and turning one way, gets further from where it started than a uniform one that
undoes its own moves, and so reaches more objects. This script measures that directly:

* ``uniform``: each action with probability 1/10, the random agent of ``tdwgym compare``;
* ``lopsided k``: ``--policies`` fixed action distributions drawn from a Dirichlet(``--alpha``) (seeded), each
  acting with its own distribution in every state;
* with ``--agents``, trained agents (a ``tdwgym train`` or ``tdwgym compare`` run folder, or a PPO ``.zip``) acting
  as ``tdwgym compare`` evaluates them (sampled, not greedy), and ``matched k``: a fixed distribution equal to the
  agent's own share of each action over those episodes, so that what is left to the agent is what it does with the
  observation.

Every policy acts on the same held-out episodes (scene seeds ``70_000 + i``, never used in training or by the
other scripts' draws) with the defaults of ``tdwgym train`` (level 1, 20-degree push cone). For each it prints
pushes that moved an object per 1,000 steps, hits per 1,000 and the share of steps with an object in view, and
writes the table (``--doc``, default docs/results/DATE-action-bias.md, DATE today's in UTC) and a JSON of every row
(``--json``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ENVS = {"occlusion": ("TDWRoom-Occlusion-v0", 300), "playroom": ("TDWRoom-Playroom-v0", 500)}
"""Short name -> (env id, steps per held-out episode: the env's episode length)."""
SEED_OFFSET = 70_000
ROOT = Path(__file__).resolve().parents[1]


def dated_page(name: str) -> str:
    """The default ``--doc``: today's page of this measurement under docs/results/ (dates in UTC)."""
    return f"docs/results/{datetime.now(timezone.utc).date().isoformat()}-{name}.md"


def _categorical(probs: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A policy that ignores the observation and draws each action from ``probs``."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.choice(len(probs), size=len(obs), p=probs)


def _agent(path: str, seed: int, counts: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A trained agent acting as ``tdwgym compare`` evaluates it (sampled), counting its actions into ``counts``."""
    import torch

    from tdwgym.agents.sb3_agents import latest_agent, load_sb3_model

    zip_path = latest_agent(path) if Path(path).is_dir() else Path(path)
    if zip_path is None:
        raise SystemExit(f"--agents: {path} holds no agent.zip")
    model = load_sb3_model(zip_path, device="cpu")
    torch.manual_seed(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        action = np.asarray(model.predict(obs, deterministic=False)[0])
        np.add.at(counts, action.reshape(-1), 1)
        return action

    return act


def measure(
    act: Callable[[np.ndarray], np.ndarray], env: str, episodes: int, steps: int | None = None
) -> dict[str, float]:
    """``tdwgym compare``'s held-out metrics of ``act`` on ``episodes`` episodes of ``env`` (seeds 70_000 + i),
    each ``steps`` long (default: the env's episode length)."""
    from tdwgym.agents.comparison import episode_metrics
    from tdwgym.agents.training import TrainConfig

    env_id, default_steps = ENVS[env]
    steps = steps or default_steps
    cfg = TrainConfig(env_id=env_id)
    seeds = [SEED_OFFSET + i for i in range(episodes)]
    metrics, _ = episode_metrics(act, cfg, seeds, steps, context_frames=2)
    return metrics


def _row(name: str, probs: np.ndarray, metrics: dict[str, float]) -> dict:
    return {
        "policy": name,
        "probs": [round(float(p), 4) for p in probs],
        "entropy_bits": float(-(probs[probs > 0] * np.log2(probs[probs > 0])).sum()),
        **metrics,
    }


def table(rows: list[dict], env: str, episodes: int, alpha: float, steps: int | None = None, command: str = "") -> str:
    from tdwgym.envs.base import DISCRETE_ACTIONS

    env_id, default_steps = ENVS[env]
    steps = steps or default_steps
    lopsided = [r["pushes_moved_per_1k"] for r in rows if r["policy"].startswith("lopsided")]
    uniform = next(r for r in rows if r["policy"] == "uniform")
    lines = [
        f"# Lopsided action distributions against the uniform random agent ({env_id})",
        "",
        f"Written by `{command}` ({episodes} held-out episodes of {steps} steps per policy unless the table says"
        f" otherwise, scene seeds {SEED_OFFSET}+i, level 1, 20-degree push cone; lopsided distributions drawn from a"
        f" Dirichlet({alpha:g})).",
        "",
        "| policy | held-out steps | pushes that moved an object per 1k | hits per 1k | object in view |"
        " entropy, bits | most likely actions |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        probs = np.asarray(r["probs"])
        top = ", ".join(f"{DISCRETE_ACTIONS[i]} {probs[i]:.2f}" for i in np.argsort(-probs)[:3])
        lines.append(
            f"| {r['policy']} | {r['eval_steps']} | {r['pushes_moved_per_1k']:.2f} | {r['pushes_hit_per_1k']:.2f} |"
            f" {r['object_in_view_frac']:.2f} | {r['entropy_bits']:.2f} | {top} |"
        )
    if lopsided:
        lines += [
            "",
            f"Lopsided policies: mean {np.mean(lopsided):.2f}, median {np.median(lopsided):.2f} pushes that moved an"
            f" object per 1k ({min(lopsided):.2f}-{max(lopsided):.2f}), against the uniform policy's"
            f" {uniform['pushes_moved_per_1k']:.2f}; {sum(x > uniform['pushes_moved_per_1k'] for x in lopsided)}"
            f" of {len(lopsided)} above it.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="occlusion")
    parser.add_argument("--policies", type=int, default=24, help="lopsided distributions (default 24)")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration (default 0.5)")
    parser.add_argument("--episodes", type=int, default=10, help="held-out episodes per policy (default 10)")
    parser.add_argument("--uniform-episodes", type=int, default=0, help="for the uniform policy (default: --episodes)")
    parser.add_argument(
        "--agent-episodes", type=int, default=0, help="for each agent and its matched policy (default: --episodes)"
    )
    parser.add_argument("--steps", type=int, default=0, help="steps per episode (default: the env's episode length)")
    parser.add_argument("--agents", nargs="*", default=[], help="trained agents: run folders or PPO .zip files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--doc", default=dated_page("action-bias"), help="markdown table, a dated results page ('' for none)"
    )
    parser.add_argument("--json", default="", help="every row as JSON ('' for none)")
    args = parser.parse_args(argv)
    sizes = (args.policies, args.uniform_episodes, args.agent_episodes, args.steps)
    if min(sizes) < 0 or args.episodes < 1 or args.alpha <= 0:
        parser.error(
            "--policies, --uniform-episodes, --agent-episodes and --steps must be >= 0, --episodes >= 1 and --alpha"
            f" > 0; got {', '.join(map(str, sizes))}, {args.episodes}, {args.alpha}"
        )
    for path in args.agents:
        if not Path(path).exists():
            parser.error(f"--agents: no such run folder or file: {path}")
    from tdwgym.agents.device import configure_torch_threads

    configure_torch_threads()
    n = 10
    rows = []
    start = time.perf_counter()

    def run(name: str, act: Callable, probs: np.ndarray, episodes: int = args.episodes) -> None:
        rows.append(_row(name, probs, measure(act, args.env, episodes, args.steps)))
        print(
            f"{name}: {rows[-1]['pushes_moved_per_1k']:.2f} pushes that moved an object per 1k"
            f" ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    uniform = np.full(n, 1.0 / n)
    run("uniform", _categorical(uniform, args.seed), uniform, args.uniform_episodes or args.episodes)
    rng = np.random.default_rng(args.seed)
    for k in range(args.policies):
        probs = rng.dirichlet(np.full(n, args.alpha))
        run(f"lopsided {k}", _categorical(probs, args.seed + 1 + k), probs)
    for k, path in enumerate(args.agents):
        counts = np.zeros(n, dtype=np.int64)
        episodes = args.agent_episodes or args.episodes
        metrics = measure(_agent(path, args.seed, counts), args.env, episodes, args.steps)
        share = counts / max(counts.sum(), 1)
        rows.append(_row(f"agent {k}: {path}", share, metrics))
        print(f"agent {k}: {metrics['pushes_moved_per_1k']:.2f} per 1k", flush=True)
        run(f"matched {k}", _categorical(share, args.seed + 1000 + k), share, episodes)
    import sys

    command = " ".join(["python scripts/action_bias.py", *(sys.argv[1:] if argv is None else argv)])
    text = table(rows, args.env, args.episodes, args.alpha, args.steps, command)
    print(text)
    if args.doc:
        doc = Path(args.doc)
        doc.parent.mkdir(parents=True, exist_ok=True)
        tmp = doc.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
