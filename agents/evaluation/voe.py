"""Section 2 of the evaluation, violation of expectation: per impossible kind, is the impossible twin of a matched
pair more surprising than the possible one (pairwise accuracy, AUROC, bootstrap intervals)?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tdwgym.agents import metrics as M
from tdwgym.agents.curiosity import actions_to_vectors
from tdwgym.agents.evaluation.observer import observer_surprise, spliced_observer_surprise
from tdwgym.agents.evaluation.plan import (
    EvalEpisode,
    EvalPlan,
    _env_kwargs,
    _mean,
    clips_surprise,
    model_frames,
    needed_passes,
    stream_surprise,
)
from tdwgym.agents.external import ExternalModel
from tdwgym.envs.twins import QUADRUPLET_KINDS, make_pairs, make_quadruplets


def _baseline_surprise(frames: np.ndarray, name: str) -> np.ndarray:
    """Per-step 1-step MSE of a pixel baseline (its "surprise") along ``(T, H, W, 3)`` uint8 frames."""
    true = M.as_unit_float(frames)
    errs = []
    for t in range(len(true) - 1):
        ctx = true[max(t - 1, 0) : t + 1]
        pred = M.copy_last_rollout(ctx, 1) if name == "copy_last" else M.constant_velocity_rollout(ctx, 1)
        errs.append(float(M.mse(pred[0], true[t + 1])))
    return np.asarray(errs)


def motion_energy(frames: np.ndarray) -> np.ndarray:
    """Per-step total absolute pixel change along ``(T, H, W, 3)`` uint8 frames (``T - 1`` values, [0, 1] scale,
    summed over pixels): a score that knows nothing but how much moves."""
    x = M.as_unit_float(frames)
    return np.abs(np.diff(x, axis=0)).reshape(len(x) - 1, -1).sum(1)


VOE_HEADLINE = "mean"
"""The aggregation of the headline VoE figures, declared before measuring on the evaluation seeds: chosen on the
development seeds 90000-90011 (Occlusion levels 0 and 1, the pretrained model), where the mean was at least as
accurate as the max on every kind (docs/world_models.md). Both are reported."""

VOE_REDRAWS = 4
"""Seeds tried after the first when a pair's twins never differ visibly (then the next seed is drawn)."""

METERS = ("copy_last", "motion")
"""Confound meters reported beside every model: copy-last (the MSE of predicting the previous frame) and the
motion energy (total frame-to-frame change). They know no physics: a kind on which either scores outside
:data:`CONFOUND_BAND` measures how much moves, not what is possible, and is flagged."""

CONFOUND_BAND = (0.35, 0.65)
"""Headline scores of the meters within which a kind counts as a test of physics."""

CONTROL = "observer"
"""The positive control (:mod:`tdwgym.agents.evaluation.observer`): a hand-built object tracker that learns
nothing; it shows what the twins demand."""


def scorers(plan: EvalPlan) -> tuple[str, ...]:
    """The scorers of the VoE tables: the model, the positive control (when enabled), the meters and the
    constant-velocity pixel baseline."""
    control = (CONTROL,) if plan.settings.voe_observer else ()
    return ("model", *control, *METERS, "constant_velocity")


def draw_twins(
    env_id: str,
    seed: int,
    kind: str,
    design: str,
    resolution: tuple[int, int],
    post_frames: int,
    passes: tuple[str, ...] = (),
    **env_kwargs: Any,
) -> tuple[Any, int]:
    """The VoE item of ``seed`` (a :class:`~tdwgym.envs.twins.Quadruplet` when ``design`` is ``"quadruplet"``, else
    a :class:`~tdwgym.envs.twins.MatchedPair`; still camera) and how many seeds were re-drawn: seed ``seed +
    100_003 * r`` for ``r`` up to :data:`VOE_REDRAWS`, the next one while ``make_pairs``/``make_quadruplets`` leave
    the kind out (its twins never differ visibly) or a spliced clip equals its possible counterpart after the event.
    The rule reads the clips only, never a scorer. The item is None when no seed gave one."""
    for redraw in range(VOE_REDRAWS + 1):
        make = make_quadruplets if design == "quadruplet" else make_pairs
        found = make(
            env_id,
            seed + 100_003 * redraw,
            kinds=kind,
            camera="static",
            resolution=tuple(resolution),
            post_frames=post_frames,
            passes=("rgb", *passes),
            **env_kwargs,
        )
        if not found:
            continue
        if design != "quadruplet":
            return found[0], redraw
        q = found[0]
        (a, b), (i1, i2) = q.possible, q.impossible
        if _differs(a, i1, q.event_frame) and _differs(b, i2, q.event_frame):
            return q, redraw
    return None, VOE_REDRAWS


