"""myevents' layers, read from its import statements (every one, also those inside functions).

The web layer (``myevents/web/``) may import the services' behaviour; the behaviour never imports the web layer
or Falcon, and raises domain errors (``myevents.errors``) that the web layer answers. Nothing imports in a circle,
neither module by module nor package by package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

#: Modules outside ``web/`` that are the services' HTTP side: their apps, resources, OpenAPI documents, the
#: event service's input models (described with ``web.decoding``'s checks) and the process holding the app.
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


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted((SRC / "myevents").rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """What module ``name`` imports: a module of myevents where one is named, else the name as written."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *filter(None, [base])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return found


GRAPH: dict[str, set[str]] = {name: _imports(name) for name in MODULES}


def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` that are circles (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    """A subpackage of myevents (``myevents.web``) stands for its modules; a top-level module for itself."""
    return ".".join(module.split(".")[:2])


def test_the_graph_sees_every_module_and_import() -> None:
    assert {"myevents.errors", "myevents.web.auth", "myevents.events.catalog"} <= set(MODULES)
    assert "myevents.errors" in GRAPH["myevents.web.problems"]
    assert "falcon" in GRAPH["myevents.web.auth"]
    assert "myevents.web.auth" in GRAPH["myevents.events.app"]  # ``from myevents.web import auth``
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_no_module_imports_in_a_circle() -> None:
    assert _cycles(GRAPH) == []


def test_no_package_imports_in_a_circle() -> None:
    """E.g. ``web`` importing a top-level module that imports ``web`` back."""
    packages: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        edges = packages.setdefault(_package(module), set())
        edges |= {_package(m) for m in imported if m in MODULES and _package(m) != _package(module)}
    assert "myevents.web" in packages
    assert _cycles(packages) == []


def test_the_behaviour_imports_neither_falcon_nor_the_web_layer() -> None:
    offenders = {
        module: sorted(m for m in imported if m.split(".")[0] == "falcon" or m.startswith("myevents.web"))
        for module, imported in GRAPH.items()
        if _package(module) != "myevents.web" and module not in WEB_FACING
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}
    assert set(MODULES) >= WEB_FACING
