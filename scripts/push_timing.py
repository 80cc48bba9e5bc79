"""When in a held-out episode do agents push? Push rate and objects in view per stretch of the episode (issue 14).

    python scripts/push_timing.py --agents runs/cur_s0 runs/cur_s1          # random and two trained agents
    python scripts/push_timing.py --episodes 5 --bin 100 --doc ''            # random only, printed

The curiosity agent's held-out push rate is an average over whole 500-step Playroom episodes. This script splits it
by time: for the uniform random agent (``tdwgym compare``'s) and each trained agent (a ``tdwgym train`` run folder or
a PPO ``.zip``, acting as ``tdwgym compare`` evaluates it: sampled, not greedy), on the same held-out episodes (scene
seeds ``80_000 + i``, used by no other script's draw), it counts the pushes that moved an object and the steps with
an object in view in each ``--bin`` steps of the episode. It prints and writes the table (``--doc``, default
docs/results/DATE-push-timing.md) and a JSON of every row (``--json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ENV_ID = "TDWRoom-Playroom-v0"
SEED_OFFSET = 80_000
ROOT = Path(__file__).resolve().parents[1]


def dated_page(name: str) -> str:
    """The default ``--doc``: today's page of this measurement under docs/results/ (dates in UTC)."""
    return f"docs/results/{datetime.now(timezone.utc).date().isoformat()}-{name}.md"


def _random(n_actions: int, seed: int) -> Callable[[np.ndarray], int]:
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(n_actions))


def _agent(path: str, seed: int) -> Callable[[np.ndarray], int]:
    """A trained agent acting as ``tdwgym compare`` evaluates it (actions sampled from the policy)."""
    import torch

    from tdwgym.agents.sb3_agents import latest_agent, load_sb3_model

    zip_path = latest_agent(path) if Path(path).is_dir() else Path(path)
    if zip_path is None:
        raise SystemExit(f"--agents: {path} holds no agent.zip")
    model = load_sb3_model(zip_path, device="cpu")
    torch.manual_seed(seed)
    return lambda obs: int(model.predict(obs, deterministic=False)[0])


def measure(
    act: Callable[[np.ndarray], int], env_kwargs: dict, episodes: int, steps: int, bin_steps: int
) -> dict[str, list]:
    """Per bin of ``bin_steps`` steps over ``episodes`` episodes of ``steps`` steps: pushes that moved an object per
    1,000 steps, the share of steps with an object in view, and the steps counted."""
    import gymnasium as gym

    import tdwgym  # noqa: F401 - registers the ids

    n_bins = -(-steps // bin_steps)
    moved, in_view, counted = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for i in range(episodes):
        env = gym.make(ENV_ID, **env_kwargs)
        obs, _ = env.reset(seed=SEED_OFFSET + i)
        for t in range(steps):
            obs, _, terminated, truncated, info = env.step(act(obs))
            b = t // bin_steps
            counted[b] += 1
            moved[b] += bool((info.get("push") or {}).get("moved"))
            in_view[b] += int(info.get("objects_in_view", 0) or 0) > 0
            if terminated or truncated:
                break
        env.close()
    seen = np.maximum(counted, 1)
    return {
        "pushes_moved_per_1k": [round(float(x), 2) for x in 1000.0 * moved / seen],
        "object_in_view_frac": [round(float(x), 3) for x in in_view / seen],
        "steps": [int(x) for x in counted],
        "pushes_moved_per_1k_all": round(1000.0 * float(moved.sum()) / max(float(counted.sum()), 1.0), 2),
    }


def table(rows: list[dict], bin_steps: int, episodes: int, env_kwargs: dict, command: str) -> str:
    n_bins = len(rows[0]["steps"])
    heads = [f"{b * bin_steps}-{(b + 1) * bin_steps - 1}" for b in range(n_bins)]
    lines = [
        f"# When in a held-out episode the agents push ({ENV_ID})",
        "",
        f"Written by `{command}`: {episodes} held-out episodes per policy (scene seeds {SEED_OFFSET}+i), env kwargs"
        f" `{json.dumps(env_kwargs)}`; agents act as `tdwgym compare` evaluates them (sampled). Each cell is one"
        f" stretch of {bin_steps} steps of the episode.",
        "",
        "Pushes that moved an object per 1,000 steps:",
        "",
        "| policy | whole episode | " + " | ".join(heads) + " |",
        "|---|---:|" + "---:|" * n_bins,
    ]
    for r in rows:
        cells = " | ".join(f"{x:.1f}" for x in r["pushes_moved_per_1k"])
        lines.append(f"| {r['policy']} | {r['pushes_moved_per_1k_all']:.1f} | {cells} |")
    lines += ["", "Share of steps with an object in view:", "", "| policy | " + " | ".join(heads) + " |"]
    lines.append("|---|" + "---:|" * n_bins)
    for r in rows:
        lines.append(f"| {r['policy']} | " + " | ".join(f"{x:.2f}" for x in r["object_in_view_frac"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tdwgym.agents.training import DEFAULT_ENV_KWARGS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", nargs="*", default=[], help="trained agents: run folders or PPO .zip files")
    parser.add_argument("--episodes", type=int, default=20, help="held-out episodes per policy (default 20)")
    parser.add_argument("--steps", type=int, default=500, help="steps per episode (default 500, Playroom's)")
    parser.add_argument("--bin", type=int, default=50, help="steps per stretch of the episode (default 50)")
    parser.add_argument("--env-kwargs", default=json.dumps(DEFAULT_ENV_KWARGS), help="gym.make kwargs (JSON)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random agent's and the policies' draws")
    parser.add_argument(
        "--doc", default=dated_page("push-timing"), help="markdown table, a dated results page ('' for none)"
    )
    parser.add_argument("--json", default="", help="every row as JSON ('' for none)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.steps < 1 or not 1 <= args.bin <= args.steps:
        parser.error(
            f"--episodes and --steps must be >= 1 and --bin in [1, --steps]; got {args.episodes}, {args.steps},"
            f" {args.bin}"
        )
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as exc:
        parser.error(f"--env-kwargs is not JSON ({exc}): {args.env_kwargs!r}")
    for path in args.agents:
        if not Path(path).exists():
            parser.error(f"--agents: no such run folder or file: {path}")
    from tdwgym.envs.base import DISCRETE_ACTIONS

    policies = [("random", _random(len(DISCRETE_ACTIONS), args.seed))]
    policies += [(f"agent {i}: {path}", _agent(path, args.seed)) for i, path in enumerate(args.agents)]
    rows = []
    for name, act in policies:
        rows.append({"policy": name, **measure(act, env_kwargs, args.episodes, args.steps, args.bin)})
        print(f"{name}: {rows[-1]['pushes_moved_per_1k_all']:.1f} pushes that moved an object per 1k", file=sys.stderr)
    command = "python scripts/push_timing.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = table(rows, args.bin, args.episodes, env_kwargs, command.strip())
    print(text)
    if args.doc:
        doc = Path(args.doc) if Path(args.doc).is_absolute() else ROOT / args.doc
        doc.write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
