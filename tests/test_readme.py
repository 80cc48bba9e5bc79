"""The README's Python snippets run as written (in order, in one namespace, as a reader pastes them), so that the
first code a user copies cannot go stale; so do the getting-started guide's snippets that the README does not hold.
The only change is the training budget of the stable-baselines3 snippet (``TINY``): a few steps instead of 30,000.
Snippets that need a ThreeDWorld build are the only ones left out. The README stays a front page: at most 200
lines, and it keeps the two commands CI and new users read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting_started.md"

TINY = {
    "TrainConfig(total_steps=30_000)": "TrainConfig(total_steps=64, n_envs=2, n_steps=32, batch_size=32, n_epochs=1)",
}
"""README text -> what the test runs instead: the settings that make the SB3 snippet take seconds."""


def python_snippets(path: Path = README) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of a markdown file."""
    text = path.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)
    ]


def needs_tdw_build(code: str) -> bool:
    return 'backend="tdw"' in code


def tiny(code: str) -> str:
    for long, short in TINY.items():
        code = code.replace(long, short)
    return code


def run_snippets(path: Path, namespace: dict, skip: set[str] = frozenset()) -> list[int]:
    ran = []
    for line, code in python_snippets(path):
        if needs_tdw_build(code) or code in skip:
            continue
        try:
            exec(compile(tiny(code), f"{path.name}:{line}", "exec"), namespace)
        except Exception as error:  # name the snippet: the traceback's file is <file>:<line>
            raise AssertionError(f"the {path.name} snippet at line {line} fails: {error!r}") from error
        ran.append(line)
    return ran


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    # CI (.ci/run) and new users read these two lines
    assert "make demo   # creates .venv, installs tdwgym, runs the demo; output lands in runs/demo/" in text
    assert "make test   # creates or reuses .venv, installs the dev extras, runs the test suite" in text
    assert "pip install -e '.[agents]'" in text
    # every extra pyproject.toml defines is named where the README explains the extras
    extras = re.search(r"\[project\.optional-dependencies\](.*?)\n\[", (ROOT / "pyproject.toml").read_text(), re.S)
    for name in re.findall(r"^(\w+) = \[", extras.group(1), re.M):
        assert f"`{name}`" in text, f"the README does not name the {name!r} extra"
    # one moving picture, from the gallery, that exists
    gifs = re.findall(r"!\[[^\]]*\]\((docs/gallery/[^)]+\.gif)\)", text)
    assert len(gifs) == 1 and (ROOT / gifs[0]).is_file()
    # relative links point at files of the repository
    for target in re.findall(r"\]\((?!https?://)([^)#]+)", text):
        assert (ROOT / target).exists(), f"the README links to {target}, which does not exist"


def test_the_readme_has_snippets_and_only_tdw_ones_are_skipped():
    snippets = python_snippets()
    assert len(snippets) >= 3
    skipped = [line for line, code in snippets if needs_tdw_build(code)]
    assert len(skipped) <= 1, f"README snippets skipped for needing TDW at lines {skipped}"
    for long in TINY:  # a tiny setting that no longer matches would silently run the full budget
        assert any(long in code for _, code in snippets), f"the README no longer holds {long!r}: update TINY"


def test_readme_and_getting_started_snippets_run(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("stable_baselines3")
    import numpy as np

    from tdwgym.agents import CuriosityConfig, CuriosityVecEnv, TrainConfig

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    ran = run_snippets(README, namespace)
    assert len(ran) == len(python_snippets())
    # what the snippets promise in their comments
    assert namespace["obs"].dtype == np.uint8 and namespace["obs"].shape == (64, 64, 3)
    pair = namespace["pairs"][0]
    assert pair.possible.shape == pair.impossible.shape and pair.possible.dtype == np.uint8
    # the SB3 snippet trains with the reward `tdwgym train` pays and PPO's settings of `tdwgym train`
    venv, model = namespace["venv"], namespace["model"]
    assert isinstance(venv, CuriosityVecEnv)
    assert CuriosityConfig.of(venv.config) == CuriosityConfig.of(TrainConfig())
    assert model.num_timesteps >= 64 and model.gamma == TrainConfig().gamma
    assert (tmp_path / "runs" / "sb3" / "curiosity.json").is_file()
    venv.close()

    readme_code = {code for _, code in python_snippets()}
    guide_only = run_snippets(GETTING_STARTED, namespace, skip=readme_code)
    assert guide_only, "the getting-started guide should hold snippets of its own (RecordVideo)"
    namespace["env"].close()
