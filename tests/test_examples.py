"""Examples and the CLI run as subprocesses with tiny settings."""

import json
import subprocess
import sys
from pathlib import Path

from tdwgym.tools.video import CAPTION_HEIGHT, read_video

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_record_example_writes_decodable_mp4(tmp_path):
    out = tmp_path / "demo" / "rollout.mp4"
    proc = _run(
        [str(ROOT / "examples" / "record_rollout.py"), "--steps", "12", "--size", "64", "--out", str(out)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    frames = read_video(out)
    assert frames.shape == (13, CAPTION_HEIGHT + 64, 64, 3)  # the reset frame + one per step, captioned
    assert frames[:, CAPTION_HEIGHT:].std() > 1.0  # a real picture, not a blank
    assert not list(out.parent.glob(".*tmp*"))


def test_cli_record_and_version(tmp_path):
    proc = _run(["-m", "tdwgym", "--version"], tmp_path)
    assert proc.returncode == 0 and "tdwgym" in proc.stdout
    proc = _run(
        [
            "-m",
            "tdwgym",
            "record",
            "--policy",
            "orbit",
            "--steps",
            "5",
            "--size",
            "32",
            "--out",
            str(tmp_path / "o.gif"),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_video(tmp_path / "o.gif").shape[0] == 6  # the reset frame and one per step (the caption changes)


def test_cli_bad_input_is_a_clear_error(tmp_path):
    proc = _run(
        ["-m", "tdwgym", "record", "--env", "TDWRoom-Occlusion-v0", "--steps", "0", "--out", str(tmp_path / "x.mp4")],
        tmp_path,
    )
    assert (
        proc.returncode == 2
        and proc.stderr == "tdwgym record: error: argument --steps: must be a positive integer, got 0\n"
    )
    proc = _run(["-m", "tdwgym", "record", "--steps", "2", "--out", str(tmp_path / "x.avi")], tmp_path)
    assert proc.returncode == 2 and ".mp4 or .gif" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = _run(
        ["-m", "tdwgym", "record", "--policy", "spin", "--steps", "2", "--out", str(tmp_path / "x.mp4")], tmp_path
    )
    assert proc.returncode == 2 and "spin" in proc.stderr and "random, orbit, static" in proc.stderr
    proc = _run(["-m", "tdwgym", "rollout", "--steps", "2"], tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'rollout'" in proc.stderr


def test_bench_prints_figures_and_writes_json(tmp_path):
    proc = _run(
        [
            "-m",
            "tdwgym",
            "bench",
            "--steps",
            "20",
            "--repeats",
            "1",
            "--no-vector",
            "--no-dataset",
            "--out",
            str(tmp_path / "b.json"),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "env/floor" in proc.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    figures = data["env_vs_floor"]
    assert figures["env_steps_per_s"] > 0 and figures["floor_steps_per_s"] > 0
    assert abs(figures["ratio"] - figures["env_steps_per_s"] / figures["floor_steps_per_s"]) < 1e-9


def test_cli_dataset_writes_episodes_and_refuses_unknown_scenario(tmp_path):
    out = tmp_path / "data"
    proc = _run(
        [
            "-m",
            "tdwgym",
            "dataset",
            "--env",
            "gravity",
            "--episodes",
            "2",
            "--steps",
            "3",
            "--resolution",
            "16",
            "--out",
            str(out),
            "--no-progress",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("episode_*.hdf5")) == ["episode_000000.hdf5", "episode_000001.hdf5"]
    proc = _run(["-m", "tdwgym", "dataset", "--env", "bowling", "--out", str(tmp_path / "x")], tmp_path)
    assert proc.returncode == 2 and "bowling" in proc.stderr and "occlusion" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not (tmp_path / "x").exists()


def test_gallery_script_writes_a_gif_per_scenario_and_level_and_impossible_twins(tmp_path):
    import numpy as np
    from PIL import Image, ImageSequence

    import tdwgym
    from tdwgym.envs.impossible import IMPOSSIBLE_KINDS

    args = ["--out", str(tmp_path), "--size", "16", "--frames", "3", "--every", "1", "--seeds", "2", "--ms", "50"]
    proc = _run([str(ROOT / "scripts" / "make_gallery.py"), *args], tmp_path)
    assert proc.returncode == 0, proc.stderr
    clips = sorted(tmp_path.glob("*_level*.gif"))
    assert len(clips) == 4 * len(tdwgym.ENV_IDS)
    with Image.open(clips[0]) as im:
        assert im.size == (16, 16) and im.info["loop"] == 0
        assert 1 <= sum(1 for _ in ImageSequence.Iterator(im)) <= 3  # identical frames are merged
    twins = {p.stem.removeprefix("impossible_"): p for p in tmp_path.glob("impossible_*.gif")}
    assert set(twins) == set(IMPOSSIBLE_KINDS)
    with Image.open(twins["vanish"]) as im:
        assert im.size == (2 * 16 + 4, 16)  # possible | gap | impossible
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) > 3 and any((f[:, :16] != f[:, 20:]).any() for f in frames)  # the twins differ at the end


def test_gallery_gif_stays_under_its_size_budget(tmp_path):
    import numpy as np
    from script_tools import load_script

    gallery = load_script("make_gallery")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(32)]  # noise: incompressible
    assert len(gallery.gif_bytes(frames, 100)) > 20 * 1024
    size = gallery.write_gif(tmp_path / "x.gif", frames, 100, max_kb=20)
    assert size == (tmp_path / "x.gif").stat().st_size and size <= 20 * 1024  # every other frame dropped


def test_bench_vectorized_measures_async_sb3_subproc_and_lockstep_envs():
    from tdwgym.tools.throughput import format_results, vectorized

    v = vectorized(steps=20, repeats=1)
    assert v["processes"] == 2 and v["single_steps_per_s"] > 0 and v["vector_steps_per_s"] > 0
    assert v["sb3_subproc_steps_per_s"] > 0  # SB3 is installed with the agents extra the tests run under
    assert abs(v["sb3_subproc_speedup"] - v["sb3_subproc_steps_per_s"] / v["single_steps_per_s"]) < 1e-9
    assert v["vector_light_steps_per_s"] > 0 and v["sb3_subproc_light_steps_per_s"] > 0  # info_level="light"
    assert v["lockstep_steps_per_s"] > 0 and v["lockstep_light_steps_per_s"] > 0  # tdwgym.tools.vector.LockstepVecEnv
    assert abs(v["lockstep_speedup"] - v["lockstep_steps_per_s"] / v["single_steps_per_s"]) < 1e-9
    assert v["lockstep_spin_steps_per_s"] > 0 and v["lockstep_spin_s"] == 0.002  # LockstepVecEnv(spin=0.002)
    text = format_results(
        {
            "tdwgym": "x",
            "env_id": "E",
            "resolution": 64,
            "steps": 20,
            "repeats": 1,
            "cpus": 2,
            "env_vs_floor": {"env_steps_per_s": 1.0, "floor_steps_per_s": 1.0, "ratio": 1.0},
            "vectorized": v,
            "independent": {"processes": 2, "total_steps_per_s": 2.0, "speedup": 2.0},
        }
    )
    assert f"SB3 SubprocVecEnv (`tdwgym train --vec-env subproc`): {v['sb3_subproc_steps_per_s']:.1f}" in text
    assert f"tdwgym LockstepVecEnv (what `tdwgym train` steps): {v['lockstep_steps_per_s']:.1f} steps/s" in text
    assert f"LockstepVecEnv, spin=2 ms: {v['lockstep_spin_steps_per_s']:.1f} steps/s" in text
