"""Behaviour metrics and the curiosity-vs-baselines comparison.

Four agents get the same step budget and seeds:

* ``random``: uniform random actions;
* ``ppo``: PPO with no intrinsic reward (the environment's reward only);
* ``curiosity``: PPO with the curiosity reward;
* ``oracle``: PPO rewarded :data:`ORACLE_PUSH_REWARD` for every push that moves an object (the env's
  ``push_reward``), no intrinsic reward. It is told exactly what the behaviour metric counts, so it shows how many
  pushes a PPO learner reaches within the budget at all: the ceiling the curiosity agent is measured against.

Every agent carries the same kind of world model, trained online on its own experience (for the two baselines
with ``int_coef=0``, so it never shapes their behaviour). After training, each agent acts in held-out episodes
(seeds never used in training); we measure pushes that moved an object per 1,000 steps and the fraction of
frames with an object in view, and pool the held-out transitions of all agents to measure each world model's
prediction error next to a copy-last-frame baseline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack

from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.device import configure_torch_threads
from tdwgym.agents.models import Transitions, WorldModel, resize_frames
from tdwgym.agents.training import (
    DEFAULT_ENV_KWARGS,
    TrainConfig,
    _make_env_fn,
    check_policy_input,
    make_vec_env,
    train,
)
from tdwgym.util.files import read_json

__all__ = [
    "CompareConfig",
    "compare",
    "episode_metrics",
    "format_table",
    "heldout_error",
    "merge_results",
    "plot_results",
    "write_results",
]

AGENTS = ("random", "ppo", "curiosity", "oracle")
COMPARE_ENV_KWARGS: dict[str, Any] = DEFAULT_ENV_KWARGS
"""The comparison's default env kwargs, those of ``tdwgym train``: level 1 (4 to 6 objects) and a 20-degree push
cone. With the env's default cone of 0 a push must meet an object on the view axis, which 10-degree turns rarely line
up, so pushes are too rare for even the push-rewarded oracle to learn within the usual budgets; a 20-degree cone
makes them common enough to learn (the measured push rates are in docs/agents.md)."""
ORACLE_PUSH_REWARD = 1.0
"""Reward of the ``oracle`` agent per push that moved an object."""


@dataclass
class CompareConfig:
    """Settings of :func:`compare`."""

    total_steps: int = 20_000
    """Training steps per agent and seed."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Training seeds (held-out episodes use seeds 10_000 + 100 * seed + i)."""
    env_id: str = "TDWRoom-Playroom-v0"
    """Environment of every agent, in training and on held-out episodes. Playroom: objects at rest within reach of
    a push, the main source of motion being the agent (in TDWRoom-Occlusion-v0 the objects start behind the
    occluder, out of a push's reach, and no agent pushes anything)."""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: dict(COMPARE_ENV_KWARGS))
    """Its ``gym.make`` keyword arguments (:data:`COMPARE_ENV_KWARGS`)."""
    curiosity: str = "pixel"
    """Curiosity variant of the curiosity agent (and world-model kind of all agents)."""
    eval_episodes: int = 5
    """Held-out episodes per agent and seed."""
    eval_steps: int = 500
    """Steps per held-out episode (Playroom episodes end at 500). Pushes that move an object are rare events (about
    one in 1,000 steps for a random agent), so fewer held-out steps measure mostly noise."""
    out: str = "runs/compare"
    """Output folder (one run folder per agent and seed, results.json, results.md, pushes.png, training.png)."""
    agents: list[str] = field(default_factory=lambda: list(AGENTS))
    """Which agents to run."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`TrainConfig` fields for every agent (n_envs, action_baseline, ...)."""
    progress_bar: bool = True
    """Show a tqdm progress bar with the ETA on stderr (training steps and held-out steps of every agent and seed)."""


