"""``tdwgym eval``: did the world model learn physics or memorise cases?

:func:`evaluate` loads a world model (from a training run folder or a checkpoint file) once and writes
``report.json``, ``report.md`` and PNG plots with four sections, one module each in :mod:`tdwgym.agents.evaluation`:

1. **Prediction quality** (:mod:`~tdwgym.agents.evaluation.prediction`) on held-out episodes of ``test_id`` and
   ``test_ood``: MSE, MAE (summed over pixels per frame), PSNR and SSIM of 1-step and ``horizon``-step predictions
   (the model rolled forward on its own predictions with the recorded actions), always beside a copy-last-frame and
   a constant-velocity baseline (``x[t+1] = clip(2 x[t] - x[t-1])``). Models that predict features only (latent,
   RND, ICM) have no pixel prediction: their pixel metrics are marked not applicable.
2. **Violation of expectation** (:mod:`~tdwgym.agents.evaluation.voe`): matched possible/impossible clips of each
   impossible kind (:func:`tdwgym.envs.twins.make_pairs`: same seed, still camera, no-op actions); surprise =
   the model's per-step prediction error, aggregated over the clip by mean and by max; per kind the pairwise
   accuracy (impossible more surprising than its twin) and AUROC.
3. **Physical-law probes** (:mod:`~tdwgym.agents.evaluation.probes`) after Kang et al. 2024: for uniform-motion,
   collision and parabola clips the target object's image position is parsed by a colour mask from the model's
   open-loop predicted frames and from the true frames (the measurement floor); velocity error against the
   projected ground truth, in pixels per frame, separately for test_id and test_ood and per held-out factor.
4. **Exploration** (:mod:`~tdwgym.agents.evaluation.exploration`) of the run's agent (and of a random policy):
   pushes that moved an object, objects seen, floor-area coverage of the camera.

An :class:`EvalConfig` says what to evaluate, where and how big; :func:`make_plan` resolves it once into the model
and the numbered held-out episodes (:mod:`~tdwgym.agents.evaluation.plan`). Every episode has seeds that depend on
its number only: :func:`evaluate_episodes` evaluates any subset of them (raw results), :func:`merge_reports` builds
the report from the parts, and :func:`evaluate` is the two in one process (``tdwgym eval --ray`` spreads the
episodes over a Ray cluster: :func:`tdwgym.agents.evaluation.on_ray.evaluate_on_ray`).

    tdwgym eval --run runs/curiosity                # report in runs/curiosity/eval/
    tdwgym eval --model world_model.pt --quick --out /tmp/eval
    tdwgym eval --run runs/curiosity --ray          # episodes as Ray tasks (pip install 'tdwgym[ray]')
"""

from __future__ import annotations

import copy
import json
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tdwgym
from tdwgym.agents.device import configure_torch_threads
from tdwgym.agents.evaluation import exploration, prediction, probes, voe
from tdwgym.agents.evaluation.plan import (
    BASELINES,
    PROBE_KEYWORDS,
    SECTIONS,
    EvalConfig,
    EvalEpisode,
    EvalPlan,
    EvalSettings,
    LoadedRun,
    clips_surprise,
    default_workers,
    episode_surprise,
    load_run,
    make_plan,
    pixel_predictor,
    rollout_predictions,
    run_episode,
)
from tdwgym.agents.evaluation.report import _jsonable, write_markdown, write_plots
from tdwgym.agents.evaluation.stepper import ModelStepper
from tdwgym.agents.evaluation.voe import VOE_HEADLINE, bootstrap_ci, voe_metrics
from tdwgym.agents.external import ExternalModel
from tdwgym.agents.models import load_world_model
from tdwgym.tools.policies import TRUST_PICKLES_ENV
from tdwgym.util.processes import init_worker
from tdwgym.util.progress_bar import progress_bar

__all__ = [
    "BASELINES",
    "PROBE_KEYWORDS",
    "VOE_HEADLINE",
    "EvalConfig",
    "EvalEpisode",
    "EvalPlan",
    "EvalSettings",
    "LoadedRun",
    "ModelStepper",
    "bootstrap_ci",
    "clips_surprise",
    "count_episodes",
    "default_workers",
    "episode_surprise",
    "evaluate",
    "evaluate_episodes",
    "export_eval_sets",
    "load_run",
    "load_world_model",
    "make_plan",
    "merge_reports",
    "pixel_predictor",
    "rollout_predictions",
    "run_episode",
    "voe_metrics",
]


_SECTION_MODULES = {"prediction": prediction, "voe": voe, "probes": probes, "exploration": exploration}
"""Section -> its module, each with ``run_episode(plan, episode)`` and ``summary(plan, done)``."""

