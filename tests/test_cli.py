"""The front door: every command speaks the same vocabulary, every wrong invocation is one line on stderr with exit
status 2 that names the bad value, before anything is written or deleted, and the spellings of a release that never
shipped are gone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tdwgym.cli import build_parser, main

pytest.importorskip("torch")

ENV_COMMANDS = ("train", "compare", "audit", "eval", "record", "play", "dataset")
"""Commands that make an env."""

VOCABULARY = {
    "--env": ENV_COMMANDS,
    "--env-kwargs": ENV_COMMANDS,
    "--level": (*ENV_COMMANDS, "pretrain"),
    "--split": ("train", "compare", "audit", "record", "play", "dataset"),
    "--total-steps": ("train", "compare", "demo"),
    "--steps": ("audit", "eval", "record", "play", "bench", "demo", "dataset"),
    "--seed": ("train", "audit", "eval", "record", "play", "dataset", "demo"),
    "--seeds": ("compare",),
    "--out": ("train", "compare", "audit", "eval", "record", "play", "dataset", "bench", "demo"),
    "--device": ("train", "compare", "audit", "eval", "record", "demo"),
    "--no-progress": ("train", "compare", "eval", "record", "dataset", "demo"),
    "--ray": ("eval", "dataset"),
}
"""Option -> the commands that must have it (``docs/design.md``, "Command-line vocabulary")."""


def _subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _options(command: str) -> set[str]:
    return {s for a in _subparsers()[command]._actions for s in a.option_strings if a.help != "==SUPPRESS=="}


@pytest.mark.parametrize("option", sorted(VOCABULARY))
def test_every_command_speaks_the_shared_vocabulary(option):
    for command in VOCABULARY[option]:
        assert option in _options(command), f"tdwgym {command} has no {option}"
    for command in _subparsers():
        assert "--env-id" not in _options(command) and "--json" not in _options(command)  # only as hidden aliases


def test_every_train_config_field_is_an_option_with_its_real_default(capsys):
    from tdwgym.agents.training import TrainConfig

    train = _subparsers()["train"]
    dests = {a.dest for a in train._actions}
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in dests]
    assert not missing, f"TrainConfig fields without an option: {missing}"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--learning-rate LEARNING_RATE PPO learning rate. (default: 0.0005)" in text
    assert "--gamma GAMMA Discount of PPO and of the intrinsic return." in text and "(default: 0.95)" in text
    assert "--wm-warp, --no-wm-warp" in text and "--clip-range" in text


def test_options_build_the_config_and_keep_its_defaults():
    from tdwgym.agents.training import TrainConfig
    from tdwgym.commands.config_options import config_kwargs

    parser = build_parser()
    args = parser.parse_args(
        ["train", "--env", "playroom", "--level", "2", "--learning-rate", "1e-3", "--wm-resolution", "0"]
    )
    given = config_kwargs(args, args.config_fields)
    assert given == {"env_id": "TDWRoom-Playroom-v0", "learning_rate": 1e-3, "wm_resolution": None}
    assert args.level == 2
    assert TrainConfig(**given).gamma == TrainConfig().gamma


def test_train_defaults_to_an_env_where_pushing_pays_and_level_replaces_only_the_level():
    from tdwgym.agents.training import DEFAULT_ENV_KWARGS, TrainConfig
    from tdwgym.commands.config_options import command_env_kwargs, config_kwargs

    assert TrainConfig().env_id == "TDWRoom-Playroom-v0"
    assert TrainConfig().env_kwargs == DEFAULT_ENV_KWARGS == {"level": 1, "push_cone": 20.0}
    parser = build_parser()
    for argv, expected in (
        (["train"], {"level": 1, "push_cone": 20.0}),
        (["train", "--level", "2"], {"level": 2, "push_cone": 20.0}),
        (["train", "--split", "test_id"], {"level": 1, "push_cone": 20.0, "split": "test_id"}),
        (["train", "--env-kwargs", "{}"], {}),  # the env's own defaults
        (["train", "--env-kwargs", '{"resolution": 36}', "--level", "3"], {"resolution": 36, "level": 3}),
        (["compare", "--level", "0"], {"level": 0, "push_cone": 20.0}),
    ):
        args = parser.parse_args(argv)
        given = config_kwargs(args, args.config_fields)
        assert command_env_kwargs(given, DEFAULT_ENV_KWARGS, args) == expected, argv


def _exit_code(argv: list[str]) -> int:
    """``tdwgym ARGV``'s exit status (argparse's own errors raise ``SystemExit``, the commands' return 2)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "--device auto chose" not in line]


