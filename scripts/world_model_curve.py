"""VoE accuracy and probe error against training frames: the learning curve of a ``tdwgym pretrain`` run.

    python scripts/world_model_curve.py runs/pretrain/checkpoints/ckpt-*.pt --out docs/world_models_curve

Evaluates each checkpoint (each a budget of training frames) with the same held-out sets: the VoE pairs of
TDWRoom-Occlusion-v0 at levels 0 and 1 and the physical-law probes, and writes ``OUT.md`` (a table) and ``OUT.png``
(the curves). Reports already in ``OUT-eval/`` are reused. The pretraining keeps only its two newest checkpoints:
copy the ones to plot as they appear.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tdwgym.agents.evaluate import VOE_HEADLINE, EvalSettings, evaluate


def _frames(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True).get("frames", 0))


def main() -> None:
    """Evaluate the checkpoints, write the table and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint files (ckpt-*.pt or world_model.pt)")
    parser.add_argument("--out", type=Path, default=Path("docs/world_models_curve"), help="OUT.md and OUT.png")
    parser.add_argument("--voe-pairs", type=int, default=12, help="pairs per kind and level (default: 12)")
    parser.add_argument("--probe-clips", type=int, default=4, help="clips per probe kind and split (default: 4)")
    parser.add_argument(
        "--no-observer",
        action="store_true",
        help="leave the analytic observer out (its figures do not change with "
        "the checkpoint; it costs as much as the model)",
    )
    args = parser.parse_args()

    settings = EvalSettings(
        episodes=2,
        voe_pairs=args.voe_pairs,
        probe_clips=args.probe_clips,
        exploration_episodes=1,
        exploration_steps=10,
        voe_observer=not args.no_observer,
    )
    rows = []
    for path in sorted(args.checkpoints, key=_frames):
        row: dict = {"frames": _frames(path), "checkpoint": str(path)}
        for level in (0, 1):
            out = args.out.parent / f"{args.out.name}-eval" / f"{path.stem}-L{level}"
            if (out / "report.json").is_file():  # evaluated before with these settings: reuse
                report = json.loads((out / "report.json").read_text())
            else:
                report = evaluate(
                    model_path=path,
                    env_id="TDWRoom-Occlusion-v0",
                    env_kwargs={"level": level},
                    settings=settings,
                    out=out,
                    progress=False,
                )
            voe = report["voe"]
            head = VOE_HEADLINE  # reports of another release may name another headline; both are in them
            row[f"L{level}"] = {
                kind: res["model"][head]["pairwise_accuracy"] for kind, res in voe["kinds"].items() if "model" in res
            }
            row[f"L{level}/auroc"] = voe["all"]["model"][head]["auroc"]
            if level == 0:
                probe = report["probes"]["kinds"].get("uniform_motion", {}).get("test_id", {})
                row["velocity_error"] = {k: probe.get(k) for k in ("model", "floor", "copy_last")}
        rows.append(row)
        print(json.dumps(row), flush=True)

    kinds = list(rows[0]["L0"])
    lines = [
        f"Learning curve of `{rows[-1]['checkpoint']}`'s run: VoE pairwise accuracy ({head} surprise, "
        f"{args.voe_pairs} pairs per kind and level, TDWRoom-Occlusion-v0, still camera) and the uniform-motion "
        "probe's velocity error (px/frame, test_id) against training frames. Command: "
        f"`python scripts/world_model_curve.py {' '.join(str(p) for p in args.checkpoints)} --out {args.out}"
        f"{' --no-observer' if args.no_observer else ''} --voe-pairs {args.voe_pairs} "
        f"--probe-clips {args.probe_clips}`.",
        "",
        "| frames | level | " + " | ".join(kinds) + " | AUROC | velocity error (model / floor / copy-last) |",
        "|---:|---|" + "---|" * len(kinds) + "---|---|",
    ]
    for row in rows:
        for level in (0, 1):
            accs = " | ".join(f"{row[f'L{level}'].get(k, float('nan')):.2f}" for k in kinds)
            v = row["velocity_error"]
            vel = " / ".join("n/a" if v.get(k) is None else f"{v[k]:.2f}" for k in ("model", "floor", "copy_last"))
            lines.append(
                f"| {row['frames']} | {level} | {accs} | {row[f'L{level}/auroc']:.2f} | {vel if not level else ''} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    frames = [r["frames"] for r in rows]
    for kind in kinds:
        for level, style in ((0, "-"), (1, "--")):
            ax1.plot(frames, [r[f"L{level}"].get(kind) for r in rows], style, marker="o", label=f"{kind} L{level}")
    ax1.axhline(0.5, color="grey", lw=1, ls=":")
    ax1.set(
        xlabel="training frames", ylabel=f"pairwise accuracy ({head})", ylim=(0, 1), title="violation of expectation"
    )
    ax1.legend(fontsize=6, ncol=2)
    for key, style in (("model", "o-"), ("floor", "s:"), ("copy_last", "x--")):
        ax2.plot(frames, [r["velocity_error"].get(key) for r in rows], style, label=key)
    ax2.set(xlabel="training frames", ylabel="velocity error (px/frame)", title="uniform motion probe, test_id")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=90)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
