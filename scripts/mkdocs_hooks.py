"""MkDocs hook (``hooks:`` in mkdocs.yml): lets mkdocstrings find ``tdwgym.envs`` and ``tdwgym.agents``.

pyproject's ``package-dir`` maps ``envs/`` to ``tdwgym.envs`` and ``agents/`` to ``tdwgym.agents``; griffe, which
reads the sources for the API reference without importing them, finds a package by its folder and so sees neither
inside ``tdwgym/``. Before the build this hook lays out ``build/api_src/tdwgym/`` (mkdocs.yml points the python
handler there): a copy of ``tdwgym/`` with ``envs/`` and ``agents/`` inside, as the subpackages they are. Nothing is
imported, and the repository's own folders are left as they are.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SUBPACKAGES = {"envs": "envs", "agents": "agents"}
"""Subpackage of tdwgym -> its source folder at the repository's top (pyproject's package-dir)."""


ENV_VAR = "TDWGYM_API_SRC"
"""Where the copy goes instead of ``build/api_src`` (relative paths from the repository); mkdocs.yml reads it too."""


def api_sources(root: Path, out: Path) -> Path:
    """Lay out ``out/tdwgym`` as Python sees the installed package; returns ``out``.

    The sources are copied, not linked: griffe resolves links to their targets and would then look for the
    subpackages beside the real ``tdwgym/`` again.
    """
    package = out / "tdwgym"
    if package.exists():  # only the copy this hook made: never the folder it was pointed at
        shutil.rmtree(package)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pt")
    shutil.copytree(root / "tdwgym", package, ignore=ignore)
    for name, folder in SUBPACKAGES.items():
        shutil.copytree(root / folder, package / name, ignore=ignore)
    return out


def on_startup(command: str, dirty: bool, **kwargs: object) -> None:
    """Lay out the sources before any plugin reads its config (mkdocs.yml's python handler finds them at
    ``$TDWGYM_API_SRC``, by default ``build/api_src``; a search path that does not exist yet would be dropped)."""
    root = Path(__file__).resolve().parents[1]  # the repository: this file is in scripts/
    api_sources(root, root / os.environ.get(ENV_VAR, "build/api_src"))