def _differs(a: np.ndarray, b: np.ndarray, frame: int) -> bool:
    return bool(np.any(a[frame:] != b[frame:]))


def _draw(plan: EvalPlan, ep: EvalEpisode, design: str, passes: tuple[str, ...]) -> tuple[Any, int]:
    (kind,) = ep.group
    return draw_twins(
        plan.env_id,
        ep.seed,
        kind,
        design,
        tuple(plan.loaded.model.resolution),
        plan.settings.voe_post_frames,
        passes,
        **{**_env_kwargs(plan.env_kwargs, "resolution"), "split": plan.settings.voe_split},
    )


def design_of(plan: EvalPlan, kind: str) -> str:
    """``"quadruplet"`` where the kind allows one (IntPhys: every frame after the event appears once among the
    possible clips and once among the impossible ones, so low-level cues cancel) and the settings ask for them,
    else ``"pair"``."""
    return "quadruplet" if plan.settings.voe_quadruplets and kind in QUADRUPLET_KINDS else "pair"


def draw_item(plan: EvalPlan, ep: EvalEpisode, passes: tuple[str, ...] = ()) -> tuple[str, Any, list, dict, int]:
    """The VoE item of an episode: ``(design, item, clips, passes, redrawn)``: a quadruplet (clips ``A, B, A|B,
    B|A``) or a pair (clips ``possible, impossible``), the clips' other render ``passes`` by name in the same order,
    and how many seeds were re-drawn; ``item`` is None when no seed gave clips that differ."""
    (kind,) = ep.group
    design = design_of(plan, kind)
    item, redraw = _draw(plan, ep, design, passes)
    if item is None:
        return design, None, [], {}, redraw
    clips, extra = item_clips(item)
    return design, item, clips, extra, redraw


def item_clips(item: Any) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """The clips of a VoE item, possible first (a quadruplet's ``A, B, A|B, B|A``, a pair's ``possible,
    impossible``), and its other render passes by name in the same order."""
    if isinstance(item.possible, tuple):
        return [*item.possible, *item.impossible], {k: [*v[0], *v[1]] for k, v in item.passes.items()}
    return [item.possible, item.impossible], {k: list(v) for k, v in item.passes.items()}


def run_section_episode(plan: EvalPlan, ep: EvalEpisode) -> dict[str, Any]:
    """One VoE item (still camera, test_id scene, ``voe_post_frames`` steps past the event): an IntPhys quadruplet
    (:func:`tdwgym.envs.twins.make_quadruplets`) where the kind allows it, else a matched pair
    (:func:`tdwgym.envs.twins.make_pairs`), re-drawn until its clips differ visibly. Returns each scorer's per-step
    surprise of every clip (possible clips first) over the window from the event frame on."""
    model = plan.loaded.model
    passes = needed_passes(model)
    observer = plan.settings.voe_observer
    wanted = tuple(dict.fromkeys((*passes, *(("segmentation", "depth") if observer else ()))))
    design, item, clips, extra, redraw = draw_item(plan, ep, wanted)
    if item is None:
        return {"skipped": f"no seed of {VOE_REDRAWS + 1} gave clips that differ visibly", "design": design}
    n, t = len(clips), len(clips[0])
    actions = actions_to_vectors(np.asarray([0] * (t - 1)), plan.action_space)  # no-ops: the camera stands still
    # the model sees whole clips (its memory needs what came before); the clips are compared from the event frame
    # on (entry t is the surprise of frame t + 1), where they can differ
    window = slice(max(item.event_frame - 1, 0), None)
    spliced = is_spliced(clips, extra, item.event_frame)
    if isinstance(model, ExternalModel):
        model_passes = {k: np.stack(extra[k]) for k in passes}
        scores = clips_surprise(model, np.stack(clips), np.stack([actions] * n), model_passes)
    else:
        x = item_frames(model, clips, extra, passes, item.event_frame, spliced)
        scores = stream_surprise(model, x, np.stack([actions] * n))
    out: dict[str, Any] = {
        "design": design,
        "seed": item.seed,
        "event_frame": item.event_frame,
        "extended": getattr(item, "extended", 0),
        "redrawn": redraw,
        "model": [s[window] for s in scores],
        **reference_scores(clips, extra, item.event_frame, float(plan.settings.fov), observer, spliced),
    }
    return out


