"""Evaluate a world model: prediction quality vs baselines, violation of expectation, physics probes, exploration.

    python examples/evaluate.py --run runs/curiosity            # report in runs/curiosity/eval/
    python examples/evaluate.py --model path/to/world_model.pt --quick --out /tmp/eval

Prints the headline numbers and writes report.json, report.md and PNG plots.
"""

from __future__ import annotations

import argparse

from tdwgym.agents.evaluate import EvalSettings, evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="training run folder")
    src.add_argument("--model", help="world_model.pt checkpoint")
    p.add_argument("--env", default=None, help="env id (default: the run's)")
    p.add_argument("--episodes", type=int, default=None, help="held-out episodes per split")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/eval)")
    args = p.parse_args()
    report = evaluate(
        run_dir=args.run,
        model_path=args.model,
        env_id=args.env,
        episodes=args.episodes,
        out=args.out,
        settings=EvalSettings.quick() if args.quick else None,
    )
    pred = report["prediction"]
    for split in ("test_id", "test_ood"):
        for label in ("1-step", f"{pred['horizon']}-step"):
            row = pred[split][label]
            cells = [
                f"{name} {row[name]['mse']:.3g}"
                for name in ("model", "copy_last", "constant_velocity")
                if isinstance(row.get(name), dict)
            ]
            print(f"{split:8s} {label:7s} MSE: " + ", ".join(cells))
    for kind, res in report["voe"].get("kinds", {}).items():
        print(
            f"VoE {kind:12s} model pairwise acc {res['model']['mean']['pairwise_accuracy']:.2f} "
            f"AUROC {res['model']['mean']['auroc']:.2f}"
        )
    print(f"report: {report['meta']['out']}")


if __name__ == "__main__":
    main()
