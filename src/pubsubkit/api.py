"""Opening backends by URL: the entry points most applications need."""

from __future__ import annotations

from typing import Any

import pluggy

from pubsubkit.codec import Codec, default_codec
from pubsubkit.emitter import Emitter
from pubsubkit.listener import Listener
from pubsubkit.outbox import OutboxRelay
from pubsubkit.plugin.manager import Backends, get_plugin_manager
from pubsubkit.plugin.observers import Observers
from pubsubkit.store import Store
from pubsubkit.transport import BrokerCapabilities, Transport
from pubsubkit.urls import redact

__all__ = ["Broker", "open_broker", "open_store"]

_default_pm: pluggy.PluginManager | None = None


def default_plugin_manager() -> pluggy.PluginManager:
    """A process-wide plugin manager, built on first use (not at import)."""
    global _default_pm
    if _default_pm is None:
        _default_pm = get_plugin_manager()
    return _default_pm


class Broker:
    """A message backend opened by URL: makes emitters and listeners that share one transport."""

    def __init__(self, transport: Transport, codec: Codec, pm: pluggy.PluginManager | None) -> None:
        self.transport = transport
        self.codec = codec
        self.pm = pm

    @property
    def url(self) -> str:
        return redact(self.transport.url)

    @property
    def capabilities(self) -> BrokerCapabilities:
        return self.transport.capabilities

    def emitter(self, **options: Any) -> Emitter:
        """An :class:`~pubsubkit.emitter.Emitter`; options: ``retry_for``, ``headers``."""
        return Emitter(self.transport, self.codec, Observers(self.pm), **options)

    def listener(self, group: str, **options: Any) -> Listener:
        """A :class:`~pubsubkit.listener.Listener` for ``group``; options as the Listener's."""
        return Listener(self.transport, group, self.codec, Observers(self.pm), **options)

    def relay(self, store: Store, **options: Any) -> OutboxRelay:
        """An outbox relay publishing ``store``'s outbox through this broker."""
        return OutboxRelay(store, self.emitter(), Observers(self.pm), **options)

    def ping(self) -> None:
        self.transport.ping()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_broker(
    url: str, *, pm: pluggy.PluginManager | None = None, codec: Codec | None = None, **options: Any
) -> Broker:
    """Open the message backend for ``url`` (``memory://``, ``sqlite:///path``, ``kafka://host:9092``...).

    Raises :class:`~pubsubkit.errors.UnknownSchemeError` naming the distribution to install.
    """
    pm = pm or default_plugin_manager()
    spec = Backends(pm).broker_spec(url)
    return Broker(spec.factory(url, **options), codec or default_codec(), pm)


def open_store(
    url: str, *, pm: pluggy.PluginManager | None = None, codec: Codec | None = None, **options: Any
) -> Store:
    """Open the repository backend for ``url`` (``memory://``, ``sqlite:///path``, ``mongodb://...``)."""
    pm = pm or default_plugin_manager()
    spec = Backends(pm).store_spec(url)
    return spec.factory(url, codec=codec or default_codec(), **options)
