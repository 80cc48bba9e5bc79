"""Fault injection, issue 32 parts 2-3: one writer per output folder (locks), compare into an earlier comparison or a
training run, one checkpoint at the final step, no write through a link out of a run folder, read-only inputs
(docs/faults.md; the rest of the case matrix is in test_faults.py and test_faults_inputs.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from tiny_train import TINY

from tdwgym.cli import main as cli_main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tdwgym.agents.training import TrainConfig, train

    run = tmp_path_factory.mktemp("faults") / "run"
    train(TrainConfig(total_steps=64, checkpoint_every=64, run_dir=str(run), curiosity="rnd", **TINY))
    return run


# -- one writer per folder (issue 32) -------------------------------------------------------------------------------
_HOLD = """
import sys, time
from tdwgym.util.locks import run_lock
with run_lock(sys.argv[1], command="holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_one_line_naming_the_first_ones_pid(tmp_path: Path, capsys) -> None:
    import subprocess

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (
            ["train", "--out", str(out), "--total-steps", "64", "--no-progress", "--device", "cpu"],
            ["dataset", "--out", str(out), "--episodes", "1", "--steps", "2", "--resolution", "16", "--no-progress"],
            [
                "compare",
                "--out",
                str(out),
                "--agents",
                "random",
                "--total-steps",
                "64",
                "--no-progress",
                "--device",
                "cpu",
            ],
        ):
            assert cli_main(argv) == 2
            line = _one_line(capsys.readouterr().err)
            assert f"PID {holder.pid}" in line and str(out) in line, line
        assert sorted(p.name for p in out.iterdir()) == [".tdwgym.lock"]  # nothing written by the refused ones
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    import subprocess

    from tdwgym.util.locks import run_lock

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # kill -9: its lock file stays behind
    holder.wait()
    assert (out / ".tdwgym.lock").exists()
    with pytest.warns(UserWarning, match=f"PID {holder.pid}, which is no longer running"), run_lock(out):
        assert json.loads((out / ".tdwgym.lock").read_text())["pid"] == os.getpid()
    assert not (out / ".tdwgym.lock").exists()


def test_compare_refuses_an_earlier_comparison_or_a_training_run_without_overwrite(
    finished_run: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "results.json").write_text("{}")
    argv = ["compare", "--agents", "random", "--total-steps", "64", "--no-progress", "--device", "cpu"]
    assert cli_main([*argv, "--out", str(out)]) == 2
    assert "--overwrite" in _one_line(capsys.readouterr().err)
    assert (out / "results.json").read_text() == "{}"
    plot = (finished_run / "training.png").read_bytes()
    assert cli_main([*argv, "--out", str(finished_run), "--overwrite"]) == 2
    assert "holds a training run" in _one_line(capsys.readouterr().err)
    assert (finished_run / "training.png").read_bytes() == plot


def test_a_run_writes_one_checkpoint_at_its_final_step(finished_run: Path) -> None:
    names = sorted(p.name for p in (finished_run / "checkpoints").iterdir())
    assert names == ["latest.json", "step_0000000064"], names


# -- locks on eval and record outputs, links out of a run folder, read-only inputs (issue 32) -----------------------
_HOLD_FILE = """
import sys, time
from tdwgym.util.locks import file_lock
with file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold(script: str, target: Path):
    import subprocess

    holder = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_eval_and_record_refuse_an_output_another_process_writes(finished_run: Path, tmp_path: Path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    video, report = tmp_path / "v.mp4", tmp_path / "ev"
    cases = [
        (_HOLD_FILE, video, ["record", "--run", str(run), "--steps", "2", "--out", str(video), "--device", "cpu"]),
        (_HOLD, run / "videos", ["record", "--run", str(run), "--steps", "2", "--device", "cpu"]),  # the default
        (_HOLD, report, ["eval", "--run", str(run), "--quick", "--out", str(report), "--device", "cpu"]),
        (_HOLD, run / "eval", ["eval", "--run", str(run), "--quick", "--device", "cpu"]),
    ]
    for script, target, argv in cases:
        holder = _hold(script, target)
        try:
            assert cli_main([*argv, "--no-progress"]) == 2
            line = _one_line(capsys.readouterr().err)
            assert f"PID {holder.pid}" in line and str(target) in line, line
        finally:
            holder.kill()
            holder.wait()
    assert not video.exists() and not (report / "report.json").exists() and not (run / "eval" / "report.json").exists()
    assert not any((run / "videos").glob("*.mp4"))


def test_writes_never_follow_a_link_out_of_the_run_folder(finished_run: Path, tmp_path: Path, capsys) -> None:
    import shutil

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(finished_run, run)
    shutil.copytree(run / "checkpoints", elsewhere)
    before = _snapshot(elsewhere)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    # resuming would write through the link: one line
    assert cli_main(["train", "--resume", str(run), "--total-steps", "128", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(run / "checkpoints") in line and "symbolic link" in line and "outside the run folder" in line, line
    # eval's and record's default folders too
    (run / "eval").symlink_to(tmp_path, target_is_directory=True)
    assert cli_main(["eval", "--run", str(run), "--quick", "--device", "cpu", "--no-progress"]) == 2
    assert "--out" in _one_line(capsys.readouterr().err)
    # --overwrite starts over: the link goes, never what it points at
    argv = ["train", "--out", str(run), "--overwrite", "--total-steps", "64", "--no-progress", "--device", "cpu"]
    tiny = ["--n-envs", "1", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1", "--vec-env", "dummy"]
    assert cli_main([*argv, *tiny, "--env-kwargs", '{"resolution": 36}', "--video-steps", "0"]) == 0, (
        capsys.readouterr().err
    )
    assert not (run / "checkpoints").is_symlink() and (run / "checkpoints" / "latest.json").is_file()
    assert _snapshot(elsewhere) == before


def test_writes_never_follow_a_link_out_of_the_run_folder_at_any_level(
    finished_run: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(finished_run, run)
    latest = run / "checkpoints" / json.loads((run / "checkpoints" / "latest.json").read_text())["dir"]
    shutil.copytree(latest, elsewhere / latest.name)
    before = _snapshot(elsewhere)
    shutil.rmtree(latest)
    latest.symlink_to(elsewhere / latest.name, target_is_directory=True)
    # a checkpoint folder that is a link: resuming refuses, naming it
    assert cli_main(["train", "--resume", str(run), "--total-steps", "128", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{latest} is a symbolic link to {elsewhere / latest.name}, outside the run folder" in line, line
    latest.unlink()
    shutil.copytree(elsewhere / latest.name, latest)
    # a file deep inside eval's and record's default folders
    (elsewhere / "report.md").write_text("not tdwgym's\n")
    (run / "eval" / "old").mkdir(parents=True)
    (run / "eval" / "old" / "report.md").symlink_to(elsewhere / "report.md")
    assert cli_main(["eval", "--run", str(run), "--quick", "--device", "cpu", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(run / "eval" / "old" / "report.md") in line and "--out" in line, line
    (run / "videos").mkdir()
    (run / "videos" / "clips").symlink_to(elsewhere, target_is_directory=True)
    assert cli_main(["record", "--run", str(run), "--steps", "2", "--device", "cpu", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(run / "videos" / "clips") in line and "outside the run folder" in line, line
    # a link that stays inside the run folder is fine
    (run / "checkpoints" / "newest").symlink_to(latest, target_is_directory=True)
    from tdwgym.agents.rundir import RunDir

    RunDir(run).check_writes_inside()
    assert _snapshot(elsewhere) == {**before, "report.md": b"not tdwgym's\n"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def read_only(monkeypatch: pytest.MonkeyPatch):
    """Make folders read-only: ``chmod a-w``, and for root (whom permissions do not stop) ``os.access`` answers for
    them as on a read-only mount, where it says not writable to root too."""
    folders: list[Path] = []
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        inside = any(Path(path).absolute().is_relative_to(f) for f in folders)
        return False if inside and mode & os.W_OK else real_access(path, mode, *args, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(os, "access", access)

    def make(folder: Path) -> Path:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        folders.append(folder.absolute())
        return folder

    yield make
    for folder in folders:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)


def test_commands_that_only_read_a_run_or_model_on_a_read_only_folder_say_to_pass_out(
    finished_run: Path, tmp_path: Path, read_only, capsys
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())["dir"]
    shutil.copy(run / "checkpoints" / latest / "world_model.pt", model_dir / "world_model.pt")
    read_only(run)
    read_only(model_dir)
    before = _snapshot(run)
    quick = ["--quick", "--device", "cpu", "--no-progress"]
    cases = [
        (["eval", "--run", str(run), *quick], "--run"),
        (["eval", "--model", str(model_dir / "world_model.pt"), *quick], "--model"),
        (["record", "--run", str(run), "--steps", "2", "--device", "cpu", "--no-progress"], "--run"),
    ]
    for argv, option in cases:
        assert cli_main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"{option} " in line and "cannot be written" in line and "pass --out" in line, line
    assert _snapshot(run) == before
    # with --out elsewhere each works
    assert cli_main([*cases[0][0], "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "report.json").is_file()
    assert cli_main([*cases[2][0], "--out", str(tmp_path / "v.mp4")]) == 0
    assert (tmp_path / "v.mp4").is_file() and _snapshot(run) == before