def item_frames(
    model: Any,
    clips: list[np.ndarray],
    extra: dict[str, list[np.ndarray]],
    passes: tuple[str, ...],
    cut: int,
    spliced: bool,
) -> torch.Tensor:
    """A world model's frames (:meth:`~tdwgym.agents.models.WorldModel.frames_from`) of an item's clips, ``(N, T,
    *frame_shape)``, from RGB and the ``passes`` it reads: of ``spliced`` clips (:func:`is_spliced` at ``cut``) the
    two possible clips' frames, spliced as the clips are (a model's frames are per frame)."""
    if spliced:
        a, b = model_frames(model, np.stack(clips[:2]), {k: np.stack(extra[k][:2]) for k in passes})
        return torch.stack([a, b, _splice(a, b, cut), _splice(b, a, cut)])
    return model_frames(model, np.stack(clips), {k: np.stack(extra[k]) for k in passes})


def _splice(x: Any, y: Any, frame: int) -> Any:
    """``x`` up to ``frame``, then ``y`` (arrays or tensors, time first)."""
    return torch.cat([x[:frame], y[frame:]]) if isinstance(x, torch.Tensor) else np.concatenate([x[:frame], y[frame:]])


def is_spliced(clips: Sequence[np.ndarray], passes: dict[str, list[np.ndarray]], cut: int) -> bool:
    """Whether ``clips`` are a quadruplet's ``A, B, A|B, B|A`` spliced at frame ``cut``, in RGB and every other
    pass (then the scorers observe each clip's start once: :func:`reference_scores` with ``spliced``)."""
    if len(clips) != 4:
        return False
    for series in (clips, *passes.values()):
        a, b, ab, ba = series
        if not (len(a) == len(b) == len(ab) == len(ba)):
            return False
        if not (np.array_equal(ab, _splice(a, b, cut)) and np.array_equal(ba, _splice(b, a, cut))):
            return False
    return True


def reference_scores(
    clips: Sequence[np.ndarray],
    passes: dict[str, list],
    event_frame: int,
    fov: float,
    observer: bool = True,
    spliced: bool = False,
) -> dict[str, list[np.ndarray]]:
    """The per-step surprise of every clip under the scorers that need no model (copy-last, constant velocity,
    motion energy and, with ``observer``, the analytic observer, which reads ``passes["segmentation"]`` and
    ``passes["depth"]``), over the window from the event frame on (entry ``t`` scores frame ``t + 1``).
    ``spliced``: the clips are a quadruplet spliced at ``event_frame`` (:func:`is_spliced`); the observer then
    observes each start once (:func:`~tdwgym.agents.evaluation.observer.spliced_observer_surprise`, the same
    scores)."""
    window = slice(max(event_frame - 1, 0), None)
    out: dict[str, list[np.ndarray]] = {
        "copy_last": [_baseline_surprise(c, "copy_last")[window] for c in clips],
        "constant_velocity": [_baseline_surprise(c, "constant_velocity")[window] for c in clips],
        "motion": [motion_energy(c)[window] for c in clips],
    }
    if observer:
        seg, depth = passes["segmentation"], passes["depth"]
        if spliced:
            per_frame = list(spliced_observer_surprise(clips[:2], seg[:2], depth[:2], fov, event_frame))
        else:
            per_frame = [observer_surprise(c, seg[i], depth[i], fov) for i, c in enumerate(clips)]
        out[CONTROL] = [s[1:][window] for s in per_frame]
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


