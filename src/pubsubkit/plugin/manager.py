"""The plugin manager, and the backends it knows by URL scheme."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

import pluggy

from pubsubkit.errors import UnknownSchemeError
from pubsubkit.plugin import hookspecs
from pubsubkit.plugin.specs import BrokerSpec, StoreSpec
from pubsubkit.urls import scheme_of

__all__ = ["BUILTIN_PLUGINS", "DISABLE_ENV", "KNOWN_DISTRIBUTIONS", "Backends", "get_plugin_manager"]

#: Comma-separated names of plugins not to load (e.g. ``metrics,pubsubkit-kafka``).
DISABLE_ENV = "PUBSUBKIT_DISABLE_PLUGINS"

#: The plugins that come with pubsubkit: name, and the module that is the plugin. Imported by name when a
#: manager is built (as pytest loads its own), so that they may import the plugin API without a circle.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("memory", "pubsubkit.backends.memory"),
    ("sqlite", "pubsubkit.backends.sqlite"),
)

#: Which distribution serves a scheme, and as what, for the error when none is installed.
KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "kafka": "pubsubkit-kafka",
    "amqp": "pubsubkit-rabbitmq",
    "amqps": "pubsubkit-rabbitmq",
    "sqs": "pubsubkit-sqs",
    "mongodb": "pubsubkit-mongo",
    "mongodb+srv": "pubsubkit-mongo",
    "dynamodb": "pubsubkit-dynamodb",
}

#: The schemes of the known distributions that are stores (the others are message brokers).
KNOWN_STORE_SCHEMES = frozenset({"mongodb", "mongodb+srv", "dynamodb"})

#: Schemes people write for a backend, and the one pubsubkit knows it by.
SCHEME_ALIASES: Mapping[str, str] = {
    "rabbitmq": "amqp",
    "rabbit": "amqp",
    "mongo": "mongodb",
    "sqlite3": "sqlite",
    "dynamo": "dynamodb",
    "mem": "memory",
}


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def get_plugin_manager(*, load_entrypoints: bool = True, metrics_registry: Any = None) -> pluggy.PluginManager:
    """Build a plugin manager: entry points of group ``pubsubkit``, then the built-ins, then ``check_pending``.

    Plugins named in ``PUBSUBKIT_DISABLE_PLUGINS`` are blocked. ``metrics_registry`` (a prometheus
    ``CollectorRegistry``) is where the built-in metrics plugin registers; default: the global registry.
    """
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    for name in _disabled():
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.NAME)
    for name, module in BUILTIN_PLUGINS:
        if not pm.is_blocked(name) and not pm.has_plugin(name):
            pm.register(importlib.import_module(module), name=name)
    if not pm.is_blocked("metrics"):
        metrics = importlib.import_module("pubsubkit.metrics")
        pm.register(metrics.metrics_for(metrics_registry), name="metrics")
    pm.check_pending()
    return pm


class Backends:
    """The backends a plugin manager knows, by scheme (its registration hooks are called here, once)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.brokers: dict[str, BrokerSpec] = {}
        self.stores: dict[str, StoreSpec] = {}

        def add_broker(spec: BrokerSpec) -> None:
            for s in spec.schemes:
                self.brokers[s] = spec

        def add_store(spec: StoreSpec) -> None:
            for s in spec.schemes:
                self.stores[s] = spec

        pm.hook.pubsubkit_register_brokers(register=add_broker)
        pm.hook.pubsubkit_register_stores(register=add_store)

    def broker_spec(self, url: str) -> BrokerSpec:
        """The spec of the broker plugin serving ``url``'s scheme; UnknownSchemeError naming the fix."""
        scheme = scheme_of(url)
        spec = self.brokers.get(scheme)
        if spec is None:
            raise UnknownSchemeError(_missing(scheme, "message broker", self.brokers, self.stores))
        return spec

    def store_spec(self, url: str) -> StoreSpec:
        """The spec of the store plugin serving ``url``'s scheme; UnknownSchemeError naming the fix."""
        scheme = scheme_of(url)
        spec = self.stores.get(scheme)
        if spec is None:
            raise UnknownSchemeError(_missing(scheme, "store", self.stores, self.brokers))
        return spec


def _missing(scheme: str, what: str, have: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """Why no ``what`` serves ``scheme``, and the fix: the right call, the right scheme, or what to install."""
    installed = f"installed {what} schemes: {', '.join(sorted(have)) or 'none'}"
    opener = "open_store" if what == "store" else "open_broker"
    other_what, other_opener = ("message broker", "open_broker") if what == "store" else ("store", "open_store")
    if scheme in other:
        dist = getattr(other[scheme], "distribution", "") or "a plugin"
        return (
            f"{scheme}:// is a {other_what} ({dist} is installed) and no {what}: open it with"
            f" pubsubkit.{other_opener}(), and give {opener}() one of the {installed}"
        )
    alias = SCHEME_ALIASES.get(scheme)
    if alias is not None:
        return f"no {what} plugin serves {scheme}://: write {alias}:// instead ({installed})"
    dist = KNOWN_DISTRIBUTIONS.get(scheme)
    if dist is not None:
        kind = "store" if scheme in KNOWN_STORE_SCHEMES else "message broker"
        if kind != what:
            return (
                f"{scheme}:// is a {kind} (pip install {dist}, then open it with pubsubkit.{other_opener}()), not a"
                f" {what} ({installed})"
            )
        return f"no {what} plugin serves {scheme}:// (pip install {dist}); {installed}"
    return f"no {what} plugin serves {scheme}:// (install the plugin that provides it); {installed}"