_RUN_EPISODE: dict[str, Callable[[EvalPlan, EvalEpisode], Any]] = {
    name: module.run_section_episode for name, module in _SECTION_MODULES.items()
}
_SUMMARY: dict[str, Callable[[EvalPlan, list[tuple[EvalEpisode, Any]]], dict[str, Any]]] = {
    name: module.summary for name, module in _SECTION_MODULES.items()
}


def count_episodes(config: EvalConfig) -> int:
    """How many held-out episodes the evaluation of ``config`` has, across all sections (numbered ``0 .. n - 1``).

    An episode's seeds depend on its index (and the config) only, so any subset of indices can be evaluated
    anywhere, in any order (:func:`evaluate_episodes`), and merged (:func:`merge_reports`).

    Raises:
        FileNotFoundError: The run folder or checkpoint does not exist, or the folder has no world model.
        ValueError: An unknown env id, or a file that is no checkpoint.
    """
    return len(make_plan(config).episodes)


def evaluate_episodes(indices: Iterable[int], config: EvalConfig, plan: EvalPlan | None = None) -> dict[str, Any]:
    """Evaluate some of the held-out episodes; the raw results, not yet averaged (a part for :func:`merge_reports`).

    Args:
        indices: Episode indices in ``0 .. count_episodes(config) - 1``.
        config: What to evaluate.
        plan: ``make_plan(config)`` when the caller has it already (the model is then not loaded again).

    Returns:
        A picklable part: ``indices``, one raw ``results`` entry per index (per-step errors and surprise, probe
        rows, exploration counts), and where and when it ran (``device``, ``host``, ``started``, ``seconds``).

    Raises:
        IndexError: An index outside ``0 .. count_episodes(config) - 1``.
    """
    started, t0 = time.time(), time.perf_counter()
    configure_torch_threads()  # spinning OpenMP threads slow small models many times on a busy small machine
    plan = plan if plan is not None else make_plan(config)
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(plan.episodes)]
    if bad:
        raise IndexError(f"episode indices {bad} are outside 0..{len(plan.episodes) - 1}")
    results = []
    with progress_bar(total=len(indices), desc="eval", unit="episode", enabled=config.progress) as bar:
        for i in indices:
            ep = plan.episodes[i]
            bar.set_description(f"eval: {SECTIONS[ep.section]}")
            torch.manual_seed(ep.seed)
            results.append(_RUN_EPISODE[ep.section](plan, ep))
            bar.update()
    return {
        "indices": indices,
        "results": results,
        "device": str(plan.device),
        "host": socket.gethostname(),
        "started": started,
        "seconds": time.perf_counter() - t0,
    }


def merge_reports(parts: Sequence[dict[str, Any]], config: EvalConfig, plan: EvalPlan | None = None) -> dict[str, Any]:
    """The report from the parts of :func:`evaluate_episodes` that cover every episode once; writes ``report.json``,
    ``report.md`` and PNG plots like :func:`evaluate`, whose report it equals (but for ``wall_time_s``).

    Args:
        parts: Parts covering ``0 .. count_episodes(config) - 1`` between them, each index once, in any order.
        config: What was evaluated.
        plan: ``make_plan(config)`` when the caller has it already.

    Returns:
        The report (as written to ``report.json``); ``meta.wall_time_s`` runs from the earliest part's start.

    Raises:
        ValueError: The parts miss an episode or hold one twice.
    """
    plan = plan if plan is not None else make_plan(config)
    results: dict[int, Any] = {}
    for part in parts:
        for i, result in zip(part["indices"], part["results"], strict=True):
            if i in results:
                raise ValueError(f"episode {i} is in more than one part")
            results[i] = result
    missing = sorted(set(range(len(plan.episodes))) - set(results))
    extra = sorted(set(results) - set(range(len(plan.episodes))))
    if missing or extra:
        raise ValueError(
            f"the parts do not cover the {len(plan.episodes)} episodes of this evaluation: missing {missing}, "
            f"unknown {extra} (were they evaluated with the same config?)"
        )
    started = min((float(p["started"]) for p in parts), default=time.time())
    model, s = plan.loaded.model, plan.settings
    done: dict[str, list[tuple[EvalEpisode, Any]]] = {name: [] for name in SECTIONS}
    for ep in plan.episodes:
        done[ep.section].append((ep, results[ep.index]))
    devices = sorted({str(p["device"]) for p in parts}) or [str(plan.device)]
    report: dict[str, Any] = {
        "meta": {
            "model": str(plan.loaded.model_path),
            "run_dir": str(plan.loaded.run_dir) if plan.loaded.run_dir else None,
            "model_name": model.name,
            "frame_shape": list(model.frame_shape),
            "context_frames": model.context_frames,
            "env_id": plan.env_id,
            "env_kwargs": plan.env_kwargs,
            "device": ", ".join(devices),
            "settings": asdict(s),
            "tdwgym_version": tdwgym.__version__,
        }
    }
    for name in SECTIONS:
        report[name] = _SUMMARY[name](plan, done[name])
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    report["meta"]["wall_time_s"] = time.time() - started
    report["meta"]["out"] = str(out_dir)
    report = _jsonable(report)
    plots = write_plots(report, out_dir)
    report["meta"]["plots"] = plots
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, out_dir / "report.md", plots)
    if config.progress:
        print(f"[eval {time.time() - started:6.1f}s] wrote {out_dir / 'report.json'} and {out_dir / 'report.md'}")
    return report


