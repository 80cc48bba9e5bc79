"""The README's Python snippets run as written (in order, in one namespace, as a reader pastes them), so that the
first code a user copies cannot go stale. Snippets that need a ThreeDWorld build are the only ones left out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippets() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of the README."""
    text = README.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)
    ]


def needs_tdw_build(code: str) -> bool:
    return 'backend="tdw"' in code


def test_the_readme_has_snippets_and_only_tdw_ones_are_skipped():
    snippets = python_snippets()
    assert len(snippets) >= 5
    skipped = [line for line, code in snippets if needs_tdw_build(code)]
    assert len(skipped) <= 1, f"README snippets skipped for needing TDW at lines {skipped}"


def test_readme_snippets_run(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import numpy as np

    from tdwgym.tools.dataset import DatasetConfig, generate

    monkeypatch.chdir(tmp_path)
    # the dataset snippet reads data/occlusion_train, which the README's `tdwgym dataset` command writes
    generate(DatasetConfig(out=tmp_path / "data" / "occlusion_train", episodes=1, frames=24), progress=False)
    namespace: dict = {"__name__": "readme"}
    ran = []
    for line, code in python_snippets():
        if needs_tdw_build(code):
            continue
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as error:  # name the snippet: the traceback's file is README.md:<line>
            raise AssertionError(f"the README snippet at line {line} fails: {error!r}") from error
        ran.append(line)
    assert len(ran) >= 5
    # what the snippets promise in their comments
    assert namespace["obs"].dtype == np.uint8
    pair = namespace["pairs"][0]
    assert pair.possible.shape == pair.impossible.shape and pair.possible.dtype == np.uint8
    batch = namespace["batch"]
    assert tuple(batch["rgb"].shape[1:]) == (16, 3, 64, 64)
