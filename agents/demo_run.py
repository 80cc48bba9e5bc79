"""``tdwgym demo`` (``make demo``): the whole loop in one command, a few minutes on 2 CPU cores.

Top to bottom, into one folder (``runs/demo``):

1. :func:`~tdwgym.agents.training.train` trains a curiosity agent with the defaults of ``tdwgym train``
   (``TDWRoom-Playroom-v0`` level 1 with a 20-degree push cone, pixel world model) and writes its run folder:
   ``config.json``, checkpoints, ``metrics.jsonl``, TensorBoard logs and the training plot ``training.png``.
2. :func:`~tdwgym.agents.panels.record_episode` films the trained agent on a held-out scene with its world model's
   panels (observation, prediction, per-pixel error, intrinsic reward) and push markers (a green border on every
   frame whose push moved an object, yellow when it only hit one): ``rollout.mp4``.
3. :func:`~tdwgym.agents.evaluate.evaluate` writes the world model's evaluation report with its plots, at
   :data:`DEMO_EVAL` sizes: ``eval/report.md``, ``eval/report.json``, ``eval/*.png``.
4. ``demo.md`` says what was written, how long each stage took and how many pushes moved an object in the video.

    tdwgym demo                          # runs/demo
    tdwgym demo --total-steps 10000 --out runs/demo_small
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdwgym.agents.evaluate import EvalSettings
from tdwgym.agents.rundir import RunDir
from tdwgym.agents.training import TrainConfig

__all__ = ["DEMO_EVAL", "DEMO_VIDEO_SEED", "DemoConfig", "DemoResult", "demo"]

DEMO_EVAL = EvalSettings(episodes=2, voe_pairs=6, probe_clips=2, exploration_episodes=1)
"""The demo's evaluation sizes: every section of the report, at a quarter of ``tdwgym eval``'s default sizes (run
``tdwgym eval --run runs/demo`` for the full report)."""
DEMO_VIDEO_SEED = 12_345
"""Scene seed of the demo video (the rollout seed of ``tdwgym train``; training uses seeds 0 up)."""


@dataclass
class DemoConfig:
    """What ``tdwgym demo`` runs (one option per field); every other training setting is ``tdwgym train``'s."""

    total_steps: int = 10_000
    """Training steps of the curiosity agent (a third of the comparison's 30,000: the training is most of the demo's
    time, 150 of its 192 s on 2 busy CPU cores)."""
    seed: int = 0
    """Seed of the training run."""
    run_dir: str = "runs/demo"
    """Output folder (a training run folder, started over if it holds one, plus rollout.mp4, eval/ and demo.md)."""
    steps: int = 500
    """Steps of the rollout video (Playroom episodes end at 500)."""
    size: int = 160
    """Pixel edge of each panel of the video."""
    device: str = "auto"
    """Torch device: auto (CUDA when available), cpu, cuda."""
    progress_bar: bool = True
    """Show progress bars."""
    train_overrides: dict[str, Any] = field(default_factory=dict)
    """Other :class:`~tdwgym.agents.training.TrainConfig` fields (the Python API's; tests shrink the run with it)."""


@dataclass
class DemoResult:
    """What :func:`demo` wrote and measured."""

    run_dir: Path
    """The output folder."""
    video_path: Path
    """The rollout video with the world-model panels."""
    plot_path: Path | None
    """The training plot."""
    report_path: Path
    """The evaluation report (markdown)."""
    summary_path: Path
    """``demo.md``."""
    pushes: list[int]
    """Steps of the video whose push moved an object."""
    seconds: dict[str, float]
    """Wall time of each stage: train, record, eval, total."""


def demo(cfg: DemoConfig, settings: EvalSettings | None = None) -> DemoResult:
    """Train, film and evaluate a curiosity agent into ``cfg.run_dir`` (see the module docstring).

    Args:
        cfg: The demo's settings.
        settings: Evaluation sizes (default :data:`DEMO_EVAL`).

    Returns:
        The paths written, the pushes in the video and the time of each stage.
    """
    from tdwgym.agents.evaluate import evaluate
    from tdwgym.agents.panels import record_episode
    from tdwgym.agents.training import train

    settings = settings or DEMO_EVAL
    t0 = time.perf_counter()
    tcfg = TrainConfig(
        **{
            **cfg.train_overrides,
            "total_steps": cfg.total_steps,
            "seed": cfg.seed,
            "run_dir": cfg.run_dir,
            "overwrite": True,
            "video_steps": 0,  # the video below shows the world model's panels too
            "device": cfg.device,
            "progress_bar": cfg.progress_bar,
        }
    )
    result = train(tcfg)
    run = RunDir(result.run_dir)
    t1 = time.perf_counter()
    pushes: list[int] = []
    video = record_episode(
        run_dir=run.path,
        out=run.video_path,
        steps=cfg.steps,
        seed=DEMO_VIDEO_SEED,
        panel_size=cfg.size,
        progress=cfg.progress_bar,
        device=cfg.device,
        pushes=pushes,
    )
    t2 = time.perf_counter()
    eval_dir = run.path / "eval"
    evaluate(run_dir=run.path, out=eval_dir, settings=settings, device=cfg.device, progress=cfg.progress_bar)
    t3 = time.perf_counter()
    seconds = {"train": t1 - t0, "record": t2 - t1, "eval": t3 - t2, "total": t3 - t0}
    summary = run.path / "demo.md"
    summary.write_text(_summary(tcfg, cfg, result.num_timesteps, video, result.plot_path, eval_dir, pushes, seconds))
    (run.path / "demo.json").write_text(
        json.dumps({"config": dataclasses.asdict(cfg), "pushes": pushes, "seconds": seconds}, indent=2) + "\n"
    )
    return DemoResult(run.path, video, result.plot_path, eval_dir / "report.md", summary, pushes, seconds)


def _summary(
    tcfg: TrainConfig,
    cfg: DemoConfig,
    trained: int,
    video: Path,
    plot: Path | None,
    eval_dir: Path,
    pushes: list[int],
    seconds: dict[str, float],
) -> str:
    plots = ", ".join(p.name for p in sorted(eval_dir.glob("*.png"))) or "none"
    steps = ", ".join(map(str, pushes)) or "none"
    return (
        "# tdwgym demo\n\n"
        f"A curiosity agent (PPO paid by a `{tcfg.curiosity}` world model's surprise) trained {trained} steps on "
        f"`{tcfg.env_id}` with env kwargs `{json.dumps(tcfg.env_kwargs)}`, seed {tcfg.seed}.\n\n"
        f"- `{video.name}`: {cfg.steps} steps of the agent on a held-out scene (seed {DEMO_VIDEO_SEED}) beside its "
        "world model: observation, prediction, per-pixel error, intrinsic reward. A green border marks a push that "
        f"moved an object, a yellow one a push that only hit one. **Pushes that moved an object: {len(pushes)}** "
        f"(steps {steps}).\n"
        f"- `{plot.name if plot else 'training.png'}`: intrinsic reward, world-model loss, pushes and objects in view "
        "over training.\n"
        f"- `eval/report.md`: the world model's evaluation (prediction quality, violation of expectation, physics "
        f"probes, exploration) at the demo's small sizes; plots: {plots}. `tdwgym eval --run {cfg.run_dir}` writes "
        "the full-size report.\n\n"
        f"Wall time: training {seconds['train']:.0f} s, video {seconds['record']:.0f} s, evaluation "
        f"{seconds['eval']:.0f} s, {seconds['total']:.0f} s in all.\n"
    )