def evaluate(config: EvalConfig | None = None, /, **arguments: Any) -> dict[str, Any]:
    """Evaluate a world model; write ``report.json``, ``report.md`` and PNG plots into the config's ``out``.

    With ``config.workers`` 1 the model is loaded once and every episode runs in this process:
    ``merge_reports([evaluate_episodes(all indices, config, plan)], config, plan)``; with more (the default on a
    CPU: :func:`default_workers`, one per idle core: 2 on an idle 2-core machine) the episodes run in a pool of that
    many processes, one task each, and the report is the same
    (:func:`tdwgym.agents.evaluation.on_ray.evaluate_on_ray` spreads the same episodes over Ray tasks).

    Args:
        config: What to evaluate (:class:`EvalConfig`); or
        **arguments: :meth:`EvalConfig.build`'s keyword arguments (``run_dir=``, ``model_path=``, ``env_id=``,
            ``episodes=``, ``frames=``, ``out=``, ``quick=``, ``settings=``, ``probe_envs=``, ``device=``,
            ``progress=``, ``env_kwargs=``, ``workers=``).

    Returns:
        The report (as written to ``report.json``).

    Raises:
        FileNotFoundError: The run folder or checkpoint does not exist, or the folder has no world model.
        TypeError: Both a config and keyword arguments given.
    """
    if config is not None and arguments:
        raise TypeError(f"give an EvalConfig or keyword arguments, not both (got {sorted(arguments)} too)")
    config = config if config is not None else EvalConfig.build(**arguments)
    plan = make_plan(config)
    n = len(plan.episodes)
    workers = min(n, config.workers if config.workers is not None else default_workers(plan.device))
    if workers <= 1:
        return merge_reports([evaluate_episodes(range(n), config, plan)], config, plan)
    return merge_reports(_evaluate_in_workers(config, plan, workers), config, plan)


_HEAVIEST_FIRST = ("voe", "exploration", "prediction", "probes")
"""The sections in the order the workers take their episodes: the longest first, so that none is left running
alone at the end."""

_WORKER: dict[str, Any] = {}
"""A worker process's config and plan (:func:`_start_worker`)."""


