"""The analytic observer on Occlusion's VoE items, and why it fails where it fails.

    python scripts/observer_diagnosis.py --levels 0 1 2 --items 24 --doc docs/results/DATE-observer.md

Draws the items ``tdwgym eval`` draws (IntPhys quadruplets of the hidden kinds, still camera, ``--split`` scenes,
seeds ``10,000 + 50,000 + 1,000 * kind + i`` as the evaluation's, re-drawn by the same rule:
:func:`tdwgym.agents.evaluation.voe.draw_twins`), scores them with the analytic observer (the positive control) and
the confound meters copy-last and motion energy (:func:`tdwgym.agents.evaluation.voe.reference_scores`; no world
model is needed), and writes one page: per level and kind the observer's pairwise accuracy and relative score
beside the meters', how many items were extended or re-drawn, and, for every pair the observer ranks wrongly, the
reason read from the clips and the observer's terms:

* ``not visible``: the possible and the impossible clip show the same objects in the same places from the event
  on (segmentation; only shading differs): nothing an observer sees tells them apart;
* ``barely visible``: they differ in fewer than :data:`MIN_FRAMES` frames (the object re-emerges at the clip's
  end: the scoring window);
* ``appears in the possible clip``: the possible clip itself shows an object coming from nowhere (first seen
  after frame 0 away from the image border);
* ``track``: the difference is in view, and the observer's own terms say what went wrong (which term made the
  possible clip surprising, or the impossible one not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import shlex
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tdwgym.agents import metrics as M
from tdwgym.agents.evaluation.observer import observer_surprise
from tdwgym.agents.evaluation.voe import (
    CONFOUND_BAND,
    VOE_HEADLINE,
    draw_twins,
    item_clips,
    quadruplet_metrics,
    reference_scores,
)
from tdwgym.sim.scene import DEFAULT_FOV

ENV_ID = "TDWRoom-Occlusion-v0"
KINDS = ("vanish", "appear", "teleport", "shape_change", "color_change")
SCORERS = ("observer", "copy_last", "motion")
MIN_PIXELS = 4
"""Pixels of segmentation that must differ for a frame to count as showing the difference."""
MIN_FRAMES = 8
"""Frames that must show the difference for a pair to count as visible (below: ``barely visible``)."""


def _term_sums(terms: list[dict], start: int) -> dict[str, float]:
    """Summed observer terms from frame ``start`` on, by kind (``seen``, ``hidden``, ``new``, ``color``, ...)."""
    out: dict[str, float] = defaultdict(float)
    for frame in terms[start:]:
        for name, value in frame.items():
            out[name.rstrip("0123456789-")] += float(value)
    return out


def diagnose(
    possible: tuple[np.ndarray, np.ndarray, np.ndarray],
    impossible: tuple[np.ndarray, np.ndarray, np.ndarray],
    event_frame: int,
    fov: float = DEFAULT_FOV,
) -> tuple[str, str]:
    """``(reason, detail)`` for a pair the observer ranks wrongly; each clip is ``(rgb, segmentation, depth)``."""
    seg_p, seg_i = possible[1], impossible[1]
    differ = (seg_p[event_frame:] != seg_i[event_frame:]).reshape(len(seg_p) - event_frame, -1).sum(1)
    shown = int((differ >= MIN_PIXELS).sum())
    if shown == 0:
        return "not visible", f"segmentation identical from the event on ({int(differ.max())} px at most)"
    if shown < MIN_FRAMES:
        first = event_frame + int(np.argmax(differ >= MIN_PIXELS))
        return "barely visible", f"differ in {shown} frames (first {first}, clip ends {len(seg_p) - 1})"
    _, terms_p = observer_surprise(*possible, fov, return_terms=True)
    _, terms_i = observer_surprise(*impossible, fov, return_terms=True)
    H, W = seg_p.shape[1:]
    for t, frame in enumerate(terms_p):
        for name in frame:
            if name.startswith("new"):
                oid = int(name[3:])
                ys, xs = np.nonzero(seg_p[t] == oid)
                if len(xs) and xs.min() > 0 and ys.min() > 0 and xs.max() < W - 1 and ys.max() < H - 1:
                    return "appears in the possible clip", f"object {oid} first seen at frame {t}, not at the border"
    sp, si = _term_sums(terms_p, event_frame), _term_sums(terms_i, event_frame)
    keys = sorted(set(sp) | set(si))
    gap = {k: sp.get(k, 0.0) - si.get(k, 0.0) for k in keys}
    worst = max(gap, key=lambda k: gap[k]) if gap else "-"
    detail = ", ".join(f"{k} {sp.get(k, 0.0):.1f}/{si.get(k, 0.0):.1f}" for k in keys if sp.get(k) or si.get(k))
    return "track", f"possible/impossible nats from the event: {detail}; most against: {worst}"


def measure(level: int, kind: str, items: int, split: str, seed0: int, resolution: int, post_frames: int) -> dict:
    """Scores and diagnoses of ``items`` quadruplets of ``kind`` at ``level``."""
    ki = KINDS.index(kind)
    scores: dict[str, list] = defaultdict(list)
    fails, extended, redrawn, skipped = [], 0, 0, 0
    for i in range(items):
        seed = seed0 + 50_000 + 1000 * ki + i
        item, redraw = draw_twins(
            ENV_ID,
            seed,
            kind,
            "quadruplet",
            (resolution, resolution),
            post_frames,
            ("segmentation", "depth"),
            level=level,
            split=split,
        )
        if item is None:
            skipped += 1
            continue
        extended += bool(item.extended)
        redrawn += bool(redraw)
        clips, extra = item_clips(item)
        res = reference_scores(clips, extra, item.event_frame, DEFAULT_FOV)
        for name in SCORERS:
            scores[name].append(res[name])
        agg = [M.aggregate_surprise(x, VOE_HEADLINE) for x in res["observer"]]
        for p, q in ((0, 2), (1, 3)):
            if agg[q] > agg[p]:
                continue
            views = [(clips[c], extra["segmentation"][c], extra["depth"][c]) for c in (p, q)]
            reason, detail = diagnose(views[0], views[1], item.event_frame)
            fails.append(
                {
                    "seed": item.seed,
                    "pair": "A vs A|B" if p == 0 else "B vs B|A",
                    "event": item.event_frame,
                    "frames": len(clips[0]),
                    "surprise": (agg[p], agg[q]),
                    "reason": reason,
                    "detail": detail,
                }
            )
    metrics = {name: quadruplet_metrics(v)[VOE_HEADLINE] for name, v in scores.items()}
    return {
        "n": len(scores["observer"]),
        "extended": extended,
        "redrawn": redrawn,
        "skipped": skipped,
        "metrics": metrics,
        "fails": fails,
    }


def _flag(value: float) -> str:
    lo, hi = CONFOUND_BAND
    return f"{value:.2f}" + ("" if lo <= value <= hi else " †")


def main(argv: list[str] | None = None) -> int:
    """Measure, diagnose and write the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", nargs="+", type=int, default=[0, 1, 2], choices=[0, 1, 2, 3])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--items", type=int, default=24, help="quadruplets per kind and level (default 24)")
    parser.add_argument("--split", default="test_id", choices=["test_id", "test_ood"])
    parser.add_argument("--seed", type=int, default=10_000, help="the evaluation's first seed (default 10,000)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--post-frames", type=int, default=30, help="frames after the event (eval's default 30)")
    parser.add_argument("--workers", type=int, default=1, help="processes measuring (level, kind) cells at once")
    parser.add_argument("--doc", type=Path, default=Path(f"docs/results/{dt.date.today().isoformat()}-observer.md"))
    args = parser.parse_args(argv)
    if args.items < 1:
        parser.error("--items must be >= 1")
    command = f"python scripts/observer_diagnosis.py {shlex.join(argv if argv is not None else sys.argv[1:])}"
    start = time.perf_counter()
    rows, fail_rows, reasons = [], [], Counter()
    tasks = [(level, kind) for level in args.levels for kind in args.kinds]
    settings = (args.items, args.split, args.seed, args.resolution, args.post_frames)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(measure, *zip(*[(lv, k, *settings) for lv, k in tasks], strict=True)))
    else:
        results = [measure(lv, k, *settings) for lv, k in tasks]
    for (level, kind), r in zip(tasks, results, strict=True):
        m = r["metrics"]
        print(
            f"level {level} {kind}: n {r['n']} observer pairwise {m['observer']['pairwise_accuracy']:.2f} "
            f"relative {m['observer']['relative']:.2f}; copy-last {m['copy_last']['relative']:.2f}, motion "
            f"{m['motion']['relative']:.2f}; failures {len(r['fails'])}",
            flush=True,
        )
        cells = [
            f"{m['observer']['pairwise_accuracy']:.2f}",
            f"{m['observer']['relative']:.2f}",
            *(f"{_flag(m[s]['pairwise_accuracy'])} / {_flag(m[s]['relative'])}" for s in ("copy_last", "motion")),
        ]
        rows.append(
            f"| {level} | {kind} | {r['n']} | {' | '.join(cells)} | {r['extended']} | {r['redrawn']} | {r['skipped']} |"
        )
        for f in r["fails"]:
            reasons[f["reason"]] += 1
            fail_rows.append(
                f"| {level} | {kind} | {f['seed']} | {f['pair'].replace('|', chr(92) + '|')} | {f['event']} / "
                f"{f['frames']} | "
                f"{f['surprise'][0]:.2f} / {f['surprise'][1]:.2f} | {f['reason']} | {f['detail']} |"
            )
    minutes = (time.perf_counter() - start) / 60
    workers = f", {args.workers} processes" if args.workers > 1 else ""
    lines = [
        "# The analytic observer on Occlusion's VoE items",
        "",
        f"Written by `{command}` ({minutes:.0f} minutes on a shared 2-core CPU machine{workers}).",
        "",
        "The analytic observer (`tdwgym.agents.evaluation.observer`, the positive control: hand-built, learns "
        "nothing) and the confound meters on the items `tdwgym eval` draws: IntPhys quadruplets (clips `A`, `B`, "
        f"`A|B`, `B|A`), still camera, {args.split} scenes, {args.post_frames} frames past the event at least, "
        f"{args.resolution}x{args.resolution}, the evaluation's seeds and re-draw rule. Headline: the {VOE_HEADLINE} "
        "surprise from the event frame on (declared before measuring). *Pairwise* is the accuracy over the matched "
        "pairs `(A, A|B)` and `(B, B|A)`; *relative* is IntPhys's relative score (the two impossible clips together "
        "against the two possible ones). The meters' cells are pairwise / relative; a dagger marks a value outside "
        f"{CONFOUND_BAND[0]}-{CONFOUND_BAND[1]}. *Extended*: items whose clips were lengthened past the event so "
        "that the difference is in view; *re-drawn*: items whose first seed gave none (the next seed was drawn); "
        "*skipped*: no seed of five gave one. Target (issue 33): the observer >= 0.95 on every kind.",
        "",
        "| level | kind | n | observer pairwise | observer relative | copy-last | motion | extended | re-drawn "
        "| skipped |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Pairs the observer ranks wrongly",
        "",
        "Reasons: " + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none") + ". *Not visible* and "
        "*barely visible* are properties of the clips (segmentation of the possible against the impossible clip "
        f"from the event on; a frame shows the difference when {MIN_PIXELS} pixels or more differ, a pair needs "
        f"{MIN_FRAMES} such frames); *track* lists the observer's summed terms (nats, possible / impossible) from "
        "the event on.",
        "",
        "| level | kind | seed | pair | event / frames | surprise possible / impossible | reason | detail |",
        "|---|---|---|---|---|---|---|---|",
        *fail_rows,
        "",
    ]
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text("\n".join(lines))
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
