"""Backend registration and selection by URL."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import pluggy

from pubsubkit.errors import ConfigError, UnknownSchemeError
from pubsubkit.store import Store
from pubsubkit.transport import Capabilities, Transport

__all__ = [
    "DISABLE_ENV",
    "KNOWN_DISTRIBUTIONS",
    "BrokerSpec",
    "StoreSpec",
    "get_plugin_manager",
    "redact",
    "scheme_of",
]

#: Comma-separated names of plugins not to load (e.g. ``metrics,pubsubkit-kafka``).
DISABLE_ENV = "PUBSUBKIT_DISABLE_PLUGINS"

#: Which distribution serves a scheme, for the error when none is installed.
KNOWN_DISTRIBUTIONS: Mapping[str, str] = {
    "kafka": "pubsubkit-kafka",
    "amqp": "pubsubkit-rabbitmq",
    "amqps": "pubsubkit-rabbitmq",
    "sqs": "pubsubkit-sqs",
    "mongodb": "pubsubkit-mongo",
    "mongodb+srv": "pubsubkit-mongo",
    "dynamodb": "pubsubkit-dynamodb",
}


@attrs.frozen
class BrokerSpec:
    """A message backend: the URL schemes it serves and the factory building its transport."""

    schemes: tuple[str, ...]
    factory: Callable[..., Transport]
    capabilities: Capabilities
    distribution: str
    description: str = ""


@attrs.frozen
class StoreSpec:
    """A repository backend: the URL schemes it serves and the factory building its store."""

    schemes: tuple[str, ...]
    factory: Callable[..., Store]
    distribution: str
    description: str = ""
    capabilities: Mapping[str, bool] = attrs.field(factory=dict)


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise ConfigError(f"{url!r} is not a backend URL: expected scheme://..., e.g. sqlite:///data/app.db")
    return url.split("://", 1)[0].lower()


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs and metrics."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def get_plugin_manager(*, load_entrypoints: bool = True, metrics_registry: Any = None) -> pluggy.PluginManager:
    """Build a plugin manager: entry points of group ``pubsubkit``, then the built-ins, then ``check_pending``.

    Plugins named in ``PUBSUBKIT_DISABLE_PLUGINS`` are blocked. ``metrics_registry`` (a prometheus
    ``CollectorRegistry``) is where the built-in metrics plugin registers; default: the global registry.
    """
    from pubsubkit import hookspecs
    from pubsubkit.backends import memory, sqlite
    from pubsubkit.metrics import metrics_for

    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    for name in _disabled():
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.NAME)
    for name, plugin in (("memory", memory), ("sqlite", sqlite)):
        if not pm.is_blocked(name) and not pm.has_plugin(name):
            pm.register(plugin, name=name)
    if not pm.is_blocked("metrics"):
        pm.register(metrics_for(metrics_registry), name="metrics")
    pm.check_pending()
    return pm


class Backends:
    """The backends a plugin manager knows, by scheme."""

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
        scheme = scheme_of(url)
        spec = self.brokers.get(scheme)
        if spec is None:
            raise UnknownSchemeError(_missing(scheme, "message broker", sorted(self.brokers)))
        return spec

    def store_spec(self, url: str) -> StoreSpec:
        scheme = scheme_of(url)
        spec = self.stores.get(scheme)
        if spec is None:
            raise UnknownSchemeError(_missing(scheme, "store", sorted(self.stores)))
        return spec


def _missing(scheme: str, what: str, have: list[str]) -> str:
    dist = KNOWN_DISTRIBUTIONS.get(scheme)
    hint = f"pip install {dist}" if dist else "install the plugin that provides it"
    return f"no {what} plugin serves {scheme}:// ({hint}); installed schemes: {', '.join(have) or 'none'}"
