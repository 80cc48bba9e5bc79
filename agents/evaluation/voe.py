"""Section 2 of the evaluation, violation of expectation: per impossible kind, is the impossible twin of a matched
pair more surprising than the possible one (pairwise accuracy, AUROC, bootstrap intervals)?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from tdwgym.agents import metrics as M
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.evaluation.plan import (
    BASELINES,
    EvalEpisode,
    EvalPlan,
    _env_kwargs,
    _mean,
    clips_surprise,
)
from tdwgym.envs.twins import make_pairs


def _baseline_surprise(frames: np.ndarray, name: str) -> np.ndarray:
    """Per-step 1-step MSE of a pixel baseline (its "surprise") along ``(T, H, W, 3)`` uint8 frames."""
    true = M.as_unit_float(frames)
    errs = []
    for t in range(len(true) - 1):
        ctx = true[max(t - 1, 0) : t + 1]
        pred = M.copy_last_rollout(ctx, 1) if name == "copy_last" else M.constant_velocity_rollout(ctx, 1)
        errs.append(float(M.mse(pred[0], true[t + 1])))
    return np.asarray(errs)


VOE_HEADLINE = "mean"
"""The aggregation of the headline VoE figures, declared before measuring on the evaluation seeds: chosen on the
development seeds 90000-90011 (Occlusion levels 0 and 1, the pretrained model), where the mean was at least as
accurate as the max on every kind (docs/world_models.md). Both are reported."""

VOE_REDRAWS = 4
"""Seeds tried after the first when a pair's twins never differ visibly (then the next seed is drawn)."""


def _draw_pair(plan: EvalPlan, ep: EvalEpisode) -> tuple[Any, int]:
    """The matched pair of a VoE episode and how many seeds were re-drawn (the pair is None if none differed)."""
    (kind,) = ep.group
    for redraw in range(VOE_REDRAWS + 1):
        found = make_pairs(
            plan.env_id,
            ep.seed + 100_003 * redraw,
            kinds=kind,
            camera="static",
            resolution=tuple(plan.loaded.model.frame_shape[1:]),
            post_frames=plan.settings.voe_post_frames,
            **{**_env_kwargs(plan.env_kwargs, "resolution"), "split": "test_id"},
        )
        if found:
            return found[0], redraw
    return None, VOE_REDRAWS


def run_section_episode(plan: EvalPlan, ep: EvalEpisode) -> dict[str, Any]:
    """One matched pair (:func:`tdwgym.envs.twins.make_pairs`, still camera, test_id scene, running
    ``voe_post_frames`` steps past the event, extended or re-drawn until the twins differ visibly): each scorer's
    per-step surprise of (possible, impossible) from the event frame on, and how the pair was drawn."""
    model = plan.loaded.model
    pair, redraw = _draw_pair(plan, ep)
    if pair is None:
        return {"skipped": f"no seed of {VOE_REDRAWS + 1} gave twins that differ visibly"}
    actions = actions_to_vectors(np.asarray(pair.actions), plan.action_space)  # no-ops: the camera stands still
    # the model sees whole clips (its memory needs what came before); the twins are compared from the event frame
    # on (entry t is the surprise of frame t + 1), where they can differ
    window = slice(max(pair.event_frame - 1, 0), None)
    both = clips_surprise(model, np.stack([pair.possible, pair.impossible]), np.stack([actions, actions]))
    out: dict[str, Any] = {
        "seed": pair.seed,
        "event_frame": pair.event_frame,
        "extended": pair.extended,
        "redrawn": redraw,
        "model": (both[0][window], both[1][window]),
    }
    for b in BASELINES:
        out[b] = (_baseline_surprise(pair.possible, b)[window], _baseline_surprise(pair.impossible, b)[window])
    return out


def bootstrap_ci(
    impossible: Sequence[float], possible: Sequence[float], n: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """Bootstrap confidence intervals (pairs resampled with replacement) of pairwise accuracy and AUROC."""
    imp, pos = np.asarray(impossible, dtype=np.float64), np.asarray(possible, dtype=np.float64)
    rng = np.random.default_rng(seed)
    accs, aucs = [], []
    for _ in range(n):
        idx = rng.integers(0, len(imp), len(imp))
        accs.append(M.pairwise_accuracy(imp[idx], pos[idx]))
        aucs.append(M.auroc(imp[idx], pos[idx]))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {
        "pairwise_accuracy_ci": [float(v) for v in np.percentile(accs, q)],
        "auroc_ci": [float(v) for v in np.percentile(aucs, q)],
    }


def voe_metrics(per_step: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """VoE metrics of matched pairs from their per-step surprise (over the window where the twins can differ).

    Args:
        per_step: One ``(possible, impossible)`` pair of per-step surprise arrays per matched pair.

    Returns:
        For ``"mean"`` and ``"max"`` aggregation over time: ``pairwise_accuracy``, ``auroc`` (impossible clips
        as positives), their 95 % bootstrap intervals, and the mean clip surprise of each side.
    """
    out: dict[str, dict[str, Any]] = {}
    for how in ("mean", "max"):
        pos = [M.aggregate_surprise(p, how) for p, _ in per_step]
        imp = [M.aggregate_surprise(i, how) for _, i in per_step]
        out[how] = {
            "pairwise_accuracy": M.pairwise_accuracy(imp, pos),
            "auroc": M.auroc(imp, pos),
            **bootstrap_ci(imp, pos),
            "surprise_possible": _mean(pos),
            "surprise_impossible": _mean(imp),
        }
    return out


def summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 2: violation of expectation per impossible kind (pairwise accuracy, AUROC and their bootstrap
    intervals, by mean and by max over the window from the event frame on; the headline is
    :data:`VOE_HEADLINE`)."""
    out: dict[str, Any] = {
        "env_id": plan.env_id,
        "level": plan.env_kwargs.get("level", 0),
        "pairs_per_kind": plan.settings.voe_pairs,
        "headline": VOE_HEADLINE,
        "window": "from the event frame to the end of the clip",
        "kinds": {},
    }
    if not plan.voe_kinds:
        out["note"] = f"{plan.env_id} stages no impossible events (SUPPORTED_IMPOSSIBLE is empty)"
        return out
    all_pairs: dict[str, list] = defaultdict(list)
    drawn = observable = 0
    for kind in plan.voe_kinds:
        results = [r for ep, r in done if ep.group == (kind,)]
        pairs = [r for r in results if "skipped" not in r]
        first = sum(1 for r in pairs if r["extended"] == 0 and r["redrawn"] == 0)
        drawn, observable = drawn + len(results), observable + first
        res: dict[str, Any] = {
            "n_pairs": len(pairs),
            "observable_fraction": first / len(results) if results else None,
            "extended": sum(1 for r in pairs if r["extended"]),
            "redrawn": sum(1 for r in pairs if r["redrawn"]),
            "skipped": len(results) - len(pairs),
        }
        if pairs:
            for name in ("model", *BASELINES):
                per_step = [r[name] for r in pairs]
                res[name] = voe_metrics(per_step)
                all_pairs[name] += per_step
        out["kinds"][kind] = res
    out["observable_fraction"] = observable / drawn if drawn else None
    out["all"] = {name: voe_metrics(per_step) for name, per_step in all_pairs.items()}
    return out