def quadruplet_metrics(
    per_step: Sequence[Sequence[np.ndarray]], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """VoE metrics of IntPhys quadruplets from the per-step surprise of their four clips ``(A, B, A|B, B|A)``
    (possible first; ``A|B`` is ``A`` up to the event, then ``B``).

    Returns:
        For ``"mean"`` and ``"max"`` aggregation: ``relative`` (IntPhys's relative score: the fraction of
        quadruplets whose two impossible clips together are more surprising than the two possible ones, ties 1/2)
        and its 95 % bootstrap interval, ``pairwise_accuracy`` over the matched pairs ``(A, A|B)`` and ``(B, B|A)``
        (clips that share their start), ``auroc`` over all impossible against all possible clips, and the mean
        clip surprise of each side.
    """
    out: dict[str, dict[str, Any]] = {}
    rng = np.random.default_rng(seed)
    for how in ("mean", "max"):
        agg = np.array([[M.aggregate_surprise(c, how) for c in q] for q in per_step], dtype=np.float64)
        pos_sum, imp_sum = agg[:, 0] + agg[:, 1], agg[:, 2] + agg[:, 3]
        rel = M.pairwise_accuracy(imp_sum, pos_sum)
        boot = [
            M.pairwise_accuracy(imp_sum[idx], pos_sum[idx])
            for idx in (rng.integers(0, len(agg), len(agg)) for _ in range(n_boot))
        ]
        pos, imp = agg[:, :2].ravel(), agg[:, 2:].ravel()
        out[how] = {
            "relative": rel,
            "relative_ci": [float(v) for v in np.percentile(boot, [2.5, 97.5])],
            "pairwise_accuracy": M.pairwise_accuracy(imp, pos),
            "auroc": M.auroc(imp, pos),
            "surprise_possible": _mean(pos),
            "surprise_impossible": _mean(imp),
        }
    return out


def _confounds(res: dict[str, Any], metric: str, head: str) -> list[str]:
    """The meters whose headline score falls outside :data:`CONFOUND_BAND`."""
    lo, hi = CONFOUND_BAND
    return [m for m in METERS if m in res and not lo <= res[m][head][metric] <= hi]


def summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 2: violation of expectation per impossible kind: on quadruplets (headline: IntPhys's relative
    score) where the kind allows them, else on matched pairs (headline: pairwise accuracy); AUROC and bootstrap
    intervals; by mean and by max over the window from the event frame on (the headline aggregation is
    :data:`VOE_HEADLINE`); every scorer of :func:`scorers`, and the kinds on which a confound meter leaves
    :data:`CONFOUND_BAND` flagged."""
    names = scorers(plan)
    out: dict[str, Any] = {
        "env_id": plan.env_id,
        "level": plan.env_kwargs.get("level", 0),
        "pairs_per_kind": plan.settings.voe_pairs,
        "headline": VOE_HEADLINE,
        "window": "from the event frame to the end of the clip",
        "split": plan.settings.voe_split,
        "confound_band": list(CONFOUND_BAND),
        "scorers": list(names),
        "kinds": {},
    }
    if not plan.voe_kinds:
        out["note"] = f"{plan.env_id} stages no impossible events (SUPPORTED_IMPOSSIBLE is empty)"
        return out
    positives: dict[str, list] = defaultdict(list)
    negatives: dict[str, list] = defaultdict(list)
    drawn = observable = 0
    for kind in plan.voe_kinds:
        results = [r for ep, r in done if ep.group == (kind,)]
        items = [r for r in results if "skipped" not in r]
        first = sum(1 for r in items if r["extended"] == 0 and r["redrawn"] == 0)
        drawn, observable = drawn + len(results), observable + first
        design = design_of(plan, kind)
        metric = "relative" if design == "quadruplet" else "pairwise_accuracy"
        res: dict[str, Any] = {
            "design": design,
            "headline_metric": metric,
            "n_items": len(items),
            "n_pairs": len(items),
            "observable_fraction": first / len(results) if results else None,
            "extended": sum(1 for r in items if r["extended"]),
            "redrawn": sum(1 for r in items if r["redrawn"]),
            "skipped": len(results) - len(items),
        }
        if items:
            for name in names:
                clips = [r[name] for r in items]
                res[name] = quadruplet_metrics(clips) if design == "quadruplet" else voe_metrics(clips)
                half = len(clips[0]) // 2
                for c in clips:
                    negatives[name] += [M.aggregate_surprise(x, VOE_HEADLINE) for x in c[:half]]
                    positives[name] += [M.aggregate_surprise(x, VOE_HEADLINE) for x in c[half:]]
            res["confounded"] = _confounds(res, metric, VOE_HEADLINE)
        out["kinds"][kind] = res
    out["observable_fraction"] = observable / drawn if drawn else None
    out["all"] = {
        name: {VOE_HEADLINE: {"auroc": M.auroc(positives[name], negatives[name])}} for name in names if positives[name]
    }
    out["confounded_kinds"] = [k for k, r in out["kinds"].items() if r.get("confounded")]
    if not any(r["n_items"] for r in out["kinds"].values()):
        out["note"] = (
            f"VoE skipped: none of the {drawn} item(s) drawn ({', '.join(plan.voe_kinds)}) gave clips that differ "
            "visibly, so nothing was scored (a larger resolution or more --voe-pairs may help)."
        )
    return out