def _collect(
    act: Callable[[np.ndarray], np.ndarray],
    cfg: TrainConfig,
    seed: int,
    steps: int,
    context_frames: int,
) -> tuple[dict[str, float], Transitions]:
    """Run one episode of ``steps`` steps; return counts and its transitions (k context frames each)."""
    venv: VecEnv = DummyVecEnv([_make_env_fn(cfg.env_id, cfg.env_kwargs)])
    venv.seed(seed)
    if cfg.frame_stack > 1:
        venv = VecFrameStack(venv, cfg.frame_stack)
    obs = venv.reset()
    frame_c = venv.observation_space.shape[-1] // max(cfg.frame_stack, 1)
    frames = [obs[0][..., -frame_c:].transpose(2, 0, 1)]
    actions, moved, hit, in_view, n = [], 0, 0, 0, 0
    for _ in range(steps):
        action = act(obs)
        obs, _, done, infos = venv.step(action)
        info = infos[0]
        push = info.get("push") or {}
        moved += bool(push.get("moved"))
        hit += bool(push.get("hit"))
        in_view += int(info.get("objects_in_view", 0) or 0) > 0
        n += 1
        last = info["terminal_observation"] if done[0] else obs[0]
        frames.append(np.asarray(last)[..., -frame_c:].transpose(2, 0, 1))
        actions.append(actions_to_vectors(np.asarray(action), venv.action_space)[0])
        if done[0]:
            break
    venv.close()
    frames_arr = np.stack(frames)
    k = context_frames or 2  # the frame-pair models' default
    padded = np.concatenate([np.repeat(frames_arr[:1], k - 1, axis=0), frames_arr]) if k > 1 else frames_arr
    ctx = np.stack([padded[t : t + k] for t in range(n)])
    batch = Transitions(torch.from_numpy(ctx), torch.from_numpy(np.stack(actions)), torch.from_numpy(frames_arr[1:]))
    return {"steps": n, "moved": moved, "hit": hit, "in_view": in_view}, batch


def episode_metrics(
    act: Callable[[np.ndarray], np.ndarray],
    cfg: TrainConfig,
    seeds: list[int],
    steps: int,
    context_frames: int,
    on_episode: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[Transitions]]:
    """Pushes-that-moved per 1k steps, hits per 1k and object-in-view fraction over held-out episodes
    (``on_episode`` is called after each episode)."""
    total = {"steps": 0, "moved": 0, "hit": 0, "in_view": 0}
    batches = []
    for s in seeds:
        counts, batch = _collect(act, cfg, s, steps, context_frames)
        batches.append(batch)
        if on_episode is not None:
            on_episode()
        for key in total:
            total[key] += counts[key]
    n = max(total["steps"], 1)
    return {
        "pushes_moved_per_1k": 1000.0 * total["moved"] / n,
        "pushes_hit_per_1k": 1000.0 * total["hit"] / n,
        "object_in_view_frac": total["in_view"] / n,
        "eval_steps": total["steps"],
    }, batches


@torch.no_grad()
def heldout_error(
    model: WorldModel | None, batches: list[Transitions], chunk: int = 64, size: tuple[int, int] | None = None
) -> float:
    """Mean per-transition loss of ``model`` on held-out transitions; ``None`` scores the copy-last-frame baseline
    (with the pixel model's 0.5 * L1 + 0.5 * L2 on [0, 1] frames).

    Frames are area-resized to the model's frame size (for the baseline: to ``size``, when given), as the
    curiosity wrapper resizes them in training. A model that reads other passes than RGB (``objects``) has no
    error on these RGB transitions: NaN."""
    losses = []
    if model is not None and any(p != "rgb" for p in model.passes):
        return float("nan")
    if model is not None:
        size = tuple(model.frame_shape[1:])
    for batch in batches:
        for i in range(0, len(batch), chunk):
            ctx, nxt = batch.context[i : i + chunk], batch.next_frame[i : i + chunk]
            if size is not None:
                ctx, nxt = resize_frames(ctx, size), resize_frames(nxt, size)
            part = Transitions(ctx, batch.action[i : i + chunk], nxt)
            if model is None:
                diff = part.context[:, -1].float() / 255 - part.next_frame.float() / 255
                losses.append((0.5 * diff.abs() + 0.5 * diff.pow(2)).flatten(1).mean(1))
            else:
                losses.append(model.evaluate(part)[1].cpu())
    return float(torch.cat(losses).mean())


