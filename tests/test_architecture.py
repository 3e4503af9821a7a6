"""The import graph: no package of pubsubkit, myevents or a backend plugin imports itself in a circle,
and myevents' behaviour does not import its HTTP side.

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


def _imports(module: str, path: Path, *, external: bool = False) -> set[str]:
    """The modules ``module`` imports: those of the scanned sources, and with ``external`` the others too."""
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
    return {n for n in named if (external or n in MODULES) and n != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}
#: As GRAPH, with the imports of outside modules too (``falcon``, ``pika``...).
FULL_GRAPH = {module: _imports(module, path, external=True) for module, path in MODULES.items()}


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
    assert (
        "pubsubkit.plugin.specs" in GRAPH["pubsubkit.backends.memory"]
        or "pubsubkit.plugin" in GRAPH["pubsubkit.backends.memory"]
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_within_a_package(package: str) -> None:
    cycle = _cycle(GRAPH, package)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# --- myevents: behaviour below, HTTP above --------------------------------------------------------------

#: Modules outside ``myevents.web`` that are the services' HTTP side: their apps, resources, OpenAPI documents,
#: the event service's input models (described with ``web.decoding``'s checks) and the process holding the app.
WEB_FACING = {
    "myevents.booking.app",
    "myevents.booking.openapi",
    "myevents.booking.resources",
    "myevents.events.app",
    "myevents.events.inputs",
    "myevents.events.openapi",
    "myevents.events.resources",
    "myevents.runtime",
}


def _package(module: str) -> str:
    """A subpackage of myevents (``myevents.web``) stands for its modules; a top-level module for itself."""
    return ".".join(module.split(".")[:2])


def test_no_subpackage_of_myevents_imports_in_a_circle() -> None:
    """E.g. ``web`` importing a top-level module that imports ``web`` back."""
    packages: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        if module.split(".")[0] != "myevents":
            continue
        edges = packages.setdefault(_package(module), set())
        edges |= {_package(m) for m in imported if m.startswith("myevents") and _package(m) != _package(module)}
    assert "myevents.web" in packages
    cycle = _cycle(packages, "myevents")
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_behaviour_imports_neither_falcon_nor_the_web_layer() -> None:
    offenders = {
        module: sorted(m for m in imported if m.split(".")[0] == "falcon" or m.startswith("myevents.web"))
        for module, imported in FULL_GRAPH.items()
        if module.startswith("myevents") and _package(module) != "myevents.web" and module not in WEB_FACING
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}
    assert set(MODULES) >= WEB_FACING
    assert "falcon" in FULL_GRAPH["myevents.web.auth"]
    assert "myevents.errors" in GRAPH["myevents.web.problems"]


def test_imports_under_type_checking_and_in_functions() -> None:
    """The graph builder itself: TYPE_CHECKING imports are left out, imports in functions are kept."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
        "def f():\n    import c\n"
    )
    names = {a.name for n in _statements(tree.body) if isinstance(n, ast.Import) for a in n.names}
    assert names == {"b", "c"}
