"""The comparison's report: the summary over seeds, ``results.json``, ``results.md`` (the markdown table), the plots
``pushes.png`` and ``training.png``, and the merge of comparisons run separately (``tdwgym compare --merge``).

Plain data in, files out: nothing here trains or loads a model (:mod:`tdwgym.agents.comparison` does).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.util.files import read_json

__all__ = ["MERGE_KEYS", "comparable", "format_table", "merge_results", "plot_results", "summarise", "write_results"]


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


def summarise(runs: list[dict], agents: list[str]) -> dict[str, dict[str, dict[str, float]]]:
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
    results["summary"] = summarise(runs, agents)
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


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of a comparison's results without what differs from run to run by design (the output folder, the
    progress setting and the wall times): two runs of the same settings give equal ``comparable`` results, locally
    or on Ray."""
    results = json.loads(json.dumps(results))
    results["config"].pop("out")
    results["config"].pop("progress_bar")
    for run in results["runs"]:
        for row in run["agents"].values():
            row.pop("train_wall_s")
    for stats in results["summary"].values():
        stats.pop("train_wall_s", None)
    return results
