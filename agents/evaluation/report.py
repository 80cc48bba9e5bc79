"""The evaluation report as files: ``report.json`` values, ``report.md`` and the PNG plots."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.agents.evaluation.plan import (
    BASELINES,
    NOT_APPLICABLE,
)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def write_markdown(report: dict[str, Any], path: Path, plots: dict[str, str]) -> Path:
    """``report.md``: the report's tables and plots."""
    meta = report["meta"]
    lines = [
        f"# World-model evaluation: {meta['model']}",
        "",
        f"env `{meta['env_id']}`, model `{meta['model_name']}` (frames {meta['frame_shape']}, "
        f"k={meta['context_frames']}), {meta['wall_time_s']:.0f} s on {meta['device']}.",
        "",
    ]
    pred = report["prediction"]
    lines += [
        "## 1. Prediction quality",
        "",
        f"{pred['episodes']} held-out episodes of {pred['frames']} steps per split, policy `{pred['policy']}`. "
        "MSE and MAE are summed over the pixels of a frame ([0, 1] images); the multi-step row averages "
        f"the {pred['horizon']} predicted frames (the model rolled on its own predictions).",
        "",
    ]
    if not pred["pixel_model"]:
        lines += [f"**Model pixel metrics: {NOT_APPLICABLE}.** Baselines shown for reference.", ""]
    lines += ["| split | horizon | predictor | MSE | MAE | PSNR (dB) | SSIM |", "|---|---|---|---|---|---|---|"]
    for split in ("test_id", "test_ood"):
        for label in ("1-step", f"{pred['horizon']}-step"):
            for name in ("model", *BASELINES):
                row = pred.get(split, {}).get(label, {}).get(name)
                if row is None:
                    continue
                if isinstance(row, str):
                    lines.append(f"| {split} | {label} | {name} | n/a | n/a | n/a | n/a |")
                    continue
                lines.append(
                    f"| {split} | {label} | {name} | {_fmt(row.get('mse'))} | {_fmt(row.get('mae'))} | "
                    f"{_fmt(row.get('psnr'))} | {_fmt(row.get('ssim'))} |"
                )
    if "prediction" in plots:
        lines += ["", f"![prediction error by horizon]({plots['prediction']})"]
    voe = report["voe"]
    lines += ["", "## 2. Violation of expectation", ""]
    if voe.get("note"):
        lines += [voe["note"]]
        if "voe" in plots:
            lines += ["", f"![VoE]({plots['voe']})"]
        lines += [""]
    else:
        head = voe.get("headline", "mean")
        other = "mean" if head == "max" else "max"
        obs = voe.get("observable_fraction")
        lo, hi = voe.get("confound_band", (0.35, 0.65))
        lines += [
            f"Up to {voe['pairs_per_kind']} items per kind (`{voe['env_id']}` level {voe.get('level', 0)}, still "
            f"camera, {voe.get('split', 'test_id')} scenes): IntPhys quadruplets where the kind allows them (two "
            "possible clips and two "
            "impossible ones spliced from them at the event, so every frame after it appears once on each side; "
            "the headline is the **relative score**, the fraction of quadruplets whose impossible clips together "
            "are more surprising), else matched pairs (headline: pairwise accuracy). Ties count 1/2; chance is 0.5. "
            f"The scorers see each whole clip; surprise is compared {voe.get('window', 'over the clip')}, "
            f"aggregated by **{head}** (declared before measuring) and by {other}. Beside the model: the analytic "
            "`observer` (a hand-built tracker that learns nothing: what the items demand), and two confound meters "
            f"that know no physics, `copy_last` and `motion` (total frame-to-frame change): a kind on which either "
            f"scores outside {lo}-{hi} measures how much moves, and is marked with a dagger. "
            + (f"{obs:.0%} of the items were observable as first drawn." if obs is not None else ""),
            "",
            f"| kind | design | scorer | headline ({head}) | 95 % CI | pairwise acc | AUROC | headline ({other}) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for kind, res in voe["kinds"].items():
            metric = res.get("headline_metric", "pairwise_accuracy")
            flag = " \u2020" if res.get("confounded") else ""
            if not res.get("n_items"):
                lines.append(
                    f"| {kind} | {res.get('design', 'pair')} | – | skipped: none of {res.get('skipped', 0)} item(s) "
                    "gave clips that differ visibly | | | | |"
                )
            for name in voe.get("scorers", ("model",)):
                r = res.get(name)
                if r is None:
                    continue
                h, o = r[head], r[other]
                lo_ci, hi_ci = h.get(f"{metric}_ci") or (None, None)
                ci = "" if lo_ci is None else f"{lo_ci:.2f}-{hi_ci:.2f}"
                lines.append(
                    f"| {kind}{flag} | {res.get('design', 'pair')} | {name} | {_fmt(h[metric], 3)} | {ci} | "
                    f"{_fmt(h['pairwise_accuracy'], 3)} | {_fmt(h['auroc'], 3)} | {_fmt(o[metric], 3)} |"
                )
        if voe.get("all"):
            cells = ", ".join(f"{n} {_fmt(r[head]['auroc'], 3)}" for n, r in voe["all"].items())
            lines += ["", f"AUROC over all kinds' clips ({head}): {cells}."]
        if voe.get("confounded_kinds"):
            lines += [
                "",
                "\u2020 A confound meter left the band on: " + ", ".join(voe["confounded_kinds"]) + ". These kinds "
                "are reported, not counted as tests of physics.",
            ]
        if "voe" in plots:
            lines += ["", f"![VoE]({plots['voe']})"]
    probes = report["probes"]
    lines += [
        "",
        "## 3. Physical-law probes (Kang et al. 2024)",
        "",
        f"Velocity error in {probes['unit']} of the target object, parsed by a colour mask from the model's "
        "open-loop predictions (`model`), from the true frames (`floor`: the parser's own error) and from a "
        "frozen last frame (`copy_last`), against the projected ground truth. A clip whose predicted frames "
        "never show the object's colour has no model velocity (see `parsed`).",
        "",
    ]
    if probes.get("note"):
        lines += [probes["note"], ""]
    if probes.get("missing_kinds"):
        lines += ["Not measured (no env provides the clips): " + ", ".join(probes["missing_kinds"]) + ".", ""]
    lines += ["| kind | split | factor | n | model | floor | copy_last |", "|---|---|---|---|---|---|---|"]
    for kind, res in probes["kinds"].items():
        for split in ("test_id", "test_ood"):
            r = res.get(split, {})
            model_cell = _fmt(r.get("model"), 3)
            if "model_parsed" in r:
                model_cell += f" ({r['model_parsed']}/{r.get('n', 0)} parsed)"
            lines.append(
                f"| {kind} | {split} | all | {r.get('n', 0)} | {model_cell} | "
                f"{_fmt(r.get('floor'), 3)} | {_fmt(r.get('copy_last'), 3)} |"
            )
            for key, b in (r.get("by_factor") or {}).items():
                lines.append(
                    f"| {kind} | {split} | {key} | {b.get('n', 0)} | {_fmt(b.get('model'), 3)} | "
                    f"{_fmt(b.get('floor'), 3)} | {_fmt(b.get('copy_last'), 3)} |"
                )
    if "probes" in plots:
        lines += ["", f"![probes]({plots['probes']})"]
    ex = report["exploration"]
    lines += [
        "",
        "## 4. Exploration",
        "",
        f"{ex['episodes']} episode(s) of {ex['steps']} steps per policy (test_id scenes).",
        "",
        "| policy | pushes moved / 1k steps | pushes hit | objects seen / total | frames with object | "
        "floor coverage |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in ex["policies"].items():
        lines.append(
            f"| {name} | {_fmt(r['pushes_moved_per_1k'], 3)} | {_fmt(r['pushes_hit'], 3)} | "
            f"{_fmt(r['objects_seen'], 3)} / {_fmt(r['objects_total'], 3)} | "
            f"{_fmt(r['frames_with_object'], 3)} | {_fmt(r['floor_coverage'], 3)} |"
        )
    if ex.get("note"):
        lines += ["", ex["note"]]
    path.write_text("\n".join(lines) + "\n")
    return path


def voe_bars(voe: dict[str, Any]) -> tuple[list[str], dict[str, list[float]]]:
    """What the VoE plot draws: the kinds (x axis) and, per scorer that scored any kind, its headline value on each
    kind (NaN where the kind was skipped: no items to score)."""
    kinds = list(voe.get("kinds", {}))
    head = voe.get("headline", "mean")
    bars: dict[str, list[float]] = {}
    for name in voe.get("scorers", ("model", *BASELINES)):
        vals = []
        for kd in kinds:
            res = voe["kinds"][kd]
            v = res.get(name, {}).get(head, {}).get(res.get("headline_metric"))
            vals.append(np.nan if v is None else float(v))
        if not all(np.isnan(vals)):
            bars[name] = vals
    return kinds, bars


def write_plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG plots next to the report; returns section -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    pred = report["prediction"]
    label = f"{pred['horizon']}-step curve"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, split in zip(axes, ("test_id", "test_ood"), strict=True):
        for name, curve in pred.get(split, {}).get(label, {}).items():
            ax.plot(range(1, len(curve["mse"]) + 1), curve["mse"], marker="o", label=name)
        ax.set_title(split)
        ax.set_xlabel("prediction step")
        ax.set_ylabel("MSE (summed over pixels)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "prediction.png", dpi=90)
    plt.close(fig)
    plots["prediction"] = "prediction.png"

    voe = report["voe"]
    if voe.get("kinds"):
        kinds, bars = voe_bars(voe)
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(kinds) + 2), 3.4))
        width = 0.8 / max(len(bars), 1)
        head = voe.get("headline", "mean")
        for j, (name, vals) in enumerate(bars.items()):
            drawn = ax.bar(np.arange(len(kinds)) + j * width, np.nan_to_num(vals), width, label=name)
            # every measured value written on its bar, so a score of 0 reads as 0, not as a missing bar
            ax.bar_label(drawn, ["" if np.isnan(v) else f"{v:.2f}" for v in vals], fontsize=6, padding=1)
        middle = 0.4 - width / 2 if bars else 0.0  # the middle of a kind's group of bars
        for i, kind in enumerate(kinds):
            if voe["kinds"][kind].get("n_items", 0) == 0:
                ax.text(i + middle, 0.5, "skipped:\nno clips", ha="center", va="center", fontsize=8)
        if not bars:
            ax.set_xlim(-0.6, len(kinds) - 0.4)
            ax.set_title(voe.get("note", "VoE skipped: no kind gave clips to score"), fontsize=8, wrap=True)
        ax.axhline(0.5, color="grey", ls="--", lw=1)
        ax.set_xticks(np.arange(len(kinds)) + middle, kinds, rotation=20)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(f"relative score / pairwise accuracy ({head})")
        if bars:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "voe.png", dpi=90)
        plt.close(fig)
        plots["voe"] = "voe.png"

    probes = report["probes"]
    if probes.get("kinds"):
        labels, series = [], defaultdict(list)
        for kind, res in probes["kinds"].items():
            for split in ("test_id", "test_ood"):
                labels.append(f"{kind}\n{split}")
                for name in ("model", "floor", "copy_last"):
                    v = res.get(split, {}).get(name)
                    series[name].append(np.nan if v is None or isinstance(v, str) else v)
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(labels) + 2), 3.4))
        width = 0.8 / 3
        for j, (name, vals) in enumerate(series.items()):
            ax.bar(np.arange(len(labels)) + j * width, vals, width, label=name)
        ax.set_xticks(np.arange(len(labels)) + width, labels, fontsize=8)
        ax.set_ylabel("velocity error (px/frame)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "probes.png", dpi=90)
        plt.close(fig)
        plots["probes"] = "probes.png"
    return plots
