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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack

from tdwgym.agents.comparison_report import format_table, merge_results, plot_results, summarise, write_results
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.device import configure_torch_threads
from tdwgym.agents.models import Transitions, WorldModel, load_world_model, resize_frames
from tdwgym.agents.online import atomic_torch_save
from tdwgym.agents.training import (
    DEFAULT_ENV_KWARGS,
    TrainConfig,
    _make_env_fn,
    check_policy_input,
    make_vec_env,
    train,
)
from tdwgym.util.errors import UsageError
from tdwgym.util.files import atomic_path, write_atomic
from tdwgym.util.progress_bar import progress_bar

__all__ = [
    "CompareConfig",
    "CompareOutError",
    "check_compare_out",
    "compare",
    "episode_metrics",
    "finished_run",
    "gather_results",
    "run_agent",
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
    overwrite: bool = False
    """Let a comparison replace the results and run folders of an earlier one in ``out``."""
    agents: list[str] = field(default_factory=lambda: list(AGENTS))
    """Which agents to run."""
    overwrite: bool = False
    """Let this comparison replace an earlier one of other settings in ``out`` (its ``results.json`` and the run
    folders of other settings). An earlier comparison of the same settings is resumed without it."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`TrainConfig` fields for every agent (n_envs, action_baseline, ...)."""
    progress_bar: bool = True
    """Show progress with the ETA on stderr (training steps and held-out steps of every agent and seed): a bar on a
    terminal, plain lines elsewhere (:func:`tdwgym.util.progress_bar.progress_bar`)."""


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

    Each (agent, seed) run is :func:`run_agent`, whose record in its run folder marks it finished: running the same
    comparison again resumes, skipping the runs finished with the same settings (:func:`finished_run`), and
    :func:`gather_results` makes the results from the records. ``tdwgym compare --ray`` runs the same runs as Ray
    tasks (:mod:`tdwgym.agents.comparison_ray`).

    ``progress`` receives one line per finished phase (default: written above the progress bar, or printed when
    ``cfg.progress_bar`` is off)."""
    check_compare_out(cfg)
    if any(agent != "random" for agent in cfg.agents):  # a PPO agent trains: before anything is written
        check_policy_input(cfg.env_kwargs)
    per_agent = cfg.total_steps + cfg.eval_episodes * cfg.eval_steps
    bar = progress_bar(
        total=len(cfg.seeds) * len(cfg.agents) * per_agent, unit="step", desc="compare", enabled=cfg.progress_bar
    )
    if progress is None:
        progress = bar.write
    try:
        configure_torch_threads(cfg.train_overrides.get("torch_threads"))
        for seed in cfg.seeds:
            for agent in cfg.agents:
                if finished_run(cfg, agent, seed) is not None:
                    progress(f"[compare] seed {seed}: {agent}: finished before, skipped")
                    bar.update(per_agent)
                    continue
                bar.set_description(f"compare seed {seed} {agent}")
                run_agent(cfg, agent, seed, progress=progress, on_steps=bar.update)
        return gather_results(cfg)
    finally:
        bar.close()


RUN_RECORD = "compare_run.json"
"""A finished (agent, seed) run's record in its run folder, written last: settings, training means and curve,
held-out metrics (:func:`run_agent`)."""
RUN_WORLD_MODEL = "compare_world_model.pt"
"""The run's world model after training (``model_config`` and ``model``, read with ``weights_only=True``)."""
RUN_HELDOUT = "compare_heldout.npz"
"""The run's held-out episodes (frames and actions of each), pooled with the other agents' of the seed to measure
every world model's error."""
RUN_FIELDS_IGNORED = ("seeds", "agents", "out", "progress_bar", "overwrite")
""":class:`CompareConfig` fields that do not change a run's result (left out of :func:`run_settings`)."""


def run_folder(cfg: CompareConfig, agent: str, seed: int) -> Path:
    """The run folder of ``agent`` and ``seed``: ``OUT/<agent>_s<seed>``."""
    return Path(cfg.out) / f"{agent}_s{seed}"


def run_settings(cfg: CompareConfig, agent: str, seed: int) -> dict[str, Any]:
    """What decides the result of one run (as JSON data): a finished run is reused only when these are equal."""
    from tdwgym import __version__
    from tdwgym.agents.curiosity import REWARD_VERSION

    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_FIELDS_IGNORED}
    settings = {"agent": agent, "seed": seed, "config": config, "tdwgym": __version__, "reward": REWARD_VERSION}
    return json.loads(json.dumps(settings))