WRONG = [
    (["train", "--total-steps", "0"], "0"),
    (["train", "--total-steps", "-5"], "-5"),
    (["train", "--env", "kitchen"], "kitchen"),
    (["train", "--env-kwargs", "{bad"], "{bad"),
    (["train", "--env-kwargs", '{"levl": 1}'], "levl"),
    (["train", "--env-kwargs", '{"level": 9}'], "9"),
    (["train", "--level", "9"], "9"),
    (["train", "--device", "tpu"], "tpu"),
    (["train", "--n-envs", "0"], "0"),
    (["train", "--curiosity", "telepathy"], "telepathy"),
    (["train", "--resume", "no_such_run"], "no_such_run"),
    (["train", "--resume", "no_such_run", "--n-envs", "2"], "no_such_run"),
    (["compare", "--total-steps", "0"], "0"),
    (["compare", "--env", "kitchen"], "kitchen"),
    (["compare", "--agents", "robot"], "robot"),
    (["audit", "--steps", "0"], "0"),
    (["audit", "--n-steps", "8"], "--n-steps"),
    (["audit", "--total-steps", "100"], "--total-steps"),
    (["audit", "--curiosity", "none"], "none"),
    (["eval", "--run", "no_such_run"], "no_such_run"),
    (["eval", "--model", "missing.pt"], "missing.pt"),
    (["eval", "--steps", "0", "--model", "pretrained"], "0"),
    (["eval"], "--run"),
    (["record", "--policy", "spin"], "spin"),
    (["record", "--steps", "0"], "0"),
    (["record", "--out", "x.avi"], ".avi"),
    (["record", "--run", "no_such_run"], "no_such_run"),
    (["record", "--world-model", "nope.pt"], "nope.pt"),
    (["record", "--env", "kitchen"], "kitchen"),
    (["play", "--env", "kitchen"], "kitchen"),
    (["play", "--out", "x.avi"], "x.avi"),
    (["dataset", "--out", "d", "--env", "bowling"], "bowling"),
    (["dataset", "--out", "d", "--episodes", "0"], "0"),
    (["dataset", "--out", "d", "--split", "val"], "val"),
    (["dataset", "--out", "d", "--env-kwargs", '{"levl": 1}'], "levl"),
    (["dataset", "--out", "d", "--policy", "nope.zip"], "nope.zip"),
    (["dataset", "--out", "a_file"], "a_file"),
    (["bench", "--steps", "0"], "0"),
    (["bench", "--out", "a_file/bench.json"], "a_file"),
    (["record", "--out", "a_file/v.mp4"], "a_file"),
    (["pretrain", "--out", "a_file/p"], "a_file"),
    (["dataset", "--out", "a_file/d"], "a_file"),
    (["compare", "--out", "a_file/c"], "a_file"),
    (["eval", "--model", "pretrained", "--out", "a_file/e"], "a_file"),
    (["demo", "--total-steps", "0"], "0"),
    (["demo", "--steps", "0"], "0"),
    (["demo", "--seed", "-1"], "-1"),
    (["demo", "--device", "tpu"], "tpu"),
    (["demo", "--out", "a_file"], "a_file"),
    (["rollout"], "rollout"),
]


