"""``tdwgym pretrain --ray --workers N``: two Ray Train workers with the same global batch follow a one-process run's
losses, a worker killed mid-run is restarted from the newest checkpoint, a killed driver's run resumes, the objects
model trains too, and bad settings or resources the cluster lacks are one line and exit 2 with nothing written.

One local Ray instance with 2 CPUs serves the module; the runs are tiny (16 px, clips of 8 steps, global batch 2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tdwgym.agents.pretraining import PretrainConfig, pretrain

TINY = {
    "model": "recurrent",
    "envs": "occlusion:2,collision",
    "level": "0,1",
    "resolution": 16,
    "clip_steps": 8,
    "tbptt": 4,
    "batch_size": 2,
    "total_steps": 64,
    "val_every": 32,
    "val_clips": 1,
    "device": "cpu",
    "model_kwargs": {"width": 8, "hidden": 8},
}


@pytest.fixture(scope="module")
def ray_instance() -> Any:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train.torch")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "run"
    return pretrain(PretrainConfig(**{**TINY, "workers": 0, "out": str(out)}), progress=False)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "world_model.pt", weights_only=True)["model"]


def test_two_workers_follow_the_one_process_losses(
    ray_instance: Any, one_process: dict[str, Any], tmp_path: Path
) -> None:
    from tdwgym.agents.pretraining_ray import pretrain_on_ray

    out = tmp_path / "run"
    summary = pretrain_on_ray(PretrainConfig(**{**TINY, "workers": 2, "out": str(out)}))
    assert summary["ranks"] == 2 and summary["frames"] == one_process["frames"] == 64
    # 4 batches of 2 clips (2 optimiser steps each): the same losses to float rounding
    np.testing.assert_allclose(summary["batch_losses"], one_process["batch_losses"], rtol=1e-4, atol=1e-6)
    assert len(summary["batch_losses"]) == 4
    local = _weights(Path(one_process["config"]["out"]))
    for name, value in _weights(out).items():
        torch.testing.assert_close(value, local[name], rtol=1e-3, atol=1e-5, msg=name)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["frames"] for r in rows] == [32, 64]  # rank 0 alone writes
    np.testing.assert_allclose(rows[-1]["test_id/loss"], one_process["history"][-1]["test_id/loss"], rtol=1e-3)
    assert list((out / "tb").iterdir())
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["frames"] == 64


def _kill_once(marker: Path, rank: int = 1, after_frames: int = 32) -> Callable[[int], None]:
    """A ``before_start`` hook: on its first start, rank ``rank`` kills its own worker process once the run folder
    holds a checkpoint of ``after_frames`` frames (a marker file records that it did)."""

    def before_start(r: int) -> None:
        if r != rank or marker.exists():
            return
        import threading

        pointer = marker.parent / "run" / "checkpoints" / "latest.json"

        def watch() -> None:
            while True:
                try:
                    if json.loads(pointer.read_text())["frames"] >= after_frames:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.05)
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()

    return before_start


def test_a_killed_worker_is_restarted_from_the_newest_checkpoint(
    ray_instance: Any, one_process: dict[str, Any], tmp_path: Path
) -> None:
    from tdwgym.agents.pretraining_ray import pretrain_on_ray

    out = tmp_path / "run"
    marker = tmp_path / "killed"
    cfg = PretrainConfig(**{**TINY, "workers": 2, "out": str(out)})
    summary = pretrain_on_ray(cfg, before_start=_kill_once(marker))
    assert marker.exists()  # rank 1 was killed after the first checkpoint
    assert summary["frames"] == 64
    # the restarted group carried on from the checkpoint at 32 frames: its losses are the uninterrupted run's
    np.testing.assert_allclose(summary["batch_losses"], one_process["batch_losses"][2:], rtol=1e-4, atol=1e-6)
    local = _weights(Path(one_process["config"]["out"]))
    for name, value in _weights(out).items():
        torch.testing.assert_close(value, local[name], rtol=1e-3, atol=1e-5, msg=name)


def _cli(out: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "tdwgym", "pretrain", "--out", str(out), "--no-progress"]
    for key in ("model", "envs", "level", "resolution", "clip_steps", "tbptt", "batch_size", "val_every", "val_clips"):
        args += [f"--{key.replace('_', '-')}", str(TINY[key])]
    return [*args, "--device", "cpu", "--model-kwargs", json.dumps(TINY["model_kwargs"]), *extra]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_a_killed_driver_resumes_with_ray(tmp_path: Path) -> None:
    """The driver and the local Ray instance it started (head, workers) are killed with SIGKILL after a checkpoint;
    ``--resume RUN_DIR --ray`` finishes the run from the newest checkpoint."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        _cli(out, "--total-steps", "100000", "--workers", "2", "--ray", "local"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    pointer = out / "checkpoints" / "latest.json"
    tree: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not pointer.exists() and proc.poll() is None:
            time.sleep(0.2)
        assert pointer.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint written"
    finally:
        tree = _descendants(proc.pid)
        for pid in [proc.pid, *tree]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in tree):
        time.sleep(0.2)
    frames = json.loads(pointer.read_text())["frames"]
    resumed = subprocess.run(
        _cli(out, "--resume", str(out), "--total-steps", str(frames + 32), "--workers", "2", "--ray", "local"),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "with 2 Ray Train workers" in resumed.stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["frames"] == frames + 32 == json.loads(pointer.read_text())["frames"]
    assert json.loads((out / "summary.json").read_text())["frames"] == frames + 32


def test_the_objects_model_pretrains_on_ray(ray_instance: Any, tmp_path: Path) -> None:
    from tdwgym.agents.models import load_world_model
    from tdwgym.agents.pretraining_ray import pretrain_on_ray

    out = tmp_path / "run"
    cfg = PretrainConfig(
        model="objects",
        envs="occlusion",
        total_steps=32,
        clip_steps=8,
        tbptt=8,
        batch_size=2,
        val_every=32,
        val_clips=1,
        resolution=32,
        workers=2,
        device="cpu",
        out=str(out),
        model_kwargs={"hidden": 8},
    )
    summary = pretrain_on_ray(cfg)
    assert summary["frames"] == 32 and summary["ranks"] == 2
    assert summary["history"][-1]["test_id/loss"] == summary["history"][-1]["test_id/loss"]  # finite
    model = load_world_model(out / "world_model.pt", device="cpu")
    assert model.name == "objects" and model.passes[1:] == ("segmentation", "depth")


def test_bad_settings_and_missing_resources_are_one_line_and_write_nothing(
    ray_instance: Any, tmp_path: Path, capsys: Any
) -> None:
    from tdwgym.cli import main

    out = tmp_path / "run"
    argv = _cli(out)[3:]  # after "python -m tdwgym"
    cases = [
        (["--workers", "3", "--ray"], "--batch-size 2 must be a multiple of --workers 3"),
        (["--workers", "4", "--batch-size", "4", "--ray"], "cannot run 4 Ray Train workers of 1 CPU each at once"),
        (["--workers", "2", "--ray", "--resume", str(out)], "pretrain.json not found"),
    ]
    for extra, message in cases:
        assert main([*argv, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (extra, err)
        assert not out.exists() or not any(out.iterdir()), extra


def test_an_unreachable_ray_address_is_one_line_within_30_s(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    t0 = time.monotonic()
    argv = _cli(out, "--ray", f"127.0.0.1:{port}")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - t0 < 30
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"could not connect to 127.0.0.1:{port}" in lines[0], lines
    assert not out.exists()