def finished_run(cfg: CompareConfig, agent: str, seed: int) -> dict[str, Any] | None:
    """The record of a finished run of ``agent`` and ``seed`` with the settings of ``cfg``, or None (no run, an
    unfinished one, a damaged record, or one of other settings: it is redone)."""
    folder = run_folder(cfg, agent, seed)
    try:
        record = json.loads((folder / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("settings") != run_settings(cfg, agent, seed):
        return None
    if not all((folder / name).is_file() for name in (RUN_WORLD_MODEL, RUN_HELDOUT)):
        return None
    return record


class CompareOutError(UsageError, FileExistsError):
    """``out`` holds a training run, or an earlier comparison of other settings (without ``overwrite``)."""


def _differing(theirs: Any, mine: dict[str, Any]) -> list[str]:
    if not isinstance(theirs, dict):
        return ["all (unreadable)"]
    return sorted(k for k in {*theirs, *mine} if theirs.get(k) != mine.get(k))


def check_compare_out(cfg: CompareConfig) -> None:
    """Refuse an ``out`` that would lose something: a training run's folder (its plot would be replaced; always), or
    an earlier comparison of other settings (its ``results.json`` or finished runs would be replaced; unless
    ``cfg.overwrite``). An earlier comparison of the same settings is resumed.

    Raises:
        CompareOutError: One line naming the folder, what differs and what to do.
    """
    out = Path(cfg.out)
    if (out / "config.json").is_file() or (out / "checkpoints").exists():
        raise CompareOutError(f"--out {out} holds a training run (tdwgym train's); give a folder of its own")
    if cfg.overwrite:
        return
    ignored = ("out", "progress_bar", "overwrite")
    mine = json.loads(json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignored}))
    differ: dict[str, list[str]] = {}
    if (out / "results.json").is_file():
        try:
            theirs = json.loads((out / "results.json").read_text()).get("config")
            theirs = {k: v for k, v in theirs.items() if k not in ignored}
        except (OSError, ValueError, AttributeError):
            theirs = None
        if _differing(theirs, mine):
            differ["results.json"] = _differing(theirs, mine)
    for path in sorted(out.glob(f"*_s*/{RUN_RECORD}")):
        agent, _, seed = path.parent.name.rpartition("_s")
        try:
            settings = json.loads(path.read_text())["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record: the run was not finished, and is redone
        if agent in AGENTS and seed.isdigit():
            want = run_settings(cfg, agent, int(seed))
            changed = _differing(settings.get("config"), want["config"])
            changed += [k for k in ("tdwgym", "reward") if settings.get(k) != want[k]]
            if changed:
                differ[str(path.relative_to(out))] = changed
    if differ:
        fields = sorted({f for fs in differ.values() for f in fs})
        raise CompareOutError(
            f"--out {out} holds an earlier comparison of other settings ({', '.join(fields)} differ; "
            f"{', '.join(list(differ)[:3])}); resume it with its settings, replace it with --overwrite, or give "
            "another --out"
        )


def run_agent(
    cfg: CompareConfig,
    agent: str,
    seed: int,
    progress: Callable[[str], None] | None = None,
    on_steps: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``agent`` on ``seed`` and measure it on the seed's held-out episodes: one run of the comparison.

    The run folder gets the training run (for the PPO agents), :data:`RUN_WORLD_MODEL`, :data:`RUN_HELDOUT` and,
    last, :data:`RUN_RECORD`; a run killed before the record is written is redone from the start. The result is a
    function of the settings and the seed alone, whichever process runs it (the torch seed is set here).

    Args:
        cfg: The comparison.
        agent: One of :data:`AGENTS`.
        seed: The training seed.
        progress: Receives a line when training starts and one with the metrics at the end.
        on_steps: Called with the steps done (training budget, then each held-out episode's steps).

    Returns:
        The record (settings, ``row`` of metrics, ``curve``).
    """
    folder = run_folder(cfg, agent, seed)
    (folder / RUN_RECORD).unlink(missing_ok=True)
    torch.manual_seed(seed)
    settings = {
        "env_id": cfg.env_id,
        "env_kwargs": dict(cfg.env_kwargs),
        "curiosity": cfg.curiosity,
        "seed": seed,
        "total_steps": cfg.total_steps,
        "run_dir": str(folder),
        "video_steps": 0,
        "progress_bar": False,
        "checkpoint_every": 10**12,
        "overwrite": True,  # the comparison owns its output folder
    }
    base = TrainConfig(**{**settings, **cfg.train_overrides})
    if progress is not None:
        progress(f"[compare] seed {seed}: training {agent} for {cfg.total_steps} steps")
    if agent == "random":
        wm, row, wall, curve = _train_random(base)
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
        metrics = _read_jsonl(Path(tcfg.run_dir) / "metrics.jsonl")
        row = _training_means(metrics)
        curve = _training_curve(metrics)
        act = lambda obs, m=res.model: m.predict(obs, deterministic=False)[0]  # noqa: E731
    if on_steps is not None:
        on_steps(cfg.total_steps)
    heldout_seeds = [10_000 + 100 * seed + i for i in range(cfg.eval_episodes)]
    ev, batches = episode_metrics(
        act,
        base,
        heldout_seeds,
        cfg.eval_steps,
        base.context_frames,
        on_episode=None if on_steps is None else lambda: on_steps(cfg.eval_steps),
    )
    row.update(ev)
    row["train_wall_s"] = wall
    state = {k: v.detach().cpu() for k, v in wm.state_dict().items()}
    atomic_torch_save({"model_config": wm.config(), "model": state}, folder / RUN_WORLD_MODEL)
    save_heldout(batches, folder / RUN_HELDOUT)
    record = {"settings": run_settings(cfg, agent, seed), "row": row, "curve": curve, "heldout_seeds": heldout_seeds}
    write_atomic(folder / RUN_RECORD, json.dumps(record, indent=2) + "\n")
    if progress is not None:
        progress(f"[compare] seed {seed}: {agent}: {json.dumps({k: round(v, 4) for k, v in row.items()})}")
    return record


def save_heldout(batches: list[Transitions], path: Path) -> None:
    """Write held-out episodes' transitions as each episode's frames and actions (compressed; whole or not at all)."""
    arrays: dict[str, np.ndarray] = {}
    for i, batch in enumerate(batches):
        frames = torch.cat([batch.context[:1, -1], batch.next_frame])
        arrays[f"frames_{i}"] = frames.numpy()
        arrays[f"actions_{i}"] = batch.action.numpy()
        arrays[f"context_{i}"] = np.asarray(batch.context.shape[1])
    with atomic_path(path, keep_suffix=True) as tmp:
        np.savez_compressed(tmp, **arrays)


def load_heldout(path: Path) -> list[Transitions]:
    """The transitions :func:`save_heldout` wrote, equal to those it was given."""
    batches = []
    with np.load(path, allow_pickle=False) as data:
        for i in range(sum(1 for key in data.files if key.startswith("frames_"))):
            frames, k = data[f"frames_{i}"], int(data[f"context_{i}"])
            padded = np.concatenate([np.repeat(frames[:1], k - 1, axis=0), frames]) if k > 1 else frames
            n = len(frames) - 1
            ctx = np.stack([padded[t : t + k] for t in range(n)])
            batches.append(
                Transitions(torch.from_numpy(ctx), torch.from_numpy(data[f"actions_{i}"]), torch.from_numpy(frames[1:]))
            )
    return batches


def gather_results(cfg: CompareConfig) -> dict[str, Any]:
    """The comparison's results from its finished runs' records: per seed, every agent's world model is measured on
    the pool of all its agents' held-out transitions beside copy-last; write ``results.json``, ``results.md`` and
    the plots to ``cfg.out``.

    Raises:
        FileNotFoundError: A run of ``cfg`` is not finished.
    """
    out = Path(cfg.out)
    configure_torch_threads(cfg.train_overrides.get("torch_threads"))  # as the local comparison's process has
    reference = TrainConfig(**{"env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs, **cfg.train_overrides})
    results: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "train_config": dataclasses.asdict(reference),
        "runs": [],
    }
    for seed in cfg.seeds:
        models: dict[str, WorldModel] = {}
        pool: list[Transitions] = []
        rows: dict[str, dict[str, float]] = {}
        curves: dict[str, dict[str, list[float]]] = {}
        heldout_seeds: list[int] = []
        for agent in cfg.agents:
            record = finished_run(cfg, agent, seed)
            if record is None:
                raise FileNotFoundError(f"run {agent} seed {seed} in {out} is not finished; run the comparison again")
            folder = run_folder(cfg, agent, seed)
            rows[agent], curves[agent], heldout_seeds = dict(record["row"]), record["curve"], record["heldout_seeds"]
            models[agent] = load_world_model(folder / RUN_WORLD_MODEL, device=reference.device)
            pool.extend(load_heldout(folder / RUN_HELDOUT))
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
    results["summary"] = summarise(results["runs"], cfg.agents)
    write_results(results, out)
    return results


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
