"""Sample efficiency at 30,000 steps: random, plain PPO and curiosity agents on two envs, over seeds (issue 14).

    nice -n 15 python scripts/sample_efficiency.py                  # everything; resumes where it stopped
    python scripts/sample_efficiency.py --report-only               # rewrite the table from the finished folders
    python scripts/sample_efficiency.py --out runs/new --baselines-from runs/old   # a new curiosity reward only

For each env and seed, in its own folder ``OUT/<env>_s<seed>/``, each step skipped when its file exists (so an
interrupted run resumes at the next unfinished step, and a finished env and seed costs nothing):

1. ``compare/results.json``: ``tdwgym compare``'s Python API trains plain PPO and the curiosity agent for
   ``--total-steps`` with the defaults of ``tdwgym train`` and measures them on ``--eval-episodes`` held-out
   episodes (scene seeds ``10_000 + 100 * seed + i``, never used in training).
2. ``random.json``: the random agent on the same held-out episodes, with compare's own action stream (its push rate
   does not depend on a training budget, so it is not trained).
3. ``draw2.json``: a second draw: the same three agents on as many other held-out episodes (scene seeds
   ``50_000 + 100 * seed + i``) with other action draws, to check that the conclusion does not hang on the episodes.

With ``--baselines-from OUT``, an earlier run's random and plain PPO results are reused for each env and seed it
finished, provided only the curiosity reward's settings differ (:data:`CURIOSITY_ONLY`): only the curiosity agent
trains, which halves the cost of measuring a new reward.

Then ``--doc`` (a dated page, docs/results/DATE-sample-efficiency.md) gets, per env and draw, each agent's mean push
rate (pushes that moved an object per 1,000 held-out steps) over the finished seeds, its standard deviation, a
bootstrap 95 % confidence interval of the mean (seeds resampled), and the ratios curiosity / random and curiosity /
PPO (ratio of the means, bootstrap 95 % interval with the seeds resampled in pairs), against the targets (3x random,
2x PPO). The settings are ``tdwgym train``'s defaults; those were chosen on seed 0 of Playroom (docs/agents.md), so
the table also gives the ratios without seed 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tdwgym.agents.agent_zip import load_agent
from tdwgym.agents.comparison import CompareConfig, compare, episode_metrics
from tdwgym.agents.curiosity import REWARD_VERSION
from tdwgym.agents.device import configure_torch_threads
from tdwgym.agents.rundir import RunDir
from tdwgym.agents.training import DEFAULT_ENV_KWARGS, TrainConfig

ENVS = {
    "playroom": ("TDWRoom-Playroom-v0", 500),
    "occlusion": ("TDWRoom-Occlusion-v0", 300),
}
"""Short name -> (env id, steps per held-out episode: the env's episode length)."""
AGENTS = ("random", "ppo", "curiosity")
TARGETS = {"random": 3.0, "ppo": 2.0}
"""The issue's targets: curiosity at least 3x the random agent's and 2x plain PPO's push rate."""
DRAW2_OFFSET = 50_000
"""First scene seed of the second draw of held-out episodes (the first draw's are 10_000 + 100 * seed + i)."""
DRAW3_OFFSET = 90_000
DRAW3_MAX = 1000
"""The third draw (``--large-draw N``) uses scene seeds ``DRAW3_OFFSET + DRAW3_MAX * seed + i``, ``N <= DRAW3_MAX``."""
BOOTSTRAP = 10_000
"""Bootstrap resamples of the seeds."""
CHOSEN_ON: dict[str, tuple[int, ...]] = {"playroom": (0, 1, 2)}
"""Seeds per env on which screening chose ``tdwgym train``'s defaults (docs/agents.md): PPO's epochs, minibatch and
learning rate on Playroom seed 0, the push gate, raw error and gamma 0.95 on seeds 1 and 2. They are not
independent evidence, so the table also gives the ratios over the other seeds."""
FEW_PUSHES = 10
"""A ratio whose smaller side counts fewer pushes than this (summed over seeds) is flagged as too few to tell."""


def dated_page(name: str) -> str:
    """The default ``--doc``: today's page of this measurement under docs/results/ (dates in UTC)."""
    return f"docs/results/{datetime.now(timezone.utc).date().isoformat()}-{name}.md"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # a finished file or none: a kill never leaves half a result to skip over


def _random_act(env_id: str, env_kwargs: dict[str, Any], action_seed: int):
    """compare's random agent: uniform actions from the env's action space seeded with ``action_seed``."""
    import gymnasium as gym

    import tdwgym  # noqa: F401

    env = gym.make(env_id, **env_kwargs)
    space = env.action_space
    env.close()
    space.seed(action_seed)
    return lambda obs: np.array([space.sample()])


def _heldout(act, base: TrainConfig, seeds: list[int], steps: int) -> dict[str, float]:
    metrics, _ = episode_metrics(act, base, seeds, steps, base.context_frames)
    return metrics


def compare_config(
    name: str, seed: int, args: argparse.Namespace, overrides: dict[str, Any]
) -> tuple[CompareConfig, Path | None]:
    """The comparison of one env and seed (PPO and curiosity, or curiosity alone when the baselines are reused from
    ``--baselines-from``) and the folder the baselines come from."""
    env_id, eval_steps = ENVS[name]
    eval_steps = args.eval_steps or eval_steps
    env_kwargs = dict(DEFAULT_ENV_KWARGS)
    folder = Path(args.out) / f"{name}_s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(**{"env_id": env_id, "env_kwargs": env_kwargs, "seed": seed, **overrides})
    source = baseline_source(name, seed, base, args)
    check_settings(folder, base, args)
    cfg = CompareConfig(
        total_steps=args.total_steps,
        seeds=[seed],
        env_id=env_id,
        env_kwargs=env_kwargs,
        eval_episodes=args.eval_episodes,
        eval_steps=eval_steps,
        out=str(folder / "compare"),
        agents=["curiosity"] if source else ["ppo", "curiosity"],
        train_overrides=overrides,
        progress_bar=False,
    )
    return cfg, source


def compare_on_ray(args: argparse.Namespace, overrides: dict[str, Any], log=print) -> None:
    """``--ray``: every unfinished comparison's (agent, seed) runs as Ray tasks in one pool, then their
    ``results.json``; the rest (random agent, second draw) runs here as without ``--ray``."""
    from tdwgym.agents.comparison import gather_results
    from tdwgym.agents.comparison_ray import run_on_ray

    configs = []
    for seed in args.seeds:
        for name in args.envs:
            cfg, _ = compare_config(name, seed, args, overrides)
            if not (Path(cfg.out) / "results.json").is_file():
                configs.append(cfg)
    if not configs:
        return
    log(f"[ray] {sum(len(c.agents) * len(c.seeds) for c in configs)} runs of {len(configs)} comparisons")
    run_on_ray(configs, args.ray or None, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, log=log)
    for cfg in configs:
        gather_results(cfg)


def run_env_seed(
    name: str, seed: int, args: argparse.Namespace, overrides: dict[str, Any], log=print
) -> dict[str, dict[str, float]]:
    """The three agents on both draws for one env and seed (each step skipped when its file exists)."""
    env_id, eval_steps = ENVS[name]
    eval_steps = args.eval_steps or eval_steps
    env_kwargs = dict(DEFAULT_ENV_KWARGS)
    folder = Path(args.out) / f"{name}_s{seed}"
    base = TrainConfig(**{"env_id": env_id, "env_kwargs": env_kwargs, "seed": seed, **overrides})
    draw1 = [10_000 + 100 * seed + i for i in range(args.eval_episodes)]
    draw2 = [DRAW2_OFFSET + 100 * seed + i for i in range(args.eval_episodes)]

    cfg, source = compare_config(name, seed, args, overrides)
    trained = cfg.agents
    if source:
        log(f"[{name} s{seed}] random and plain PPO: reused from {source}")
    results_path = folder / "compare" / "results.json"
    if not results_path.is_file():
        t0 = time.perf_counter()
        log(f"[{name} s{seed}] compare: {', '.join(trained)}, {args.total_steps} steps, {args.eval_episodes} episodes")
        compare(cfg, progress=log)
        log(f"[{name} s{seed}] compare done in {time.perf_counter() - t0:.0f} s")
    compared = json.loads(results_path.read_text())["runs"][0]
    assert compared["heldout_seeds"] == draw1, "the held-out seeds of compare changed"
    if source:
        reused = json.loads((source / "compare" / "results.json").read_text())["runs"][0]
        assert reused["heldout_seeds"] == draw1, f"{source}: other held-out seeds"
        compared["agents"]["ppo"] = reused["agents"]["ppo"]

    random_path = folder / "random.json"
    if not random_path.is_file():
        if source:
            _write_json(random_path, {**json.loads((source / "random.json").read_text()), "from": str(source)})
        else:
            log(f"[{name} s{seed}] random agent, draw 1")
            act = _random_act(env_id, env_kwargs, seed + 1)  # compare's action stream for its random agent
            _write_json(random_path, {"heldout_seeds": draw1, **_heldout(act, base, draw1, eval_steps)})

    draw2_path = folder / "draw2.json"
    if not draw2_path.is_file():
        log(f"[{name} s{seed}] second draw of held-out episodes")
        rows: dict[str, Any] = {"heldout_seeds": draw2}
        if source:
            earlier = json.loads((source / "draw2.json").read_text())
            assert earlier["heldout_seeds"] == draw2, f"{source}: other held-out seeds"
            rows.update({"random": earlier["random"], "ppo": earlier["ppo"], "from": str(source)})
        else:
            rows["random"] = _heldout(_random_act(env_id, env_kwargs, DRAW2_OFFSET + seed), base, draw2, eval_steps)
        for agent in trained:
            agent_path = RunDir(folder / "compare" / f"{agent}_s{seed}").agent_path()
            model = load_agent(agent_path, device="cpu")
            torch.manual_seed(DRAW2_OFFSET + seed)  # other action draws than the first draw's
            act = lambda obs, m=model: m.predict(obs, deterministic=False)[0]  # noqa: E731
            rows[agent] = _heldout(act, base, draw2, eval_steps)
        _write_json(draw2_path, rows)

    draws = {"draw2": json.loads(draw2_path.read_text())}
    large = getattr(args, "large_draw", 0)
    if large and (not getattr(args, "report_only", False) or (folder / "draw3.json").is_file()):
        draws["draw3"] = large_draw(folder, name, seed, large, base, source, eval_steps, log)
    random_row = json.loads(random_path.read_text())
    rows1 = {"random": random_row, **{a: compared["agents"][a] for a in ("ppo", "curiosity")}}
    return {
        "draw1": {a: rows1[a]["pushes_moved_per_1k"] for a in AGENTS},
        "steps1": {a: rows1[a]["eval_steps"] for a in AGENTS},
        **{d: {a: rows[a]["pushes_moved_per_1k"] for a in AGENTS} for d, rows in draws.items()},
        **{"steps" + d[-1]: {a: rows[a]["eval_steps"] for a in AGENTS} for d, rows in draws.items()},
        "train_wall_s": {a: compared["agents"][a]["train_wall_s"] for a in ("ppo", "curiosity")},
        "baselines_from": str(source) if source else None,
    }


def large_draw(
    folder: Path, name: str, seed: int, episodes: int, base: TrainConfig, source: Path | None, eval_steps: int, log
) -> dict[str, Any]:
    """``folder/draw3.json``: the three agents on ``episodes`` more held-out episodes (measured once, then read).

    The trained policies act again (plain PPO's from ``source`` when the baselines were reused from there), each with
    its own action draws; nothing trains. Raises :class:`SettingsChangedError` when the file holds another number of
    episodes."""
    seeds = [DRAW3_OFFSET + DRAW3_MAX * seed + i for i in range(episodes)]
    path = folder / "draw3.json"
    if path.is_file():
        rows = json.loads(path.read_text())
        if rows["heldout_seeds"] != seeds:
            raise SettingsChangedError(
                f"{path} holds {len(rows['heldout_seeds'])} episodes, not --large-draw {episodes}; delete it to "
                "measure the new number"
            )
        return rows
    env_id, env_kwargs = base.env_id, dict(base.env_kwargs)
    log(f"[{name} s{seed}] third draw: {episodes} held-out episodes per agent")
    rows = {"heldout_seeds": seeds}
    rows["random"] = _heldout(_random_act(env_id, env_kwargs, DRAW3_OFFSET + seed), base, seeds, eval_steps)
    for agent in ("ppo", "curiosity"):
        where = source if source is not None and agent == "ppo" else folder
        model = load_agent(RunDir(where / "compare" / f"{agent}_s{seed}").agent_path(), device="cpu")
        torch.manual_seed(DRAW3_OFFSET + seed)
        act = lambda obs, m=model: m.predict(obs, deterministic=False)[0]  # noqa: E731
        rows[agent] = _heldout(act, base, seeds, eval_steps)
    _write_json(path, rows)
    return rows


NOT_SETTINGS = ("out", "overwrite", "progress_bar", "verbose", "vec_env", "vec_spin")
"""TrainConfig fields that say where and how a run goes and reports, not what it measures (every ``vec_env`` gives
the same run for a seed, and so did every ``vec_spin`` of the releases that had it); ``settings.json`` files written
with them still match."""

RETIRED = {"stagger_episodes": False, "normalize_advantage": True}
"""TrainConfig fields that are gone, with the value every run has had since: a folder that recorded that value ran
as today's code runs and still matches; one that recorded another did not."""

CURIOSITY_ONLY = (
    "curiosity",
    "progress_base",
    "world_model",
    "int_coef",
    "int_norm_horizon",
    "action_baseline",
    "zscore_threshold",
    "reward_gate",
    "wm_fovea",
    "wm_surprise",
    "wm_width",
    "wm_warp",
    "wm_resolution",
    "wm_capacity",
    "wm_batch_size",
    "wm_updates_per_transition",
    "wm_learning_rate",
    "wm_background",
)
"""TrainConfig fields that change only the curiosity agent's reward: the random agent does not train and plain PPO
is paid nothing by its world model (``int_coef=0``), so ``--baselines-from`` reuses their results across them."""


class SettingsChangedError(ValueError):
    """A folder holds results measured with other settings than this call's (resuming would mix them)."""


def _settings(base: TrainConfig, args: argparse.Namespace) -> dict[str, Any]:
    """What the results of one env and seed depend on: every TrainConfig field, the version of the curiosity
    reward's rules, the budget and held-out sizes, and where the baselines came from."""
    train = json.loads(json.dumps(dataclasses.asdict(base), default=str))
    for name in NOT_SETTINGS:
        train.pop(name, None)
    train["reward_version"] = REWARD_VERSION
    return {
        "train": train,
        "total_steps": args.total_steps,
        "eval_episodes": args.eval_episodes,
        "eval_steps": args.eval_steps,
        "baselines_from": getattr(args, "baselines_from", None),
    }


def _differences(theirs: dict[str, Any], mine: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings that differ between two ``settings.json`` contents, as ``name: theirs there, mine now``."""
    # a retired field counts as the behaviour every run has now (stagger_episodes: False)
    flat = lambda d: {**{k: v for k, v in d.items() if k != "train"}, **RETIRED, **d.get("train", {})}  # noqa: E731
    a, b = flat(theirs), flat(mine)
    for name in (*NOT_SETTINGS, *ignore):
        a.pop(name, None)
        b.pop(name, None)
    return [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def baseline_source(name: str, seed: int, base: TrainConfig, args: argparse.Namespace) -> Path | None:
    """The folder of ``--baselines-from`` whose random and plain PPO results this env and seed reuse, or ``None``
    (no such option, or that folder has not finished this env and seed: the baselines run here).

    Raises:
        SettingsChangedError: that folder measured them with settings that differ in more than the curiosity
            reward's (:data:`CURIOSITY_ONLY`, the reward's rules), or is from before ``settings.json`` existed.
    """
    if not getattr(args, "baselines_from", None):
        return None
    source = Path(args.baselines_from) / f"{name}_s{seed}"
    if not finished(name, seed, args.baselines_from):
        return None
    path = source / "settings.json"
    if not path.is_file():
        raise SettingsChangedError(f"--baselines-from {source} has no settings.json (an older run of this script)")
    diff = _differences(
        json.loads(path.read_text()), _settings(base, args), (*CURIOSITY_ONLY, "reward_version", "baselines_from")
    )
    if diff:
        raise SettingsChangedError(
            f"--baselines-from {source} measured its baselines with other settings ({', '.join(diff)}); only the "
            f"curiosity reward's settings may differ ({', '.join(CURIOSITY_ONLY)})"
        )
    origin = json.loads(path.read_text()).get("baselines_from")
    if origin:  # that folder reused its baselines too: they are read where they were measured
        if not finished(name, seed, origin):
            raise SettingsChangedError(
                f"--baselines-from {source} reused its random and plain PPO results from {origin}, which no longer "
                f"holds them for {name} seed {seed}: give --baselines-from the folder that measured them"
            )
        return baseline_source(name, seed, base, argparse.Namespace(**{**vars(args), "baselines_from": origin}))
    return source


def check_settings(folder: Path, base: TrainConfig, args: argparse.Namespace) -> None:
    """Record the settings in ``folder/settings.json``, or refuse when the folder's differ from this call's.

    A folder whose results were measured with other defaults (an older ``tdwgym train``) or other sizes would be
    skipped as finished and mixed into the table; the error names the fields that differ and the ways on.
    """
    path = folder / "settings.json"
    mine = _settings(base, args)
    if path.is_file():
        theirs = json.loads(path.read_text())
        for name in NOT_SETTINGS:
            theirs.get("train", {}).pop(name, None)
        diff = _differences(theirs, mine)
        if diff:
            raise SettingsChangedError(
                f"{folder} holds results measured with other settings ({', '.join(diff)}); "
                "pass another --out, or delete the folder to measure it again"
            )
    elif any(folder.iterdir()):
        raise SettingsChangedError(
            f"{folder} holds results without settings.json (an older run of this script); "
            "pass another --out, or delete the folder to measure it again"
        )
    else:
        _write_json(path, mine)


def finished(name: str, seed: int, out: str) -> bool:
    folder = Path(out) / f"{name}_s{seed}"
    return all((folder / f).is_file() for f in ("compare/results.json", "random.json", "draw2.json"))


# ------------------------------------------------------------------------------------------------ statistics


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, stat=np.mean) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` over resamples of the rows of ``values`` (seeds)."""
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    idx = rng.integers(0, n, size=(BOOTSTRAP, n))
    stats = np.array([stat(values[i]) for i in idx])
    stats = stats[np.isfinite(stats)]  # resamples whose ratio is undefined (0 / 0) or infinite drop out
    if stats.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def _ratio(pairs: np.ndarray) -> float:
    """Ratio of the means of column 0 and column 1 (inf when only the denominator's mean is 0, nan when both are)."""
    num, den = pairs[:, 0].mean(), pairs[:, 1].mean()
    if den > 0:
        return float(num / den)
    return float("inf") if num > 0 else float("nan")


def _fmt(x: float, digits: int = 1) -> str:
    return "inf" if x == float("inf") else "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def _interval(lo: float, hi: float, digits: int = 1) -> str:
    """A CI cell; a single seed has none."""
    return "n/a" if not np.isfinite(lo) else f"{_fmt(lo, digits)} to {_fmt(hi, digits)}"


def _named(overrides: dict[str, Any]) -> str:
    """The overrides as markdown: each field in backticks then its JSON value, comma-separated, sorted by field."""
    return ", ".join(f"`{k}` {json.dumps(v)}" for k, v in sorted(overrides.items()))


def report(per_seed: dict[str, dict[int, dict]], args: argparse.Namespace) -> str:
    """The markdown of ``--doc``: tables per env and draw, ratios against the targets, verdicts. The settings of
    ``--train-overrides`` are named in the command and the text: the table is then not that of the defaults."""
    rng = np.random.default_rng(0)
    overrides = dict(getattr(args, "train_overrides", None) or {})
    lines = [
        f"# Sample efficiency at {args.total_steps:,} steps ({datetime.now(timezone.utc).date().isoformat()})",
        "",
        "Written by `scripts/sample_efficiency.py` from its own output; do not edit by hand. Command:",
        "",
        "```bash",
        f"nice -n 15 .venv/bin/python scripts/sample_efficiency.py --total-steps {args.total_steps} "
        + (f"--envs {' '.join(args.envs)} " if list(getattr(args, "envs", ENVS)) != list(ENVS) else "")
        + f"--seeds {' '.join(map(str, args.seeds))} --eval-episodes {args.eval_episodes} --out {args.out}"
        + (f" --baselines-from {args.baselines_from}" if getattr(args, "baselines_from", None) else "")
        + (f" --large-draw {args.large_draw}" if getattr(args, "large_draw", 0) else "")
        + (f" --train-overrides '{json.dumps(overrides, sort_keys=True)}'" if overrides else ""),
        "```",
        "",
        f"Agents trained {args.total_steps} steps each with the defaults of `tdwgym train`"
        + (f" except {_named(overrides)}" if overrides else "")
        + " (env kwargs "
        f"`{json.dumps(DEFAULT_ENV_KWARGS)}`, curiosity `{overrides.get('curiosity', TrainConfig.curiosity)}`), "
        f"measured on {args.eval_episodes} held-out episodes "
        "per agent and seed (a whole episode each: 500 steps in Playroom, 300 in Occlusion). Push rate: pushes that "
        "moved an object per 1,000 held-out steps. Draw 1: scene seeds 10000 + 100 seed + i (those of `tdwgym "
        f"compare`); draw 2: scene seeds {DRAW2_OFFSET} + 100 seed + i and other action draws"
        + (
            f"; draw 3 (`--large-draw`): {args.large_draw} more episodes per agent and seed, scene seeds "
            f"{DRAW3_OFFSET} + {DRAW3_MAX} seed + i, other action draws again, the same trained policies"
            if getattr(args, "large_draw", 0)
            else ""
        )
        + ". Spread: standard "
        "deviation over seeds (ddof 1); CI: bootstrap 95 % percentile interval of the mean over seeds "
        f"({BOOTSTRAP} resamples; n/a with one seed); ratios are ratios of the means, their CI with seeds resampled in "
        "pairs (resamples whose ratio is 0 / 0 or infinite drop out). Targets: "
        "curiosity >= 3x random and >= 2x plain PPO. The defaults of `tdwgym train` were chosen by screening on "
        "Playroom seeds 0 (PPO 10 epochs of minibatch 64 at learning rate 5e-4), 1 and 2 (`reward_gate` push, "
        "`gamma` 0.95) and 5 and 6 (`action_baseline` difference; docs/agents.md), so seeds 0 to 2 are not "
        "independent evidence there: the ratios over the other seeds follow each draw's.",
        "",
    ]
    for name, seeds in per_seed.items():
        env_id = ENVS[name][0]
        done = sorted(seeds)
        lines += [f"## {env_id}", ""]
        if not done:
            lines += [f"No seed finished (of {args.seeds}).", ""]
            continue
        lines += [f"{len(done)} of {len(args.seeds)} seeds finished: {done}.", ""]
        reused = {s: seeds[s].get("baselines_from") for s in done if seeds[s].get("baselines_from")}
        if reused:
            where = Path(next(iter(reused.values()))).parent
            lines += [
                f"Random and plain PPO of seeds {sorted(reused)} reused from `{where}` (`--baselines-from`: measured "
                "there with the same settings but the curiosity reward's).",
                "",
            ]
        lines += [
            "| draw | agent | push rate / 1k (mean) | spread (std) | 95 % CI | per seed | pushes / held-out steps |",
            "|---|---|---:|---:|---|---|---:|",
        ]
        verdicts = []
        for draw in ("draw1", "draw2", "draw3"):
            if any(draw not in seeds[s] for s in done):
                continue  # the third draw only with --large-draw, for every finished seed
            vals = {a: np.array([seeds[s][draw][a] for s in done], dtype=float) for a in AGENTS}
            counts: dict[str, int] = {}
            for a in AGENTS:
                v = vals[a]
                lo, hi = bootstrap_ci(v, rng)
                std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
                per = ", ".join(_fmt(x) for x in v)
                steps = [seeds[s]["steps" + draw[-1]][a] for s in done]
                pushes = counts[a] = sum(round(rate * n / 1000) for rate, n in zip(v, steps, strict=True))
                lines.append(
                    f"| {draw[-1]} | {a} | {_fmt(v.mean())} | {_fmt(std)} | {_interval(lo, hi)} | {per} | "
                    f"{pushes} / {sum(steps)} |"
                )
            for other, target in TARGETS.items():
                pairs = np.stack([vals["curiosity"], vals[other]], axis=1)
                r = _ratio(pairs)
                lo, hi = bootstrap_ci(pairs, rng, stat=_ratio)
                met = "undefined (no push by either agent)" if np.isnan(r) else "met" if r >= target else "not met"
                verdicts.append(
                    f"- draw {draw[-1]}: curiosity / {other} = **{_fmt(r, 2)}** (95 % CI {_interval(lo, hi, 2)}); "
                    f"target {target:g}x: {met}"
                    + (f", short by {_fmt(target / r, 1)}x" if 0 < r < target else "")
                    + (f" on the mean, but the 95 % CI reaches down to {_fmt(lo, 2)}x" if r >= target > lo else "")
                    + (
                        f" (on {counts['curiosity']} against {counts[other]} pushes: too few to tell)"
                        if min(counts["curiosity"], counts[other]) < FEW_PUSHES and not np.isnan(r)
                        else ""
                    )
                    + "."
                )
            chosen = CHOSEN_ON.get(name, ())
            rest = [i for i, s in enumerate(done) if s not in chosen]
            if len(rest) >= 1 and len(rest) < len(done):
                r_rand = _ratio(np.stack([vals["curiosity"][rest], vals["random"][rest]], axis=1))
                r_ppo = _ratio(np.stack([vals["curiosity"][rest], vals["ppo"][rest]], axis=1))
                left_out = sorted(set(done) & set(chosen))
                verdicts.append(
                    f"- draw {draw[-1]} without the seeds that chose the defaults ({left_out}; seeds "
                    f"{[done[i] for i in rest]}): curiosity / random = **{_fmt(r_rand, 2)}**, curiosity / ppo = "
                    f"**{_fmt(r_ppo, 2)}**."
                )
        lines += ["", *verdicts, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run what is unfinished, then write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--total-steps", type=int, default=30_000)
    parser.add_argument("--eval-episodes", type=int, default=20, help="held-out episodes per agent, seed and draw")
    parser.add_argument("--eval-steps", type=int, default=None, help="steps per held-out episode (default: all)")
    parser.add_argument("--out", default="runs/sample_efficiency", help="one folder per env and seed")
    parser.add_argument(
        "--doc", default=dated_page("sample-efficiency"), help="the markdown table (a dated results page)"
    )
    parser.add_argument("--report-only", action="store_true", help="run nothing; table from finished folders")
    parser.add_argument(
        "--baselines-from",
        default=None,
        metavar="OUT",
        help="an earlier --out whose random and plain PPO results to reuse for the env and seeds it finished, when "
        "only the curiosity reward's settings differ (those agents do not depend on them); the rest run here",
    )
    parser.add_argument(
        "--train-overrides", type=json.loads, default={}, help="TrainConfig fields (JSON; tests shrink the run)"
    )
    parser.add_argument(
        "--large-draw",
        type=int,
        default=0,
        metavar="N",
        help=f"a third draw of N held-out episodes per agent and seed (at most {DRAW3_MAX}; 0: none) for rare pushes",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="train every unfinished (env, seed, agent) run as a Ray task (docs/distributed.md); the held-out draws "
        "run here",
    )
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="with --ray: CPUs per run")
    parser.add_argument("--gpus-per-run", type=float, default=0.0, help="with --ray: GPUs per run (fractions share)")
    args = parser.parse_args(argv)
    if not 0 <= args.large_draw <= DRAW3_MAX:
        parser.error(f"--large-draw must be between 0 and {DRAW3_MAX} episodes, got {args.large_draw}")
    overrides = dict(args.train_overrides)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        parser.error(f"--train-overrides: unknown TrainConfig fields {sorted(unknown)}")

    # the draws' policies act here (compare sets its own threads for training): torch's default of one thread per
    # core made them 4x slower beside a second run of this script on 2 cores
    configure_torch_threads()
    per_seed: dict[str, dict[int, dict]] = {name: {} for name in args.envs}
    if args.ray is not None and not args.report_only:
        try:
            compare_on_ray(args, overrides, log=lambda m: print(m, flush=True))
        except (SettingsChangedError, ValueError) as exc:  # a bad address or resources: one line
            parser.exit(2, f"sample_efficiency.py: error: {exc}\n")
    for seed in args.seeds:  # seed by seed, alternating the envs, so that an early stop leaves both with seeds
        for name in args.envs:
            if args.report_only and not finished(name, seed, args.out):
                continue
            try:
                per_seed[name][seed] = run_env_seed(name, seed, args, overrides, log=lambda m: print(m, flush=True))
            except SettingsChangedError as exc:
                parser.exit(2, f"sample_efficiency.py: error: {exc}\n")
            Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
            Path(args.doc).write_text(report(per_seed, args) + "\n")
    Path(args.doc).write_text(report(per_seed, args) + "\n")
    print(Path(args.doc).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
