"""``tdwgym demo`` (``make demo``): the whole chain (train, film with panels and push markers, evaluate) at a tiny
budget, and the Makefile's demo target is that command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from tiny_train import TINY_PPO

from tdwgym.agents.demo_run import DemoConfig, demo
from tdwgym.agents.evaluate import EvalSettings
from tdwgym.tools.recording import PUSH_MARKERS, mark_push
from tdwgym.tools.video import CAPTION_HEIGHT, read_video

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = TINY_PPO


def test_demo_chain_writes_run_video_with_panels_plot_and_eval_report(tmp_path):
    out = tmp_path / "demo"
    cfg = DemoConfig(
        total_steps=64,
        run_dir=str(out),
        steps=12,
        size=48,
        device="cpu",
        progress_bar=False,
        train_overrides=TINY_TRAIN,
    )
    result = demo(cfg, settings=EvalSettings.quick())
    config = json.loads((out / "config.json").read_text())
    assert config["env_id"] == "TDWRoom-Playroom-v0" and config["env_kwargs"] == {"level": 1, "push_cone": 20.0}
    assert config["total_steps"] == 64 and (out / "checkpoints" / "latest.json").is_file()
    assert result.plot_path == out / "training.png" and result.plot_path.stat().st_size > 0
    frames = read_video(result.video_path)
    assert result.video_path == out / "rollout.mp4"
    # the reset frame and one per step; four panels (observation, prediction, error, reward) side by side
    assert frames.shape == (13, CAPTION_HEIGHT + 48, 4 * 48, 3)
    assert frames[:, CAPTION_HEIGHT:].std() > 1.0
    report = json.loads((out / "eval" / "report.json").read_text())
    assert {"prediction", "voe", "probes", "exploration"} <= set(report)
    assert (out / "eval" / "report.md").is_file() and list((out / "eval").glob("*.png"))
    assert all(isinstance(t, int) and 1 <= t <= 12 for t in result.pushes)
    summary = (out / "demo.md").read_text()
    assert f"Pushes that moved an object: {len(result.pushes)}**" in summary
    assert json.loads((out / "demo.json").read_text())["pushes"] == result.pushes
    assert set(result.seconds) == {"train", "record", "eval", "total"}
    # a second demo starts the folder over instead of refusing it
    again = demo(cfg, settings=EvalSettings.quick())
    assert again.pushes == result.pushes  # same seeds, same video


def test_push_markers_frame_pushes_that_moved_or_hit_and_nothing_else():
    blank = np.zeros((CAPTION_HEIGHT + 20, 20, 3), dtype=np.uint8)
    moved = mark_push(blank.copy(), {"push": {"attempted": True, "hit": True, "moved": True}}, top=CAPTION_HEIGHT)
    hit = mark_push(blank.copy(), {"push": {"attempted": True, "hit": True, "moved": False}}, top=CAPTION_HEIGHT)
    missed = mark_push(blank.copy(), {"push": {"attempted": True, "hit": False, "moved": False}}, top=CAPTION_HEIGHT)
    assert tuple(moved[CAPTION_HEIGHT, 10]) == PUSH_MARKERS["moved"] and tuple(moved[-1, 0]) == PUSH_MARKERS["moved"]
    assert tuple(hit[CAPTION_HEIGHT + 10, -1]) == PUSH_MARKERS["hit"]
    assert not moved[:CAPTION_HEIGHT].any() and not moved[CAPTION_HEIGHT + 4 : -4, 4:-4].any()  # caption untouched
    assert not missed.any() and not mark_push(blank.copy(), {}).any()


def test_make_demo_runs_tdwgym_demo():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo: .*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert re.search(r"\$\(BIN\)/tdwgym demo\b", recipe.group(1)), recipe.group(1)
