#!/usr/bin/env python3
"""Write docs/api.md, the API reference: every name of ``pubsubkit.__all__`` and ``pubsubkit.plugin.__all__``.

Classes and functions are rendered by mkdocstrings from their signatures and docstrings when the site is built;
constants and type aliases are written here with the ``#:`` comment above their definition. Run it after changing
the public API: ``.venv/bin/python scripts/api_reference.py``. A test fails while the page differs from what this
script writes, while a public name is in no section, and while one has no docstring.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"
sys.path.insert(0, str(ROOT / "src"))

import pubsubkit  # noqa: E402
import pubsubkit.plugin  # noqa: E402

#: The sections of the application API and the names in each, in reading order.
APPLICATION: list[tuple[str, str, list[str]]] = [
    ("Opening backends", "A broker and a store by URL; the plugin manager that knows the schemes.",
     ["open_broker", "open_store", "Broker", "get_plugin_manager"]),
    ("Event types", "Classes that are events, their wire names and schema versions, and the codec.",
     ["event", "upcaster", "WIRE_NAME", "UnknownEvent", "EventRegistry", "Codec"]),
    ("Event contracts", "The JSON Schema of event types, the check that a change keeps a published contract, and an"
     " application's AsyncAPI document.",
     ["json_schema", "event_schemas", "breaking_changes", "pubsubkit.asyncapi.document"]),
    ("Emitting", "Publishing events, and what travels on the wire.",
     ["Emitter", "AsyncEmitter", "Envelope", "Header", "new_id"]),
    ("Listening", "Consumer groups, handlers (one by one and in batches), retries and dead letters.",
     ["Listener", "Message", "Batch", "RetryPolicy", "DeadLetter"]),
    ("State and the outbox", "Documents, units of work (writes and events committed together) and the relay.",
     ["Store", "Collection", "UnitOfWork", "Page", "OutboxRelay"]),
    ("Workers", "What `pubsubkit run MODULE:OBJECT` runs as a worker process.", ["Worker"]),
    ("Errors", "Every error pubsubkit raises on purpose derives from PubsubkitError.",
     ["PubsubkitError", "ConfigError", "UnknownSchemeError", "ConnectionLost", "PublishError", "DecodeError",
      "NotFound", "DuplicateError", "ConditionFailed", "AlreadyProcessed", "FatalError", "Closed"]),
]  # fmt: skip


def defining_module(namespace: Any, name: str) -> str:
    """The module ``name`` of ``namespace`` (a package with a ``_LAZY`` table) is defined in."""
    obj = getattr(namespace, name)
    module = getattr(obj, "__module__", None)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return str(module)
    return str(namespace._LAZY[name])


def comment_of(module: str, name: str) -> str:
    """The ``#:`` comment lines right above ``name``'s assignment in ``module``; empty when there are none."""
    source = Path(sys.modules[module].__file__ or "").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(source):
        if re.match(rf"{re.escape(name)}\s*(:[^=]+)?=", line):
            lines = []
            j = i - 1
            while j >= 0 and source[j].lstrip().startswith("#:"):
                lines.insert(0, source[j].lstrip()[2:].strip())
                j -= 1
            return " ".join(lines)
    return ""


def documentation_of(namespace: Any, name: str) -> str:
    """The docstring of a class or function, or the ``#:`` comment of anything else."""
    obj = getattr(namespace, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return inspect.getdoc(obj) or ""
    return comment_of(defining_module(namespace, name), name)


def entry(namespace: Any, name: str) -> list[str]:
    obj = getattr(namespace, name)
    module = defining_module(namespace, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return [f"::: {module}.{name}", ""]
    if isinstance(obj, str | int | float):
        shown = f"`{namespace.__name__}.{name} = {obj!r}`"
    elif hasattr(obj, "__origin__"):  # a type alias
        spelled = repr(obj).replace("typing.", "").replace("collections.abc.", "")
        shown = f"`{namespace.__name__}.{name}`, the type `{spelled}`"
    else:
        shown = f"`{namespace.__name__}.{name}`, a `{type(obj).__name__}`"
    return [f"### `{name}`", "", shown, "", documentation_of(namespace, name), ""]


def page() -> str:
    out = [
        "# API reference",
        "",
        "Generated from the docstrings by `scripts/api_reference.py`: every name of `pubsubkit.__all__` (what an",
        "application imports) and of `pubsubkit.plugin.__all__` (what a plugin imports). The guides explain how",
        "the pieces fit: [Getting started](getting-started.md), [Concepts](concepts.md),",
        "[Writing a plugin](writing-a-plugin.md).",
        "",
    ]
    for title, intro, names in APPLICATION:
        out += [f"## {title}", "", intro, ""]
        for name in names:
            out += [f"::: {name}", ""] if "." in name else entry(pubsubkit, name)  # dotted: a module's own
    out += ["## Plugin API: `pubsubkit.plugin`", "", "Hooks, specs, backend interfaces and observers.", ""]
    for name in pubsubkit.plugin.__all__:
        out += entry(pubsubkit.plugin, name)
    return "\n".join(out).rstrip() + "\n"


def missing_from_sections() -> set[str]:
    """Names of ``pubsubkit.__all__`` in no section (or in two)."""
    listed = [n for _, _, names in APPLICATION for n in names if "." not in n]
    return (set(pubsubkit.__all__) - set(listed)) | {n for n in listed if listed.count(n) > 1}


if __name__ == "__main__":
    if missing_from_sections():
        sys.exit(f"put these names in one section of APPLICATION: {sorted(missing_from_sections())}")
    PAGE.write_text(page(), encoding="utf-8")
    print(f"wrote {PAGE}")