def _train_random(cfg: TrainConfig) -> tuple[WorldModel, dict[str, float], float, dict[str, list[float]]]:
    """Random actions for the budget, through a curiosity wrapper with int_coef=0 (trains the world model).

    Returns the world model, the training means, the wall time and the training curve (pushes that moved an object
    per 1k steps and object-in-view fraction per window of ``n_steps * n_envs`` steps, as PPO's rollouts)."""
    venv, curiosity = make_vec_env(dataclasses.replace(cfg, int_coef=0.0))
    rng = np.random.default_rng(cfg.seed)
    venv.action_space.seed(int(rng.integers(2**31)))
    venv.reset()
    steps = moved = in_view = 0
    window = max(cfg.n_steps * venv.num_envs, 1)
    curve: dict[str, list[float]] = {"step": [], "pushes_moved_per_1k": [], "object_in_view_frac": []}
    w_moved = w_in_view = w_steps = 0
    start = time.perf_counter()
    while steps < cfg.total_steps:
        actions = np.array([venv.action_space.sample() for _ in range(venv.num_envs)])
        _, _, _, infos = venv.step(actions)
        for info in infos:
            m = bool((info.get("push") or {}).get("moved"))
            v = int(info.get("objects_in_view", 0) or 0) > 0
            moved, in_view, w_moved, w_in_view = moved + m, in_view + v, w_moved + m, w_in_view + v
        steps += venv.num_envs
        w_steps += venv.num_envs
        if w_steps >= window or steps >= cfg.total_steps:
            curve["step"].append(steps)
            curve["pushes_moved_per_1k"].append(1000 * w_moved / w_steps)
            curve["object_in_view_frac"].append(w_in_view / w_steps)
            w_moved = w_in_view = w_steps = 0
    wall = time.perf_counter() - start
    venv.close()
    return (
        curiosity.world_model,
        {"train_pushes_moved_per_1k": 1000 * moved / steps, "train_object_in_view_frac": in_view / steps},
        wall,
        curve,
    )


def _training_curve(rows: list[dict]) -> dict[str, list[float]]:
    """Pushes that moved an object per 1k steps and object-in-view fraction over training, from ``metrics.jsonl``."""
    rows = [r for r in rows if "step" in r and "rollout/pushes_moved_per_1k" in r]
    return {
        "step": [r["step"] for r in rows],
        "pushes_moved_per_1k": [r["rollout/pushes_moved_per_1k"] for r in rows],
        "object_in_view_frac": [r.get("rollout/object_in_view_frac", float("nan")) for r in rows],
    }


