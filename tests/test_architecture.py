"""The import graph: no package of pubsubkit, myevents or a backend plugin imports itself in a circle.

The graph is built with :mod:`ast` from the sources under ``src/`` and ``plugins/*/src/``: every import counts,
those inside functions too, except the ones under ``if TYPE_CHECKING:`` (they never run). An edge is from the
importing module to the module named (``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "src", *sorted((ROOT / "plugins").glob("*/src"))]

#: Expected failures: imports of pubsubkit's core that still close circles. The registry loads the built-in
#: backends (in ``get_plugin_manager``), which import the registry's specs back. Each entry must still exist and
#: close a circle (so that the list shrinks as they go), and no other circle may appear.
KNOWN_CYCLE_EDGES = frozenset(
    {
        ("pubsubkit.registry", "pubsubkit.backends.memory"),
        ("pubsubkit.registry", "pubsubkit.backends.sqlite"),
    }
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for src in SOURCES:
        for path in sorted(src.rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of ``body``, nested ones included, except what is under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _statements([child])
            else:
                yield from ast.walk(child)


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                named.add(sub if sub in MODULES else base)
    return {n for n in named if n in MODULES and n != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]], within: str) -> list[str] | None:
    """One circle of imports among the modules of package ``within``, or None."""
    nodes = {m for m in graph if m == within or m.startswith(within + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m] & nodes):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(nodes):
        if m not in state and (found := visit(m)):
            return found
    return None


PACKAGES = sorted({m.split(".")[0] for m in MODULES})


def test_the_packages_are_found() -> None:
    assert {"pubsubkit", "myevents", "pubsubkit_kafka", "pubsubkit_rabbitmq", "pubsubkit_sqs"} <= set(PACKAGES)
    assert {"pubsubkit_mongo", "pubsubkit_dynamodb"} <= set(PACKAGES)
    assert "pubsubkit.backends.sqlite.store" in MODULES


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_within_a_package(package: str) -> None:
    graph = {m: {n for n in targets if (m, n) not in KNOWN_CYCLE_EDGES} for m, targets in GRAPH.items()}
    cycle = _cycle(graph, package)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", [p for p in PACKAGES if p.startswith("pubsubkit_")] + ["pubsubkit.backends"])
def test_no_cycle_in_the_backends_even_with_the_known_edges(package: str) -> None:
    cycle = _cycle(GRAPH, package)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("edge", sorted(KNOWN_CYCLE_EDGES))
def test_a_known_cycle_edge_still_closes_a_cycle(edge: tuple[str, str]) -> None:
    """Strict: once an import of the list is gone or no longer closes a circle, take it off the list."""
    importer, imported = edge
    assert imported in GRAPH[importer], f"{importer} no longer imports {imported}: remove it from KNOWN_CYCLE_EDGES"
    graph = {m: set(t) for m, t in GRAPH.items()}
    assert _cycle(graph, "pubsubkit") is not None, "pubsubkit has no import cycle left: empty KNOWN_CYCLE_EDGES"
    reach: set[str] = set()
    todo = [imported]
    while todo:
        m = todo.pop()
        if m not in reach:
            reach.add(m)
            todo.extend(graph[m])
    assert importer in reach, f"{importer} -> {imported} closes no cycle any more: remove it from KNOWN_CYCLE_EDGES"


def test_imports_under_type_checking_and_in_functions() -> None:
    """The graph builder itself: TYPE_CHECKING imports are left out, imports in functions are kept."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
        "def f():\n    import c\n"
    )
    names = {a.name for n in _statements(tree.body) if isinstance(n, ast.Import) for a in n.names}
    assert names == {"b", "c"}