@pytest.mark.parametrize(("argv", "bad"), WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_a_wrong_invocation_is_one_line_exit_2_and_leaves_nothing_behind(argv, bad, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)  # a run that --overwrite must not delete before the door is passed
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    extra = ["--out", str(run), "--overwrite"] if argv[0] == "train" and "--resume" not in argv else []
    assert _exit_code([*argv, *extra]) == 2
    err = capsys.readouterr().err
    lines = _stderr_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("tdwgym") and "error:" in lines[0] and bad in lines[0], lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_cuda_without_cuda_is_an_error_and_auto_says_what_it_chose(capsys):
    import torch

    from tdwgym.agents.device import check_device
    from tdwgym.util.errors import UsageError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="--device cuda: CUDA is not available"):
        check_device("cuda")
    assert str(check_device("auto", "tdwgym train")) == "cpu"
    assert capsys.readouterr().err == "tdwgym train: --device auto chose cpu (CUDA is not available)\n"
    assert _exit_code(["train", "--device", "cuda", "--out", "never_written"]) == 2
    assert not Path("never_written").exists()


OLD_SPELLINGS = [
    ["train", "--env-id", "TDWRoom-Playroom-v0"],
    ["train", "--run-dir", "runs/x"],
    ["dataset", "--out", "d", "--scenario", "gravity"],
    ["bench", "--json", "b.json"],
    ["play", "--save", "s.mp4"],
    ["play", "--max-steps", "5"],
    ["eval", "--model", "pretrained", "--frames", "7"],
    ["dataset", "--out", "d", "--frames", "7"],
    ["pretrain", "--env", "occlusion"],
]


@pytest.mark.parametrize("argv", OLD_SPELLINGS, ids=[" ".join(a) for a in OLD_SPELLINGS])
def test_spellings_of_a_release_that_never_shipped_are_gone(argv, capsys):
    """0.1.0 was never released, so its spellings get no deprecation period: one line naming the option, status 2."""
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments" in err[0] and argv[-2] in err[0], err


def test_pretrain_takes_every_env_level_and_names_its_mix_envs(tmp_path):
    from tdwgym.agents.pretraining import PretrainConfig

    args = build_parser().parse_args(["pretrain", "--envs", "occlusion:2,gravity", "--level", "0,3", "--out", "r"])
    assert (args.envs, args.level) == ("occlusion:2,gravity", "0,3")
    assert PretrainConfig(envs=args.envs, level=args.level).levels() == [0, 3]
    assert _exit_code(["pretrain", "--level", "0,4", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_resume_takes_the_run_folder_in_every_command():
    having = {}
    for command, sub in _subparsers().items():
        for action in sub._actions:
            if "--resume" in action.option_strings:
                having[command] = (action.nargs, action.metavar, action.const)
    assert set(having) >= {"train", "pretrain"}
    assert set(having.values()) == {(None, "RUN_DIR", None)}, having


def test_resume_only_raises_the_budget(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"env_id": "TDWRoom-Occlusion-v0", "n_envs": 1}))
    assert _exit_code(["train", "--resume", str(run), "--n-envs", "2", "--level", "1"]) == 2
    err = capsys.readouterr().err
    assert "--n-envs, --level cannot change" in err and "--total-steps" in err


def test_without_the_agents_extra_core_commands_work_and_agent_commands_name_the_pip_command(tmp_path):
    """``tdwgym`` with torch missing: ``--help`` lists every command, ``record`` records (core's plain path), and an
    agents command is one line naming ``pip install 'tdwgym[agents]'`` with exit status 2."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from tdwgym.cli import main\n"
        "out = sys.argv[1]\n"
        "assert main(['record', '--steps', '2', '--size', '16', '--out', out, '--no-progress']) == 0\n"
        "sys.exit(main(['train', '--total-steps', '10']))\n"
    )
    out = tmp_path / "plain.mp4"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tdwgym train: error:") and "pip install 'tdwgym[agents]'" in err[0]
    assert out.is_file()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['torch'] = None\nfrom tdwgym.cli import main\nmain(['--help'])",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "record" in proc.stdout and "train" in proc.stdout, proc.stderr


def test_help_lists_every_command_without_importing_torch_or_sb3():
    """``tdwgym --help`` builds no command's options: it imports neither torch nor stable-baselines3 (seconds of
    import time), and still lists every command with its one-line help."""
    import subprocess
    import sys

    from tdwgym.commands import COMMANDS

    code = (
        "import sys\n"
        "from tdwgym.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    for name in COMMANDS:
        assert f"    {name} " in proc.stdout, name
