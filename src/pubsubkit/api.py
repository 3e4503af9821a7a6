"""Opening backends by URL: the entry points most applications need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from pubsubkit.codec import Codec, default_codec
from pubsubkit.emitter import Emitter
from pubsubkit.listener import Listener
from pubsubkit.outbox import OutboxRelay
from pubsubkit.plugin.manager import Backends, get_plugin_manager
from pubsubkit.plugin.observers import Observers
from pubsubkit.retry import RetryPolicy
from pubsubkit.store import Store
from pubsubkit.transport import BrokerCapabilities, Transport
from pubsubkit.urls import redact

if TYPE_CHECKING:
    from pubsubkit.aio import AsyncEmitter
    from pubsubkit.lag import LagMonitor

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
        """The broker's URL, its password hidden."""
        return redact(self.transport.url)

    @property
    def capabilities(self) -> BrokerCapabilities:
        """What the broker promises (:class:`~pubsubkit.transport.BrokerCapabilities`)."""
        return self.transport.capabilities

    def emitter(self, *, retry_for: float = 10.0, headers: Mapping[str, str] | None = None) -> Emitter:
        """An :class:`~pubsubkit.emitter.Emitter` publishing through this broker.

        :param retry_for: seconds within which a failed publish is retried before the error is raised.
        :param headers: headers added to every event it emits.
        """
        return Emitter(self.transport, self.codec, Observers(self.pm), retry_for=retry_for, headers=headers)

    def async_emitter(
        self, *, retry_for: float = 10.0, headers: Mapping[str, str] | None = None, max_batch: int = 1000
    ) -> AsyncEmitter:
        """An :class:`~pubsubkit.aio.AsyncEmitter`: ``await emit(...)`` without blocking the event loop.

        :param retry_for: seconds within which a failed publish is retried before the error is raised.
        :param headers: headers added to every event it emits.
        :param max_batch: envelopes of waiting calls published together at most.
        """
        from pubsubkit.aio import AsyncEmitter  # here: asyncio is loaded only by those who use it

        return AsyncEmitter(self.emitter(retry_for=retry_for, headers=headers), max_batch=max_batch)

    def listener(
        self,
        group: str,
        *,
        store: Store | None = None,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 100,
        concurrency: int = 4,
        drain_timeout: float = 30.0,
        poll_interval: float = 0.5,
        batch_size: int = 100,
        history: bool = True,
        lag_interval: float = 15.0,
    ) -> Listener:
        """A :class:`~pubsubkit.listener.Listener` of consumer ``group`` on this broker.

        :param store: enables the inbox (a message delivered twice has one effect) and ``msg.unit_of_work()``.
        :param retry: attempts and backoff per message (default :class:`~pubsubkit.retry.RetryPolicy`).
        :param max_in_flight: messages received but not yet settled, at most.
        :param concurrency: worker lanes; the messages of one key always use the same lane.
        :param drain_timeout: on stop, how long running handlers may take before their messages are released.
        :param poll_interval: seconds one receive waits at most before the loop looks at stop again.
        :param batch_size: messages asked of the broker in one receive, at most.
        :param history: a group that joins for the first time receives the messages the broker kept from before
            (on brokers with the ``replay`` capability); False: only those published from its first join on.
        :param lag_interval: seconds between two readings of the group's lag while the listener runs (the gauge
            ``pubsubkit_consumer_lag``); 0: none.
        """
        return Listener(
            self.transport,
            group,
            self.codec,
            Observers(self.pm),
            store=store,
            retry=retry,
            max_in_flight=max_in_flight,
            concurrency=concurrency,
            drain_timeout=drain_timeout,
            poll_interval=poll_interval,
            batch_size=batch_size,
            history=history,
            lag_interval=lag_interval,
        )

    def relay(
        self, store: Store, *, batch_size: int = 500, poll_interval: float = 0.2, lease: float = 10.0
    ) -> OutboxRelay:
        """An :class:`~pubsubkit.outbox.OutboxRelay` publishing ``store``'s outbox through this broker.

        :param batch_size: outbox entries published in one round, at most.
        :param poll_interval: seconds between looks at an empty outbox.
        :param lease: seconds one relay holds the outbox; another takes over when a holder stops renewing it.
        """
        return OutboxRelay(
            store, self.emitter(), Observers(self.pm), batch_size=batch_size, poll_interval=poll_interval, lease=lease
        )

    def lag_monitor(self, *groups: str, interval: float = 15.0) -> LagMonitor:
        """A :class:`~pubsubkit.lag.LagMonitor` of ``groups`` on this broker: ``start()`` it to report their lag
        (the gauge ``pubsubkit_consumer_lag``) every ``interval`` seconds, or ``poll()`` it once."""
        from pubsubkit.lag import LagMonitor

        return LagMonitor(self.transport, groups, Observers(self.pm), interval)

    def ping(self) -> None:
        """Raise :class:`~pubsubkit.errors.ConnectionLost` when the broker cannot be reached."""
        self.transport.ping()

    def close(self) -> None:
        """Close the transport: its emitters and listeners stop working. Idempotent."""
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