def compare(cfg: CompareConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train and evaluate every agent for every seed; write ``results.json``, ``results.md`` (the markdown table the
    results pages under docs/results/ paste), ``pushes.png`` and ``training.png`` to ``cfg.out``.

    ``progress`` receives one line per finished phase (default: written above the progress bar, or printed when
    ``cfg.progress_bar`` is off)."""
    from tqdm.auto import tqdm

    if any(agent != "random" for agent in cfg.agents):  # a PPO agent trains: before anything is written
        check_policy_input(cfg.env_kwargs)
    per_agent = cfg.total_steps + cfg.eval_episodes * cfg.eval_steps
    bar = tqdm(
        total=len(cfg.seeds) * len(cfg.agents) * per_agent,
        unit="step",
        desc="compare",
        disable=not cfg.progress_bar,
        dynamic_ncols=True,
    )
    if progress is None:
        progress = bar.write if cfg.progress_bar else print
    try:
        return _compare(cfg, progress, bar)
    finally:
        bar.close()


def _compare(cfg: CompareConfig, progress: Callable[[str], None], bar: Any) -> dict[str, Any]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    configure_torch_threads(cfg.train_overrides.get("torch_threads"))
    reference = TrainConfig(**{"env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs, **cfg.train_overrides})
    results: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "train_config": dataclasses.asdict(reference),
        "runs": [],
    }
    for seed in cfg.seeds:
        heldout_seeds = [10_000 + 100 * seed + i for i in range(cfg.eval_episodes)]
        models: dict[str, WorldModel] = {}
        pool: list[Transitions] = []
        rows: dict[str, dict[str, float]] = {}
        curves: dict[str, dict[str, list[float]]] = {}
        for agent in cfg.agents:
            bar.set_description(f"compare seed {seed} {agent}")
            settings = {
                "env_id": cfg.env_id,
                "env_kwargs": dict(cfg.env_kwargs),
                "curiosity": cfg.curiosity,
                "seed": seed,
                "total_steps": cfg.total_steps,
                "run_dir": str(out / f"{agent}_s{seed}"),
                "video_steps": 0,
                "progress_bar": False,
                "checkpoint_every": 10**12,
                "overwrite": True,  # the comparison owns its output folder
            }
            base = TrainConfig(**{**settings, **cfg.train_overrides})
            progress(f"[compare] seed {seed}: training {agent} for {cfg.total_steps} steps")
            if agent == "random":
                wm, row, wall, curves[agent] = _train_random(base)
                env = _make_env_fn(base.env_id, base.env_kwargs)()
                space = env.action_space
                env.close()
                space.seed(seed + 1)
                act = lambda obs, sp=space: np.array([sp.sample()])  # noqa: E731
            else:
                tcfg = dataclasses.replace(base, int_coef=0.0 if agent in ("ppo", "oracle") else base.int_coef)
                if agent == "oracle":
                    rewarded = {**base.env_kwargs, "push_reward": ORACLE_PUSH_REWARD}
                    tcfg = dataclasses.replace(tcfg, env_kwargs=rewarded, ext_coef=1.0)
                res = train(tcfg)
                wm, wall = res.curiosity.world_model, res.wall_time_s
                metrics = [r for r in _read_jsonl(Path(tcfg.run_dir) / "metrics.jsonl")]
                row = _training_means(metrics)
                curves[agent] = _training_curve(metrics)
                act = lambda obs, m=res.model: m.predict(obs, deterministic=False)[0]  # noqa: E731
            bar.update(cfg.total_steps)
            ev, batches = episode_metrics(
                act,
                base,
                heldout_seeds,
                cfg.eval_steps,
                base.context_frames,
                on_episode=lambda: bar.update(cfg.eval_steps),
            )
            row.update(ev)
            row["train_wall_s"] = wall
            rows[agent], models[agent] = row, wm
            pool.extend(batches)
            progress(f"[compare] seed {seed}: {agent}: {json.dumps({k: round(v, 4) for k, v in row.items()})}")
        for agent, wm in models.items():
            rows[agent]["heldout_wm_error"] = heldout_error(wm, pool)
        sizes = {tuple(wm.frame_shape[1:]) for wm in models.values() if all(p == "rgb" for p in wm.passes)}
        copy_last = heldout_error(None, pool, size=sizes.pop() if len(sizes) == 1 else None)
        results["runs"].append(
            {
                "seed": seed,
                "agents": rows,
                "copy_last_frame_error": copy_last,
                "heldout_seeds": heldout_seeds,
                "heldout_transitions": sum(len(b) for b in pool),
                "curves": curves,
            }
        )
    results["summary"] = _summarise(results["runs"], cfg.agents)
    write_results(results, out)
    return results


def plot_results(results: dict[str, Any], out: str | os.PathLike) -> dict[str, Path]:
    """Write ``pushes.png`` (held-out pushes that moved an object per 1k steps per agent: mean over seeds with the
    standard deviation as error bars, each seed a dot) and ``training.png`` (training curves per agent: pushes per
    1k steps over training steps, mean over seeds with a band of one standard deviation) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    cfg, runs = results["config"], results["runs"]
    agents = list(cfg["agents"])
    title = f"{cfg['env_id']}, {cfg['total_steps']} steps, seeds {cfg['seeds']}"
    paths: dict[str, Path] = {}

    fig, ax = plt.subplots(figsize=(1.4 * len(agents) + 2.5, 4))
    for i, agent in enumerate(agents):
        vals = np.array([r["agents"][agent]["pushes_moved_per_1k"] for r in runs if agent in r["agents"]], float)
        ax.bar(i, vals.mean(), yerr=vals.std(), capsize=6, color=f"C{i}", alpha=0.8)
        ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(agents)), agents)
    ax.set_ylabel("pushes moving an object / 1k held-out steps")
    ax.set_title(title + f"\nmean ± std over seeds, {cfg['eval_episodes']} held-out episodes each", fontsize=9)
    fig.tight_layout()
    paths["pushes"] = out / "pushes.png"
    fig.savefig(paths["pushes"], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for i, agent in enumerate(agents):
        seeds_curves = [r.get("curves", {}).get(agent) for r in runs]
        seeds_curves = [c for c in seeds_curves if c and c["step"]]
        if not seeds_curves:
            continue
        n = min(len(c["step"]) for c in seeds_curves)
        step = np.asarray(seeds_curves[0]["step"][:n], dtype=float)
        for ax, key, scale in ((axes[0], "pushes_moved_per_1k", 1.0), (axes[1], "object_in_view_frac", 100.0)):
            ys = scale * np.array([c[key][:n] for c in seeds_curves], dtype=float)
            mean, std = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0)
            ax.plot(step, mean, color=f"C{i}", label=agent)
            ax.fill_between(step, mean - std, mean + std, color=f"C{i}", alpha=0.2)
    axes[0].set_ylabel("pushes moving an object / 1k steps")
    axes[1].set_ylabel("% frames with an object in view")
    axes[1].set_xlabel("training steps")
    axes[0].legend(loc="upper left")
    fig.suptitle(f"Training curves ({title}; mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    paths["training"] = out / "training.png"
    fig.savefig(paths["training"], dpi=100)
    plt.close(fig)
    return paths


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} is damaged: line {n} is not valid JSON ({exc.msg})") from None
    return rows


