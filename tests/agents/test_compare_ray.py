"""``tdwgym compare --ray``: each (agent, seed) run is a Ray task; the results equal the local comparison's, a run
whose worker dies is retried alone, a rerun resumes, the bar counts runs, and a bad address or resources the cluster
lacks are one line and exit 2 with nothing written.

One local Ray instance with 2 CPUs serves the module; the comparisons are tiny (2 agents x 2 seeds, 64 steps).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tdwgym.agents.comparison import RUN_RECORD, CompareConfig, compare, run_folder
from tdwgym.agents.comparison_report import comparable

TINY = {
    "n_envs": 2,
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 1,
    "device": "cpu",
    "vec_env": "dummy",
}


def _config(out: Path, **kwargs: Any) -> CompareConfig:
    settings = {
        "agents": ["random", "ppo"],
        "seeds": [0, 1],
        "total_steps": 64,
        "eval_episodes": 1,
        "eval_steps": 6,
        "env_kwargs": {"resolution": 36, "level": 1, "push_cone": 20.0},
        "train_overrides": dict(TINY),
        "progress_bar": False,
    }
    return CompareConfig(out=str(out), **{**settings, **kwargs})


@pytest.fixture(scope="module")
def ray_instance() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "cmp"
    return compare(_config(out), progress=lambda line: None)


def _logger(log: Path, fail: tuple[str, int] | None = None, how: str = "crash") -> Callable[[str, int], None]:
    """A ``before_run`` hook: logs each run a task starts; the run ``fail`` fails once (a marker file records that
    it did): ``"crash"`` kills the worker, ``"raise"`` raises."""

    def before_run(agent: str, seed: int) -> None:
        with open(log, "a") as f:
            f.write(f"{agent} {seed}\n")
        if (agent, seed) != fail:
            return
        try:
            fd = os.open(log.with_suffix(".failed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        if how == "raise":
            raise RuntimeError(f"injected failure of {agent} seed {seed}")
        os._exit(1)

    return before_run


def _started(log: Path) -> list[str]:
    return sorted(log.read_text().splitlines()) if log.exists() else []


def test_ray_compare_equals_the_local_one_and_a_killed_run_is_redone_alone(
    ray_instance: Any, local: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    from tdwgym.agents.comparison_ray import compare_on_ray

    log = tmp_path / "runs.log"
    out = tmp_path / "cmp"
    cfg = _config(out, progress_bar=True)
    results = compare_on_ray(cfg, before_run=_logger(log, fail=("ppo", 1)))
    assert comparable(results) == comparable(local)
    assert (out / "results.md").read_text() == (Path(local["config"]["out"]) / "results.md").read_text()
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert (out / "pushes.png").exists() and (out / "training.png").exists()
    # the worker of ppo seed 1 died once: that run alone started twice
    assert _started(log) == ["ppo 0", "ppo 1", "ppo 1", "random 0", "random 1"]
    err = capsys.readouterr().err
    assert "4/4" in err and "run" in err  # the bar counts finished runs


def test_a_rerun_resumes_and_runs_only_what_failed(ray_instance: Any, local: dict[str, Any], tmp_path: Path) -> None:
    from tdwgym.agents.comparison_ray import compare_on_ray

    out = tmp_path / "cmp"
    log = tmp_path / "first.log"
    with pytest.raises(Exception, match="injected failure of random seed 1"):
        compare_on_ray(_config(out), max_retries=0, before_run=_logger(log, fail=("random", 1), how="raise"))
    every = {f"{agent} {seed}" for agent in ("random", "ppo") for seed in (0, 1)}
    kept = {r for r in every if (run_folder(_config(out), *r.split()[:1], int(r.split()[1])) / RUN_RECORD).exists()}
    # random 1 started only once a CPU was free: after a run had finished (the others were cancelled)
    assert "random 1" not in kept and kept and not (out / "results.json").exists()
    again = tmp_path / "again.log"
    results = compare_on_ray(_config(out), before_run=_logger(again))
    assert _started(again) == sorted(every - kept)
    assert comparable(results) == comparable(local)
    # the local comparison resumes the same way: nothing left to train
    assert comparable(compare(_config(out), progress=lambda line: None)) == comparable(local)


def test_cli_compare_ray_and_resources_the_cluster_lacks(
    ray_instance: Any, local: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    from tdwgym.cli import main

    out = tmp_path / "cmp"
    argv = ["compare", "--agents", "random", "ppo", "--seeds", "0", "1", "--total-steps", "64", "--eval-episodes"]
    argv += ["1", "--eval-steps", "6", "--env-kwargs", '{"resolution": 36, "level": 1, "push_cone": 20.0}']
    argv += ["--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1", "--device", "cpu"]
    argv += ["--vec-env", "dummy", "--no-progress", "--out", str(out)]
    assert main([*argv, "--ray", "--gpus-per-run", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run one run of 1 CPU and 1 GPU" in err[0] and "0 GPU" in err[0], err
    assert not out.exists()
    assert main([*argv, "--cpus-per-run", "0.5"]) == 2
    assert "--cpus-per-run only apply with --ray" in capsys.readouterr().err
    assert main([*argv, "--ray", "--cpus-per-run", "0.5"]) == 0
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(local)
    assert "| ppo |" in capsys.readouterr().out


def test_cli_compare_with_an_unreachable_ray_address_is_one_line_within_30_s(tmp_path: Path) -> None:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "cmp"
    argv = [sys.executable, "-m", "tdwgym.cli", "compare", "--agents", "random", "--total-steps", "64"]
    argv += ["--out", str(out), "--ray", f"127.0.0.1:{port}", "--no-progress", "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    t0 = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - t0 < 30
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"could not connect to 127.0.0.1:{port}" in lines[0], lines
    assert not out.exists()
