"""The two public lists: ``pubsubkit`` (what an application needs) and ``pubsubkit.plugin`` (what a plugin needs).

Each is one table (``_LAZY``: name -> defining module) from which ``__all__`` is made; the imports for type
checkers must name the same, and every name must resolve to what its module defines.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

import pubsubkit
import pubsubkit.plugin

#: Names a plugin implements or registers, not an application: they belong to pubsubkit.plugin only.
SPI = {
    "NAME",
    "hookimpl",
    "hookspec",
    "BrokerSpec",
    "StoreSpec",
    "BrokerCapabilities",
    "StoreCapabilities",
    "Consumer",
    "Delivery",
    "Transport",
    "Observers",
    "Outcome",
    "Backends",
}


def _type_checking_imports(module: ModuleType) -> dict[str, str]:
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
                assert stmt.module
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"{alias.name}: re-export as 'import X as X'"
                    found[alias.name] = stmt.module
    return found


@pytest.mark.parametrize("module", [pubsubkit, pubsubkit.plugin], ids=lambda m: m.__name__)
def test_one_list(module: ModuleType) -> None:
    table: dict[str, str] = module._LAZY  # type: ignore[attr-defined]
    assert module.__all__ == sorted(table)
    assert _type_checking_imports(module) == table
    for name, where in table.items():
        assert getattr(module, name) is getattr(importlib.import_module(where), name), name


def test_the_application_api_holds_no_plugin_interface() -> None:
    assert not SPI & set(pubsubkit.__all__)
    assert set(pubsubkit.plugin.__all__) >= SPI


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'BrokerSpec'"):
        pubsubkit.BrokerSpec  # noqa: B018 - moved to pubsubkit.plugin
