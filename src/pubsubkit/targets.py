"""Naming an application's objects on the command line: ``MODULE:OBJECT`` (``pubsubkit run``, ``pubsubkit schema``).

>>> load("pubsubkit.events:registry")  # doctest: +ELLIPSIS
<pubsubkit.events.EventRegistry object at ...>
>>> load("pubsubkit.events:nothing_here")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pubsubkit.errors.ConfigError: module pubsubkit.events has no nothing_here; its public names: EventRegistry, ...
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from pubsubkit.errors import ConfigError

__all__ = ["import_module", "load"]


def import_module(name: str) -> ModuleType:
    """Import module ``name`` (the current directory first on the path, as ``python -m`` does); ConfigError
    naming the fix when it cannot be found."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise ConfigError(f"{name!r} is not a module name: give a dotted name, e.g. myapp.worker")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise ConfigError(
                f"no module named {exc.name!r}: run from the directory that holds it, install its package, or"
                " add its directory to PYTHONPATH"
            ) from None
        raise ConfigError(f"importing {name} failed: {exc} (a dependency of it is missing)") from exc


def load(target: str) -> Any:
    """The object named by ``MODULE:OBJECT`` (``OBJECT`` may be dotted: ``module:App.worker``)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ConfigError(f"{target!r}: name the object as MODULE:OBJECT, e.g. myapp.worker:projector")
    obj: Any = import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = getattr(obj, "__all__", None) or dir(obj)
            public = sorted(n for n in names if not n.startswith("_"))
            shown = ", ".join(public[:12]) + (", ..." if len(public) > 12 else "")
            raise ConfigError(f"module {module_name} has no {attr}; its public names: {shown}") from None
    return obj
