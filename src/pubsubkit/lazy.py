"""Module attributes imported on first use (PEP 562), for packages that should not load heavy modules at import.

__getattr__ = lazy_attributes(__name__, globals(), {"KafkaTransport": "pubsubkit_kafka._transport"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    module: str, namespace: MutableMapping[str, Any], names: Mapping[str, str], *, submodules: bool = False
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` and returns its ``name`` (kept in ``namespace``).

    With ``submodules``, another name resolves to the submodule ``module.name`` when there is one.
    """

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is not None:
            value = getattr(importlib.import_module(where), name)
            namespace[name] = value
            return value
        if submodules:
            try:
                return importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{module}.{name}":
                    raise
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
