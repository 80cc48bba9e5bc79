"""Section 1 of the evaluation, prediction quality: 1-step and multi-step errors of the model's predicted frames
on held-out episodes of test_id and test_ood, beside the copy-last and constant-velocity baselines."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import numpy as np

from tdwgym.agents import metrics as M
from tdwgym.agents.evaluation.plan import (
    HELD_OUT_SPLITS,
    NOT_APPLICABLE,
    EvalEpisode,
    EvalPlan,
    _frame_metrics,
    _make_env,
    _mean,
    episode_surprise,
    pixel_predictor,
    rollout_predictions,
    run_episode,
)


def run_section_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, Any]:
    """One prediction episode: per-step surprise, and per predictor/metric the ``(starts, horizon)`` errors."""
    from tdwgym.tools.policies import load_policy

    s, model = plan.settings, plan.loaded.model
    pixel = pixel_predictor(model)
    (split,) = ep_.group
    with contextlib.closing(_make_env(plan.env_id, model, plan.env_kwargs, split=split)) as env:
        ep = run_episode(env, s.frames, ep_.seed, load_policy(s.policy, env, ep_.seed))
    out: dict[str, Any] = {"surprise": episode_surprise(model, ep), "1-step": {}, "multi-step": {}}
    t_last = len(ep.frames) - 1
    true = M.as_unit_float(ep.frames)
    starts1 = list(range(1, t_last))
    startsh = list(range(1, t_last - s.horizon + 1))
    for starts, horizon, store in ((starts1, 1, out["1-step"]), (startsh, s.horizon, out["multi-step"])):
        if not starts:
            continue
        targets = np.stack([true[t + 1 : t + 1 + horizon] for t in starts])
        preds = {
            "copy_last": np.stack([M.copy_last_rollout(true[t - 1 : t + 1], horizon) for t in starts]),
            "constant_velocity": np.stack([M.constant_velocity_rollout(true[t - 1 : t + 1], horizon) for t in starts]),
        }
        if pixel is not None:
            preds["model"] = rollout_predictions(pixel, ep, starts, horizon)
        for name, pred in preds.items():
            for metric, vals in _frame_metrics(pred, targets).items():
                store[f"{name}/{metric}"] = vals
    return out


def summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 1: 1-step and multi-step prediction quality per split, model beside the baselines."""
    s = plan.settings
    pixel = pixel_predictor(plan.loaded.model)
    out: dict[str, Any] = {
        "horizon": s.horizon,
        "policy": s.policy,
        "episodes": s.episodes,
        "frames": s.frames,
        "pixel_model": pixel is not None,
    }
    if pixel is None:
        out["note"] = NOT_APPLICABLE
    for split in HELD_OUT_SPLITS:
        results = [r for ep, r in done if ep.group == (split,)]
        surprise = [float(v) for r in results for v in r["surprise"]]
        res: dict[str, Any] = {"surprise_mean": _mean(surprise)}
        for label, part in (("1-step", "1-step"), (f"{s.horizon}-step", "multi-step")):
            store: dict[str, list[np.ndarray]] = defaultdict(list)
            for r in results:
                for key, vals in r[part].items():
                    store[key].append(vals)
            table: dict[str, Any] = {}
            curve: dict[str, Any] = {}
            for key, chunks in store.items():
                name, metric = key.split("/")
                arr = np.concatenate(chunks, axis=0)  # (n, horizon)
                table.setdefault(name, {})[metric] = _mean(arr)
                if label != "1-step":
                    curve.setdefault(name, {})[metric] = [float(v) for v in arr.mean(axis=0)]
                table[name]["n"] = int(arr.shape[0])
            if pixel is None:
                table["model"] = NOT_APPLICABLE
            res[label] = table
            if curve:
                res[f"{label} curve"] = curve
        out[split] = res
    return out