def _evaluate_in_workers(config: EvalConfig, plan: EvalPlan, workers: int) -> list[dict[str, Any]]:
    """Every episode of ``plan``, one task each, in a pool of ``workers`` processes that each build the plan once
    (the model loaded once per process): the parts of :func:`evaluate_episodes`, in the order they finish. Each
    episode seeds everything it draws from its own seeds, so the parts equal those of one process."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tdwgym.util.processes import forkserver_context

    task = replace(config.absolute(), progress=False, workers=1)
    order = sorted(range(len(plan.episodes)), key=lambda i: (_HEAVIEST_FIRST.index(plan.episodes[i].section), i))
    context = forkserver_context(["tdwgym.agents.evaluate"])
    parts = []
    trust = os.environ.get(TRUST_PICKLES_ENV)  # --trust-pickles holds for this call's workers, and for no other's
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(task, trust))
    try:
        futures = [pool.submit(_evaluate_one, i) for i in order]
        desc = f"eval ({workers} processes)"
        with progress_bar(total=len(futures), desc=desc, unit="episode", enabled=config.progress) as bar:
            for future in as_completed(futures):
                parts.append(future.result())
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return parts


def _start_worker(config: EvalConfig, trust_pickles: str | None) -> None:
    init_worker()
    # the fork server's environment is the one it started with, perhaps under another command's --trust-pickles
    if trust_pickles is None:
        os.environ.pop(TRUST_PICKLES_ENV, None)
    else:
        os.environ[TRUST_PICKLES_ENV] = trust_pickles
    _WORKER["config"], _WORKER["plan"] = config, make_plan(config)


def _evaluate_one(index: int) -> dict[str, Any]:
    return evaluate_episodes([index], _WORKER["config"], _WORKER["plan"])


def export_eval_sets(
    out: str | os.PathLike,
    env_id: str = "TDWRoom-Occlusion-v0",
    env_kwargs: dict[str, Any] | None = None,
    resolution: int = 64,
    settings: EvalSettings | None = None,
    progress: bool = True,
) -> Path:
    """Write the evaluation's frozen held-out sets to ``out``, so that anyone can report numbers on the same clips:
    ``voe/<kind>_<i>.npz``: the clips of a quadruplet (``possible_a``, ``possible_b``, ``impossible_a``,
    ``impossible_b``) or of a pair (``possible``, ``impossible``), ``(T, H, W, 3)`` uint8, each with its
    ``<clip>_segmentation`` ``(T, H, W)`` int32 object ids and ``<clip>_depth`` float32 metres, and ``design``,
    ``event_frame``, ``seed``, ``extended``; and ``probes/<kind>_<split>_<i>.npz`` (``frames``, ``segmentation``,
    ``depth``, ``actions``, ``positions``: every object's world position per frame, ``object_ids``), with
    ``index.json`` naming each file, its seed and the settings. The seeds and clips are exactly those
    :func:`evaluate` scores at this resolution and these settings.

    Returns:
        The ``index.json`` path.
    """
    out = Path(out)
    s = copy.deepcopy(settings) if settings is not None else EvalSettings()
    stub = LoadedRun(ExternalModel(type("Frames", (), {"resolution": int(resolution), "surprise": None})()), out)
    config = EvalConfig(env_id=env_id, settings=s, env_kwargs=dict(env_kwargs or {}), out=out, device="cpu")
    plan = make_plan(config, loaded=stub)
    (out / "voe").mkdir(parents=True, exist_ok=True)
    (out / "probes").mkdir(exist_ok=True)
    index: dict[str, Any] = {
        "env_id": plan.env_id,
        "env_kwargs": plan.env_kwargs,
        "resolution": int(resolution),
        "settings": asdict(s),
        "tdwgym_version": tdwgym.__version__,
        "voe": [],
        "probes": [],
    }
    counters: dict[tuple[str, ...], int] = defaultdict(int)
    episodes = [ep for ep in plan.episodes if ep.section in ("voe", "probes")]
    bar = progress_bar(total=len(episodes), desc="export", unit="clip", enabled=progress)
    for ep in episodes:
        bar.update()
        i = counters[ep.group]
        counters[ep.group] += 1
        if ep.section == "voe":
            design, item, clips, extra, redraw = voe.draw_item(plan, ep, ("segmentation", "depth"))
            if item is None:
                continue
            name = f"voe/{item.kind}_{i:03d}.npz"
            roles = (
                ("possible_a", "possible_b", "impossible_a", "impossible_b")
                if len(clips) == 4
                else (
                    "possible",
                    "impossible",
                )
            )
            arrays = {role: clip for role, clip in zip(roles, clips, strict=True)}
            for pass_name, values in extra.items():
                arrays.update({f"{role}_{pass_name}": v for role, v in zip(roles, values, strict=True)})
            np.savez_compressed(
                out / name,
                **arrays,
                event_frame=item.event_frame,
                seed=item.seed,
                extended=item.extended,
                design=design,
            )
            index["voe"].append(
                {"file": name, "kind": item.kind, "design": design, "seed": item.seed, "redrawn": redraw}
            )
        else:
            kind, probe_env, split = ep.group
            clip = probes._probe_clip(plan, ep)
            ids = sorted(clip.infos[0]["objects"])
            nan = [np.nan] * 3  # an object absent from a frame
            positions = np.array(
                [[i_["objects"].get(o, {}).get("position", nan) for o in ids] for i_ in clip.infos], np.float32
            )
            name = f"probes/{kind}_{split}_{i:03d}.npz"
            np.savez_compressed(
                out / name,
                frames=clip.frames,
                segmentation=clip.segmentation,
                depth=clip.depth,
                actions=clip.actions,
                positions=positions,
                object_ids=np.asarray(ids, dtype=np.int64),
            )
            index["probes"].append({"file": name, "kind": kind, "env_id": probe_env, "split": split, "seed": ep.seed})
    bar.close()
    path = out / "index.json"
    path.write_text(json.dumps(_jsonable(index), indent=2) + "\n")
    return path
