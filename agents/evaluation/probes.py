"""Section 3 of the evaluation, physical-law probes (after Kang et al. 2024): the velocity of an object parsed from
the model's open-loop predicted frames against the projected ground truth, beside the parser's floor on true
frames."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from tdwgym.agents import metrics as M
from tdwgym.agents.evaluation.plan import (
    HELD_OUT_SPLITS,
    NOT_APPLICABLE,
    PROBE_CONTEXT,
    PROBE_KEYWORDS,
    PROBE_TOLERANCE,
    SHARED_KWARGS,
    Episode,
    EvalEpisode,
    EvalPlan,
    _make_env,
    _mean,
    model_frames,
    pixel_predictor,
    rollout_predictions,
    run_episode,
)


def _probe_clip(plan: EvalPlan, ep_: EvalEpisode) -> Episode:
    """The clip of a probe episode (the run's env settings apply to its own env; other scenarios get only the
    shared base-class ones)."""
    _, env_id, split = ep_.group
    env_kwargs = plan.env_kwargs
    kw = env_kwargs if env_id == plan.env_id else {n: v for n, v in env_kwargs.items() if n in SHARED_KWARGS}
    with contextlib.closing(_make_env(env_id, plan.loaded.model, kw, split=split)) as env:
        return run_episode(env, plan.settings.probe_frames - 1, ep_.seed)


def _factor_keys(labels: dict[str, Any]) -> list[str]:
    """Held-out factor keys of a test_ood scene: ``"speed:high"``, ``"size:low"``, ``"shape+color combination"``."""
    bands = labels.get("factor_bands") or {}
    factors = labels.get("ood_factors") or []
    keys = [f"{f}:{bands.get(f, 'held_out')}" for f in factors if bands.get(f) != "combination"]
    combo = [f for f in factors if bands.get(f) == "combination"]
    if combo or labels.get("ood_combination"):
        keys.append("+".join(combo) + " combination" if combo else "combination")
    return keys or ["(none)"]


def _probe_targets(ep: Episode) -> list[int]:
    """Object ids to track, best first: the parabola arcs of a gravity scene, the labelled event object, the rest."""
    ids = sorted(int(i) for i in ep.infos[0].get("objects", {}))
    motions = ep.labels.get("motions") or []
    first = [i + 1 for i, m in enumerate(motions) if m == "arc"] + [int(ep.labels.get("event_object", 1))]
    return list(dict.fromkeys([i for i in first if i in ids] + ids))


def _object_colour(ep: Episode, oid: int, t: int) -> np.ndarray | None:
    mask = ep.segmentation[t] == oid
    if mask.sum() < 2:
        return None
    return M.as_unit_float(ep.frames[t])[mask].mean(axis=0)


def run_section_episode(plan: EvalPlan, ep_: EvalEpisode) -> dict[str, Any]:
    """One probe clip: velocity errors of the target parsed from the model's predictions, the true frames (the
    floor) and a frozen last frame, against the projected ground truth; or why it was skipped."""
    model = plan.loaded.model
    pixel = pixel_predictor(model)
    _, env_id, split = ep_.group
    k = min(model.context_frames, PROBE_CONTEXT)
    h, w = model.resolution
    ep = _probe_clip(plan, ep_)
    oid, colour = next(
        ((o, c) for o in _probe_targets(ep) if (c := _object_colour(ep, o, k - 1)) is not None),
        (None, None),
    )
    if colour is None or oid is None:
        return {"skipped": "target not visible in the context frames"}
    gt = np.stack(
        [
            M.project_points(
                i["objects"][oid]["position"],
                i["camera"]["position"],
                i["camera"]["yaw"],
                i["camera"]["pitch"],
                ep.fov,
                w,
                h,
            )
            for i in ep.infos
        ]
    )
    window = slice(k, len(ep.frames))
    true_pos = M.color_mask_positions(ep.frames, colour, PROBE_TOLERANCE)
    row = {
        "seed": ep_.seed,
        "factors": _factor_keys(ep.labels),
        "floor": M.velocity_error(true_pos[window], gt[window]),
    }
    horizon = len(ep.frames) - k
    if horizon >= 2:
        ctx = M.as_unit_float(ep.frames[:k])
        row["copy_last"] = M.velocity_error(
            M.color_mask_positions(M.copy_last_rollout(ctx, horizon), colour, PROBE_TOLERANCE), gt[window]
        )
        if pixel is not None:
            pred = rollout_predictions(pixel, ep, [k - 1], horizon)[0]
            row["model"] = M.velocity_error(M.color_mask_positions(pred, colour, PROBE_TOLERANCE), gt[window])
        elif callable(getattr(model, "rollout_positions", None)) and oid <= model.frame_shape[0]:
            # an object model predicts where each object's centre will be: read off the target's slot
            tables = model_frames(
                model,
                ep.frames[None, :k],
                {"segmentation": ep.segmentation[None, :k]}
                | ({} if ep.depth is None else {"depth": ep.depth[None, :k]}),
            )
            acts = torch.from_numpy(np.asarray(ep.actions, dtype=np.float32))[None]
            centres = model.rollout_positions(tables, acts, horizon)[0, :, oid - 1].cpu().numpy()
            pixels = np.stack([(centres[:, 0] + 1) * w / 2, (centres[:, 1] + 1) * h / 2], 1)
            row["model"] = M.velocity_error(pixels, gt[window])
    return row


def summary(plan: EvalPlan, done: list[tuple[EvalEpisode, Any]]) -> dict[str, Any]:
    """Section 3: velocity error of objects parsed from predicted frames vs true frames (the floor)."""
    s = plan.settings
    pixel = pixel_predictor(plan.loaded.model)
    out: dict[str, Any] = {
        "unit": "pixels per frame",
        "frames": s.probe_frames,
        "clips": s.probe_clips,
        "probe_envs": plan.probe_envs,
        "kinds": {},
    }
    missing = [k for k in PROBE_KEYWORDS if k not in plan.probe_envs]
    if missing:
        out["missing_kinds"] = {k: "no registered env provides these clips" for k in missing}
    objects = callable(getattr(plan.loaded.model, "rollout_positions", None))
    if objects:
        out["note"] = "the model's velocities are read from its predicted object positions (its slot of the target)"
    elif pixel is None:
        out["note"] = NOT_APPLICABLE + " (only the parser's floor is reported)"
    for kind, env_id in plan.probe_envs.items():
        kind_out: dict[str, Any] = {"env_id": env_id}
        for split in HELD_OUT_SPLITS:
            rows = [r for ep, r in done if ep.group == (kind, env_id, split)]
            valid = [r for r in rows if "floor" in r]
            summary: dict[str, Any] = {"n": len(valid), "skipped": len(rows) - len(valid)}
            for name in ("model", "floor", "copy_last"):
                if any(name in r for r in valid):
                    summary[name] = _mean([r.get(name, np.nan) for r in valid])
                    summary[f"{name}_parsed"] = int(sum(np.isfinite(r.get(name, np.nan)) for r in valid))
            if pixel is None and not objects:
                summary["model"] = NOT_APPLICABLE
            if split == "test_ood":
                by: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
                for r in valid:
                    for key in r["factors"]:
                        for name in ("model", "floor", "copy_last"):
                            if name in r:
                                by[key][name].append(r[name])
                summary["by_factor"] = {
                    key: {name: _mean(v) for name, v in d.items()} | {"n": len(d["floor"])}
                    for key, d in sorted(by.items())
                }
            kind_out[split] = summary
        out["kinds"][kind] = kind_out
    return out
