"""Violation-of-expectation and law-probe tables of a world model across scenarios, levels and splits.

    python scripts/world_model_voe.py --model pretrained --out docs/results/world_models_voe.md

For every scenario, level and split asked for, runs the evaluation's VoE section (``tdwgym.agents.evaluate``: still
camera, IntPhys quadruplets where the kind allows them, matched pairs elsewhere, the model beside the analytic
observer and the confound meters copy-last and motion energy) and, per split, the physical-law probes; writes one
markdown page with the tables, the settings, the wall time of each evaluation and the command that made it.
Reports already under ``OUT-eval/`` are reused (delete them to measure again).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tdwgym.agents.evaluate import VOE_HEADLINE, EvalSettings, evaluate

SCENARIOS = {
    "occlusion": "TDWRoom-Occlusion-v0",
    "collision": "TDWRoom-Collision-v0",
    "gravity": "TDWRoom-Gravity-v0",
    "stability": "TDWRoom-Stability-v0",
}
SCORERS = ("model", "observer", "copy_last", "motion")


def _cell(res: dict, name: str) -> str:
    row = res.get(name)
    if row is None:
        return "-"
    value = row[VOE_HEADLINE][res["headline_metric"]]
    return f"{value:.2f}"


def _evaluate(model: str, env_id: str, level: int, settings: EvalSettings, out: Path) -> tuple[dict, float]:
    """The report (reused when ``out`` holds one) and the wall time it took (0 when reused)."""
    if (out / "report.json").is_file():
        return json.loads((out / "report.json").read_text()), 0.0
    start = time.perf_counter()
    report = evaluate(model_path=model, env_id=env_id, env_kwargs={"level": level}, settings=settings, out=out)
    return report, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Evaluate and write the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pretrained", help="world-model file or 'pretrained' (default)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--levels", nargs="+", type=int, default=[0, 1, 2], choices=[0, 1, 2, 3])
    parser.add_argument("--splits", nargs="+", default=["test_id", "test_ood"], choices=["test_id", "test_ood"])
    parser.add_argument("--pairs", type=int, default=24, help="quadruplets or pairs per kind (default 24)")
    parser.add_argument("--probe-clips", type=int, default=12, help="probe clips per kind and split (default 12)")
    parser.add_argument("--probe-level", type=int, default=1, help="level of the probe clips (default 1)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/world_models_voe.md"))
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.probe_clips < 0:
        parser.error("--pairs must be >= 1 and --probe-clips >= 0")

    work = args.out.parent / f"{args.out.stem}-eval"
    lines = [
        f"# Violation of expectation and law probes: `{args.model}`",
        "",
        f"Written by `python scripts/world_model_voe.py {shlex.join(argv if argv is not None else sys.argv[1:])}`.",
        f"Headline per kind ({VOE_HEADLINE} surprise from the event frame on, declared before measuring): the "
        "IntPhys relative score on quadruplets (Occlusion's hidden kinds and the in-view kinds of the other "
        "scenarios), pairwise accuracy on matched pairs (`pass_through`, staged with matched motion). Beside the "
        "model: the analytic observer (hand-built, learns nothing: the positive control) and the confound meters "
        "copy-last and motion energy (a dagger marks a kind on which either leaves 0.35-0.65: such a kind measures "
        "how much moves, not physics). Still camera; seeds from 10,000 + 50,000 on (never used in training).",
        "",
        "| scenario | level | split | kind | design | n | model | observer | copy-last | motion |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    aurocs, timings = [], []
    for name in args.scenarios:
        for level in args.levels:
            for split in args.splits:
                settings = EvalSettings(
                    episodes=0, voe_pairs=args.pairs, probe_clips=0, exploration_episodes=0, voe_split=split
                )
                out = work / f"{name}-L{level}-{split}"
                report, wall = _evaluate(args.model, SCENARIOS[name], level, settings, out)
                timings.append((name, level, split, wall))
                voe = report["voe"]
                for kind, res in voe["kinds"].items():
                    if "model" not in res:
                        lines.append(f"| {name} | {level} | {split} | {kind} | - | 0 | - | - | - | - |")
                        continue
                    flag = " \u2020" if res.get("confounded") else ""
                    cells = " | ".join(_cell(res, s) for s in SCORERS)
                    lines.append(
                        f"| {name} | {level} | {split} | {kind}{flag} | {res['design']} | {res['n_items']} | {cells} |"
                    )
                all_ = voe.get("all", {})
                aurocs.append(
                    (name, level, split, *(all_.get(s, {}).get(VOE_HEADLINE, {}).get("auroc") for s in SCORERS))
                )
    lines += ["", "AUROC over all kinds' clips:", "", "| scenario | level | split | " + " | ".join(SCORERS) + " |"]
    lines.append("|---|---|---|" + "---|" * len(SCORERS))
    for row in aurocs:
        cells = " | ".join("-" if v is None else f"{v:.2f}" for v in row[3:])
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {cells} |")

    if args.probe_clips:
        lines += [
            "",
            f"## Law probes (level {args.probe_level})",
            "",
            "Velocity error (pixels per frame) of the target object: from the model's open-loop predicted positions "
            "(`model`), parsed by colour from the true frames (`floor`, the parser's own error) and from a frozen "
            "frame (`copy_last`), against the projected ground truth.",
            "",
            "| probe | split | n | model | floor | copy-last | model / floor | model / copy-last |",
            "|---|---|---|---|---|---|---|---|",
        ]
        # the probe section covers both held-out splits in one report
        settings = EvalSettings(
            episodes=0, voe_pairs=1, voe_kinds=[], probe_clips=args.probe_clips, exploration_episodes=0
        )
        out = work / f"probes-L{args.probe_level}"
        report, wall = _evaluate(args.model, SCENARIOS["occlusion"], args.probe_level, settings, out)
        timings.append(("probes", args.probe_level, "both", wall))
        for kind, res in report["probes"]["kinds"].items():
            for split in ("test_id", "test_ood"):
                r = res.get(split, {})
                model, floor, copy = r.get("model"), r.get("floor"), r.get("copy_last")
                num = isinstance(model, float)

                def f(x):
                    return f"{x:.3f}" if isinstance(x, float) else "-"

                ratio_floor = f(model / floor) if num and floor else "-"
                ratio_copy = f(model / copy) if num and copy else "-"
                lines.append(
                    f"| {kind} | {split} | {r.get('n', 0)} | {f(model)} | {f(floor)} | {f(copy)} | {ratio_floor} | "
                    f"{ratio_copy} |"
                )
    lines += ["", "Wall time per evaluation (0: reused from an earlier run):", ""]
    lines += [f"- {n} level {lv} {sp}: {w:.0f} s" for n, lv, sp, w in timings]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
