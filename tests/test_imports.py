"""The package has no import cycle, lazy and type-only imports included.

Every module's imports are read with :mod:`ast`: module-level and inside
functions or classes alike, and, unless ``type_only=False``, the body of
``if TYPE_CHECKING:`` blocks too (never executed, but a circle of type-only
imports still ties the modules together for a reader). ``from pkg import name``
is an import of the module ``pkg.name`` when that module exists, else of ``pkg``.
The strongly connected components of the resulting graph (Tarjan's algorithm) are
the import loops.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root`` by dotted name (packages by their __init__)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(
    node: ast.AST, *, type_only: bool = True
) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` (``if TYPE_CHECKING:`` bodies if ``type_only``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test) and not type_only:
            for other in child.orelse:  # the else branch does run
                yield from _import_nodes(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _import_nodes(child, type_only=type_only)


def module_imports(
    name: str, path: Path, known: Mapping[str, Path], *, type_only: bool = True
) -> set[str]:
    """The modules of ``known`` that module ``name`` (file ``path``) imports."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in _import_nodes(tree, type_only=type_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph(root: Path, package: str, *, type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (type-only imports unless told not to)."""
    known = module_files(root, package)
    return {
        name: module_imports(name, path, known, type_only=type_only) for name, path in known.items()
    }


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (each sorted)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def find_loop(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """One import loop through a component: ``[a, b, ..., a]``."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}

    def walk(node: str) -> bool:
        for target in sorted(graph[node] & members):
            if target == start:
                path.append(start)
                return True
            if target not in seen:
                seen.add(target)
                path.append(target)
                if walk(target):
                    return True
                path.pop()
        return False

    walk(start)
    return path


def import_loops(root: Path, package: str) -> list[list[str]]:
    """One import loop per strongly connected component of ``package`` under ``root``."""
    graph = import_graph(root, package)
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    return [find_loop(graph, component) for component in cycles]


def describe(root: Path, package: str) -> str:
    """Every import loop, and the modules entangled with it, as text."""
    graph = import_graph(root, package)
    lines = ["import loops (fix each: every module listed imports the next):"]
    for component in (c for c in strongly_connected(graph) if len(c) > 1):
        lines.append("  " + " -> ".join(find_loop(graph, component)))
        lines.append("    all modules of this tangle: " + ", ".join(component))
    return "\n".join(lines)


# --------------------------------------------------------------------------- tests


def test_simulacra_has_no_import_cycle():
    assert not import_loops(SRC, "simulacra"), describe(SRC, "simulacra")


def test_the_graph_sees_lazy_type_only_and_package_imports():
    graph = import_graph(SRC, "simulacra")
    assert "simulacra.llm.engine" in graph["simulacra.llm.cache"]
    assert "simulacra.scenario" in graph["simulacra.simulation.model"]
    assert "simulacra.simulation.runner" in graph["simulacra.cli"]  # a function-level import
    # only under TYPE_CHECKING: seen by default, not in the runtime graph
    assert "simulacra.simulation.dialogue" in graph["simulacra.simulation.probes"]
    runtime = import_graph(SRC, "simulacra", type_only=False)
    assert "simulacra.simulation.dialogue" not in runtime["simulacra.simulation.probes"]


def _reaches(graph: Mapping[str, set[str]], module: str) -> set[str]:
    """Every module ``module`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _room(module: str) -> str:
    """The room of a module: ``simulacra.llm.engine`` -> ``llm``, ``simulacra.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# Rooms a room may import (docs/architecture.md); errors and the package itself are free.
ALLOWED_ROOMS = {
    "llm": set(),
    "schema": set(),  # the shared schema layer: errors, pydantic and the standard library
    "scenario": {"instruments", "schema"},  # instruments.likert's point limit
    "instruments": {"llm"},
    "analysis": set(),
    "plots": {"analysis"},
}
# Single modules a room may import beyond its allowed rooms.
ALLOWED_MODULES = {
    # the scenario builds Simulacrum data and checks model names in the registry
    "scenario": {"simulacra.simulation.simulacrum", "simulacra.llm.models"},
}


def test_rooms_import_only_what_the_architecture_allows():
    graph = import_graph(SRC, "simulacra")
    wrong = []
    for module, targets in sorted(graph.items()):
        room = _room(module)
        if room not in ALLOWED_ROOMS:
            continue
        allowed = {room, "errors", ""} | ALLOWED_ROOMS[room]
        for target in sorted(targets):
            if _room(target) in allowed or target in ALLOWED_MODULES.get(room, set()):
                continue
            wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_scenario_reaches_no_model_machinery():
    graph = import_graph(SRC, "simulacra")
    reached = _reaches(graph, "simulacra.scenario")
    assert "simulacra.simulation.model" not in reached
    assert not {m for m in reached if m.startswith("simulacra.llm.engine")}


def write_package(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_detector_finds_a_lazy_cycle_and_names_its_modules(tmp_path):
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def late():\n    from pkg.sub import c\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from .. import a\n",  # relative import of pkg.a
            "pkg/d.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg import a\n"
                "else:\n    import json\n"
            ),
            "pkg/e.py": "import pkg.d\n",
        },
    )
    loops = import_loops(tmp_path, "pkg")
    assert loops == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    assert "pkg.a -> pkg.b -> pkg.sub.c -> pkg.a" in describe(tmp_path, "pkg")
    runtime = import_graph(tmp_path, "pkg", type_only=False)
    assert runtime["pkg.d"] == set()  # TYPE_CHECKING imports do not run
    assert runtime["pkg.e"] == {"pkg.d"}
    assert import_graph(tmp_path, "pkg")["pkg.d"] == {"pkg.a"}  # but count by default


def test_the_detector_passes_an_acyclic_package(tmp_path):
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import x\n",
            "pkg/a.py": "x = 1\n",
            "pkg/b.py": "def f():\n    from pkg import a\n",
        },
    )
    assert import_loops(tmp_path, "pkg") == []
