"""The house is one-way and every folder is a floor: the import graph of every tdwgym module (imports inside
functions included) has no cycle, no module imports from a floor above its own (``docs/design.md``, "Floors of
the house"), the path of a module says its floor, and no two modules share a file name.

Floors, from the bottom, by folder: (0) ``tdwgym/util/`` (helpers, no tdwgym imports); (1) ``tdwgym/sim/``: scene,
geometry, patterns; (2) ``tdwgym/sim/backends/``; (3) ``envs/`` (``tdwgym.envs``), ``tdwgym/registration.py`` and
the ``tdwgym`` package itself (it registers the ids); (4) ``tdwgym/tools/`` (dataset, video, recording, policies,
vector, cluster, throughput, keyboard); (5) ``agents/`` (``tdwgym.agents``); (6) ``tdwgym/commands/``, the
``tdwgym`` command's front door ``tdwgym/cli.py`` and ``tdwgym/__main__.py``. A module outside these folders is on
no floor, and the tests say so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"tdwgym": ROOT / "tdwgym", "tdwgym.envs": ROOT / "envs", "tdwgym.agents": ROOT / "agents"}
"""Import name -> source folder (pyproject's package-dir; tdwgym.sim, tdwgym.util, ... lie inside tdwgym/)."""

FLOOR_NAMES = {
    0: "util",
    1: "scene",
    2: "backends",
    3: "envs",
    4: "tools",
    5: "agents",
    6: "commands",
}
FLOORS: tuple[tuple[str, int], ...] = (
    ("tdwgym.util", 0),
    ("tdwgym.sim.backends", 2),
    ("tdwgym.sim", 1),
    ("tdwgym.envs", 3),
    ("tdwgym.registration", 3),
    ("tdwgym.tools", 4),
    ("tdwgym.agents", 5),
    ("tdwgym.commands", 6),
    ("tdwgym.cli", 6),
    ("tdwgym.__main__", 6),
)
"""Module path prefix -> floor, the first match wins (the folder a module is in says its floor)."""


def floor(module: str) -> int:
    """The floor of a tdwgym module."""
    if module == "tdwgym":
        return 3  # the package registers the env ids
    for prefix, number in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            return number
    raise ValueError(f"{module} is on no floor: put it in the folder of its floor (see {__name__}.FLOORS)")


def modules() -> dict[str, Path]:
    """Every tdwgym module name -> its source file."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The tdwgym modules that ``module`` imports anywhere in its file (top level, functions, classes)."""
    package = module if _is_package(path) else module.rpartition(".")[0]
    found: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:  # ``import tdwgym.x.y`` of an attribute: its module
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base)  # ``from pkg import module`` or ``from module import name``
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the tdwgym modules it imports."""
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "tdwgym.agents.training" in graph["tdwgym.commands.train"]  # imported inside the command functions only
    assert "tdwgym.registration" in graph["tdwgym"]


def test_every_module_is_in_the_folder_of_a_floor():
    nowhere = []
    for module in modules():
        try:
            floor(module)
        except ValueError as exc:
            nowhere.append(str(exc))
    assert not nowhere, "\n".join(nowhere)


SHARED_NAMES = {"__init__", "__main__", "base"}
"""File names that may repeat: a package's ``__init__`` and ``__main__``, and a package's ``base`` module."""


def duplicated_names(files: dict[str, Path]) -> dict[str, list[str]]:
    """File name -> the modules that share it (names of :data:`SHARED_NAMES` aside)."""
    by_name: dict[str, list[str]] = {}
    for module, path in files.items():
        if path.stem not in SHARED_NAMES:
            by_name.setdefault(path.stem, []).append(module)
    return {name: sorted(mods) for name, mods in by_name.items() if len(mods) > 1}


def test_no_two_modules_share_a_file_name():
    found = duplicated_names(modules())
    assert not found, "modules that share a file name (rename one so its path says what it is):\n" + "\n".join(
        f"{name}.py: {', '.join(mods)}" for name, mods in sorted(found.items())
    )


def test_duplicate_finder():
    files = {
        "tdwgym.tools.recording": Path("tdwgym/tools/recording.py"),
        "tdwgym.agents.recording": Path("agents/recording.py"),
        "tdwgym.sim.backends.base": Path("tdwgym/sim/backends/base.py"),
        "tdwgym.envs.base": Path("envs/base.py"),
        "tdwgym.envs": Path("envs/__init__.py"),
        "tdwgym.agents": Path("agents/__init__.py"),
    }
    assert duplicated_names(files) == {"recording": ["tdwgym.agents.recording", "tdwgym.tools.recording"]}


MAX_LINES = 600
"""A module longer than this says why in its docstring (a sentence with "600 lines")."""


def test_no_module_over_600_lines_without_a_reason():
    long = []
    for module, path in modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_LINES and "600 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{module}: {text.count(chr(10))} lines")
    assert not long, "split these, or say in the docstring why they are longer than 600 lines:\n" + "\n".join(long)


def test_core_never_imports_agents():
    graph = import_graph()
    upward = sorted(f"{m} -> {n}" for m, targets in graph.items() for n in targets if floor(m) < 5 and floor(n) == 5)
    assert not upward, "core imports tdwgym.agents (move the code up, or add a registration point):\n" + "\n".join(
        upward
    )


def test_no_module_imports_from_a_floor_above_its_own():
    graph = import_graph()
    upward = sorted(
        f"{m} (floor {floor(m)}, {FLOOR_NAMES[floor(m)]}) -> {n} (floor {floor(n)}, {FLOOR_NAMES[floor(n)]})"
        for m, targets in graph.items()
        for n in targets
        if floor(n) > floor(m)
    )
    assert not upward, "imports that reach up a floor:\n" + "\n".join(upward)


def test_no_import_cycles_even_lazy_ones():
    found = cycles(import_graph())
    assert not found, "import cycles (counting imports inside functions):\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_cycle_finder(graph, expected):
    assert cycles(graph) == expected
