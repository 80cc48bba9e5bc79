"""The documentation site builds with ``mkdocs build --strict``: a broken link, a page missing from the docs folder
or a docstring the API reference cannot parse fails here (and so in CI) instead of on the published site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build(tmp_path: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess:
    env = {**os.environ, "TDWGYM_API_SRC": str(tmp_path / "api_src"), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    result = build(tmp_path)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    site = tmp_path / "site"
    for page in ("index.html", "getting_started/index.html", "design/index.html", "results/index.html"):
        assert (site / page).is_file(), page
    # the API reference is generated from the docstrings, the subpackages mapped by package-dir included
    envs = (site / "api" / "envs" / "index.html").read_text()
    assert "tdwgym.envs.base.TDWRoomEnv" in envs
    models = (site / "api" / "models" / "index.html").read_text()
    assert "tdwgym.agents.models.pixel" in models


def test_a_broken_link_fails_the_build(tmp_path):
    pytest.importorskip("mkdocs")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](no_such_page.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: broken\ndocs_dir: docs\n")
    result = build(tmp_path, config)
    assert result.returncode != 0
    assert "no_such_page.md" in result.stderr
