"""docs/design.md, the house's design card, names only paths and modules that exist: a module moved or renamed
without the card following fails here (the card's links to other pages are checked by ``mkdocs build --strict``,
tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
PACKAGE_DIRS = {"tdwgym.envs": ROOT / "envs", "tdwgym.agents": ROOT / "agents", "tdwgym": ROOT / "tdwgym"}
"""Import name -> source folder (pyproject's package-dir), the longest prefix first."""
TOP_LEVEL = ("tdwgym/", "envs/", "agents/", "tests/", "docs/", "scripts/", "examples/")
OUTSIDE = {"pusher_v5.py", "tdw/FBOutput/*.py"}
"""Files the card names that are not tdwgym's (Gymnasium's, the tdw package's)."""


def text() -> str:
    return DESIGN.read_text()


def code_spans(markdown: str) -> list[str]:
    """Every inline code span outside fenced blocks."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose)


def layout_block(markdown: str) -> str:
    """The fenced block of the Layout section (the folder tree)."""
    section = markdown.split("## Layout", 1)[1]
    return re.search(r"^```\n(.*?)^```", section, flags=re.S | re.M).group(1)


def module_file(dotted: str) -> Path | None:
    """The source file of module or package ``tdwgym.x.y``, or None."""
    for package, folder in PACKAGE_DIRS.items():
        if dotted == package or dotted.startswith(package + "."):
            rest = dotted[len(package) :].lstrip(".").split(".") if dotted != package else []
            base = folder.joinpath(*rest) if rest else folder
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if rest and candidate.is_file() or not rest and candidate.name == "__init__.py" and candidate.is_file():
                    return candidate
            return None
    return None


def module_exists(name: str) -> bool:
    """Whether ``tdwgym.x.y`` is a module or package, or an attribute of a module file (not of a package: a module
    that moved out of a package must not pass as the package's attribute)."""
    if module_file(name) is not None:
        return True
    parent, _, _ = name.rpartition(".")
    found = module_file(parent) if parent else None
    return found is not None and found.name != "__init__.py"


def test_the_card_is_in_the_repository_and_developers_md_points_at_it():
    developers = (ROOT / "DEVELOPERS.md").read_text()
    assert "docs/design.md" in developers
    assert "shared/design.md" not in developers, "DEVELOPERS.md must not send contributors outside the repository"


def test_every_path_the_card_names_exists():
    paths = [
        span.split()[0].rstrip(",")
        for span in code_spans(text())
        if span.startswith(TOP_LEVEL) and "<" not in span and span not in OUTSIDE
    ]
    assert len(paths) >= 20, paths  # the card does name the layout
    missing = [p for p in paths if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"docs/design.md names paths that do not exist: {missing}"


def test_every_module_the_card_names_exists():
    names = {m for span in code_spans(text()) for m in re.findall(r"\btdwgym(?:\.[a-z_]+)+", span)}
    assert len(names) >= 3, names
    entry_points = set(re.findall(r'entry-points\."([^"]+)"', (ROOT / "pyproject.toml").read_text()))
    missing = sorted(n for n in names if not module_exists(n) and n not in entry_points)
    assert not missing, f"docs/design.md names modules that do not exist: {missing}"


def test_every_file_and_folder_of_the_layout_tree_exists():
    """A line that starts at the margin names a top-level folder or file; the names on it and on the indented lines
    below it (``files.py``, ``backends/``) must exist somewhere in that folder. The package folders are checked name
    by name; examples/, scripts/, docs/ and tests/ are described in prose and checked only as folders."""
    tree = layout_block(text())
    top = None
    checked = 0
    for line in tree.splitlines():
        head = line.split()[0] if line.strip() else ""
        if not line.startswith(" "):
            top = None
            if head.endswith("/"):
                assert (ROOT / head).is_dir(), f"the layout names a folder that does not exist: {head}"
                if head in ("tdwgym/", "envs/", "agents/"):
                    top = ROOT / head.rstrip("/")
            elif head:
                assert (ROOT / head).is_file(), f"the layout names a file that does not exist: {head}"
            line = line[len(head) :]  # the rest of a package line names its modules
        if top is None:
            continue
        for name in re.findall(r"\b([a-z_0-9]+(?:\.py|/))", line):
            pattern = name.rstrip("/")
            found = any(p.name == pattern for p in top.rglob(pattern))
            assert found, f"the layout names {name} under {top.name}/, which holds no such file or folder"
            checked += 1
    assert checked >= 40, checked


@pytest.mark.parametrize(
    "name,exists",
    [
        ("tdwgym.sim.scene", True),
        ("tdwgym.agents.models.pixel", True),
        ("tdwgym.tools.policies.load_policy", True),
        ("tdwgym.scene", False),
        ("tdwgym.agents.models_old", False),
    ],
)
def test_module_exists_tells_moved_modules(name, exists):
    assert module_exists(name) is exists