def _training_means(rows: list[dict]) -> dict[str, float]:
    def mean(key: str) -> float:
        vals = [r[key] for r in rows if key in r]
        return float(np.mean(vals)) if vals else float("nan")

    return {
        "train_pushes_moved_per_1k": mean("rollout/pushes_moved_per_1k"),
        "train_object_in_view_frac": mean("rollout/object_in_view_frac"),
    }


def _summarise(runs: list[dict], agents: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and standard deviation over the seeds of each agent (over the runs that hold the agent)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for agent in agents:
        held = [r["agents"][agent] for r in runs if agent in r["agents"]]
        summary[agent] = {}
        for key in held[0] if held else {}:
            vals = np.array([row[key] for row in held if key in row], dtype=float)
            summary[agent][key] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": len(vals)}
    summary["copy_last_frame"] = {
        "heldout_wm_error": {
            "mean": float(np.mean([r["copy_last_frame_error"] for r in runs])),
            "std": float(np.std([r["copy_last_frame_error"] for r in runs])),
        }
    }
    return summary


MERGE_KEYS = ("env_id", "env_kwargs", "total_steps", "curiosity", "eval_episodes", "eval_steps")
"""Config fields that must agree between comparisons merged by :func:`merge_results`."""


def merge_results(paths: list[str | os.PathLike]) -> dict[str, Any]:
    """One result from the ``results.json`` of several comparisons of the same settings (e.g. agents or seeds run
    separately): the runs of each seed are joined, agents in order of first appearance.

    A seed's ``heldout_wm_error`` values come from the pool of held-out transitions of the comparison that ran the
    agent; the copy-last-frame error of a seed is the mean over the comparisons that ran it.

    Raises:
        ValueError: The comparisons differ in a field of :data:`MERGE_KEYS`, an agent and seed appear twice, or a
            folder holds no ``results.json``.
    """
    loaded = []
    for p in paths:
        f = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        if not f.is_file():
            raise ValueError(f"{p}: no results.json (give the --out folder of a finished tdwgym compare)")
        loaded.append(read_json(f, "run that comparison again, or leave its folder out of --merge"))
    first = loaded[0]["config"]
    for res, p in zip(loaded[1:], paths[1:], strict=True):
        for key in MERGE_KEYS:
            if res["config"].get(key) != first.get(key):
                raise ValueError(
                    f"{p}: {key}={res['config'].get(key)!r} differs from {paths[0]}'s {first.get(key)!r}; "
                    f"only comparisons with the same {', '.join(MERGE_KEYS)} can be merged"
                )
    agents: list[str] = []
    by_seed: dict[int, dict[str, Any]] = {}
    copy_last: dict[int, list[float]] = {}
    for res, p in zip(loaded, paths, strict=True):
        for run in res["runs"]:
            seed = run["seed"]
            merged = by_seed.setdefault(
                seed,
                {"seed": seed, "agents": {}, "heldout_seeds": run["heldout_seeds"], "curves": {}, "sources": []},
            )
            for agent, row in run["agents"].items():
                if agent in merged["agents"]:
                    raise ValueError(f"{p}: agent {agent!r} seed {seed} appears in more than one comparison")
                merged["agents"][agent] = row
                if agent in run.get("curves", {}):
                    merged["curves"][agent] = run["curves"][agent]
                if agent not in agents:
                    agents.append(agent)
            merged["sources"].append(str(p))
            copy_last.setdefault(seed, []).append(run["copy_last_frame_error"])
    runs = []
    for seed in sorted(by_seed):
        by_seed[seed]["copy_last_frame_error"] = float(np.mean(copy_last[seed]))
        runs.append(by_seed[seed])
    config = {**first, "agents": agents, "seeds": sorted(by_seed), "merged_from": [str(p) for p in paths]}
    results = {"config": config, "train_config": loaded[0].get("train_config", {}), "runs": runs}
    results["summary"] = _summarise(runs, agents)
    return results


def write_results(results: dict[str, Any], out: str | os.PathLike) -> None:
    """Write ``results.json``, ``results.md`` (:func:`format_table`) and the plots (:func:`plot_results`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(format_table(results) + "\n")
    plot_results(results, out)


def format_table(results: dict[str, Any]) -> str:
    """Markdown table of the summary (mean ± std over seeds; ``n=`` marks an agent run on fewer of the seeds),
    the text ``results.md`` holds and the results pages paste."""
    cfg = results["config"]
    summ = results["summary"]
    cols = [
        ("pushes_moved_per_1k", "pushes moving an object / 1k steps (held-out)"),
        ("object_in_view_frac", "frames with an object in view (held-out)"),
        ("train_pushes_moved_per_1k", "pushes moving an object / 1k steps (training)"),
        ("heldout_wm_error", "world-model error on held-out episodes"),
    ]
    tcfg = results.get("train_config", {})
    env = f"`{cfg.get('env_id', tcfg.get('env_id'))}` with env kwargs `{json.dumps(cfg.get('env_kwargs', {}))}`"
    curiosity = f"curiosity `{cfg['curiosity']}`"
    if tcfg:
        curiosity += (
            f" (action baseline `{tcfg['action_baseline']}`, z-score threshold {tcfg.get('zscore_threshold')}, "
            f"warp {tcfg['wm_warp']}, fovea {tcfg.get('wm_fovea')}, world model at {tcfg.get('wm_resolution')} px)"
        )
    lines = [
        f"Env {env}. Budget {cfg['total_steps']} steps per agent, seeds {cfg['seeds']}, {curiosity}, "
        f"{cfg['eval_episodes']} held-out episodes x {cfg['eval_steps']} steps per agent and seed."
        + (f" Merged from {', '.join(f'`{p}`' for p in cfg['merged_from'])}." if cfg.get("merged_from") else ""),
        "",
        "| agent | " + " | ".join(c[1] for c in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for agent in [*cfg["agents"], "copy_last_frame"]:
        cells = []
        for key, _ in cols:
            v = summ.get(agent, {}).get(key)
            n = "" if v is None or v.get("n", len(cfg["seeds"])) == len(cfg["seeds"]) else f" (n={v['n']})"
            cells.append("" if v is None else f"{v['mean']:.4g} ± {v['std']:.2g}{n}")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
