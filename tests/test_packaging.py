"""The package layout: envs/ and agents/ install as tdwgym.envs and tdwgym.agents, never as top-level names."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import tdwgym, tdwgym.envs, tdwgym.agents, tdwgym.sim.backends; print(tdwgym.envs.__file__)"


def _run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True)


def test_installed_package_imports_subpackages_from_anywhere(tmp_path):
    out = _run(IMPORTS, tmp_path)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (ROOT / "envs" / "__init__.py").resolve()


@pytest.mark.parametrize("name", ["envs", "agents"])
def test_no_generic_top_level_module_is_installed(tmp_path, name):
    out = _run(f"import {name}", tmp_path)
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr


def test_built_wheel_maps_envs_and_agents_under_tdwgym(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("tdwgym-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tdwgym/envs/occlusion.py" in names and "tdwgym/agents/__init__.py" in names
    assert "tdwgym/py.typed" in names
    for shipped in ("objects-64.pt", "recurrent-32.pt"):  # the shipped world models
        assert f"tdwgym/agents/pretrained/{shipped}" in names
    assert not [n for n in names if n.split("/")[0] in ("envs", "agents", "tests", "examples")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out = _run(IMPORTS, tmp_path, PYTHONPATH=str(site))
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (site / "tdwgym" / "envs" / "__init__.py").resolve()
