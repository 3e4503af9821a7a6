"""Prometheus metrics, as a built-in plugin on the observation hooks.

Never starts a server: applications expose the registry (``prometheus_client.make_wsgi_app(registry)``).
Labels are low-cardinality only: consumer group, event name, outcome, reason, and the partition or queue of
the consumer lag.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from pubsubkit.envelope import Envelope
from pubsubkit.plugin import hookimpl
from pubsubkit.transport import DeadLetter

__all__ = ["METRIC_NAMES", "MetricsPlugin", "metrics_for"]

METRIC_NAMES = (
    "pubsubkit_emitted_total",
    "pubsubkit_emit_seconds",
    "pubsubkit_received_total",
    "pubsubkit_handled_total",
    "pubsubkit_handler_seconds",
    "pubsubkit_retries_total",
    "pubsubkit_dead_lettered_total",
    "pubsubkit_in_flight",
    "pubsubkit_outbox_relayed_total",
    "pubsubkit_outbox_pending",
    "pubsubkit_consumer_lag",
)

_FINAL = frozenset({"ok", "failed", "duplicate", "skipped", "released"})


_plugins: weakref.WeakKeyDictionary[CollectorRegistry, MetricsPlugin] = weakref.WeakKeyDictionary()
_plugins_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry | None = None) -> MetricsPlugin:
    """The metrics plugin of ``registry`` (default: prometheus' global one), created once per registry.

    Prometheus refuses a metric name twice in one registry, so every plugin manager of a process that
    reports into the same registry shares one plugin.
    """
    reg = registry if registry is not None else REGISTRY
    with _plugins_lock:
        plugin = _plugins.get(reg)
        if plugin is None:
            plugin = _plugins[reg] = MetricsPlugin(reg)
        return plugin


class MetricsPlugin:
    """Counts what flows through emitters, listeners and the outbox relay into ``registry``.

    Use :func:`metrics_for` rather than this constructor to share one plugin per registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        self.registry = reg
        self.emitted = Counter("pubsubkit_emitted", "Messages confirmed by the broker.", ["name"], registry=reg)
        self.emit_seconds = Histogram("pubsubkit_emit_seconds", "Time to publish and confirm one batch.", registry=reg)
        self.received = Counter("pubsubkit_received", "Messages received by listeners.", ["group"], registry=reg)
        self.handled = Counter(
            "pubsubkit_handled", "Handler attempts by outcome.", ["group", "name", "outcome"], registry=reg
        )
        self.handler_seconds = Histogram(
            "pubsubkit_handler_seconds", "Handler run time per attempt.", ["group"], registry=reg
        )
        self.retries = Counter("pubsubkit_retries", "Handler attempts that will be retried.", ["group"], registry=reg)
        self.dead = Counter(
            "pubsubkit_dead_lettered",
            "Messages moved to the dead-letter destination.",
            ["group", "reason"],
            registry=reg,
        )
        self.in_flight = Gauge("pubsubkit_in_flight", "Messages received and not yet settled.", ["group"], registry=reg)
        self.relayed = Counter("pubsubkit_outbox_relayed", "Outbox entries published by the relay.", registry=reg)
        self.pending = Gauge(
            "pubsubkit_outbox_pending", "Outbox entries seen waiting by the relay's last read.", registry=reg
        )
        self.lag = Gauge(
            "pubsubkit_consumer_lag",
            "Messages waiting for a consumer group, by partition or queue, as the broker tells.",
            ["group", "partition"],
            registry=reg,
        )
        # The labelled children met so far: ``labels()`` checks and locks on every call, and the listener reports
        # every message.
        self._handled_children: dict[tuple[str, str, str], Any] = {}
        self._group_children: dict[str, tuple[Any, Any]] = {}

    def _of_group(self, group: str) -> tuple[Any, Any]:
        """The handler-time histogram and the in-flight gauge of ``group``."""
        children = self._group_children.get(group)
        if children is None:
            children = self._group_children[group] = (
                self.handler_seconds.labels(group),
                self.in_flight.labels(group),
            )
        return children

    @hookimpl
    def pubsubkit_emitted(self, envelopes: Sequence[Envelope], url: str, seconds: float) -> None:
        self.emit_seconds.observe(seconds)
        if len({e.name for e in envelopes}) == 1:
            self.emitted.labels(envelopes[0].name).inc(len(envelopes))
            return
        for e in envelopes:
            self.emitted.labels(e.name).inc()

    @hookimpl
    def pubsubkit_received(self, envelopes: Sequence[Envelope], group: str) -> None:
        self.received.labels(group).inc(len(envelopes))
        self._of_group(group)[1].inc(len(envelopes))

    @hookimpl
    def pubsubkit_handled(self, envelope: Envelope, group: str, outcome: str, seconds: float, attempt: int) -> None:
        key = (group, envelope.name, outcome)
        counter = self._handled_children.get(key)
        if counter is None:
            counter = self._handled_children[key] = self.handled.labels(*key)
        counter.inc()
        handler_seconds, in_flight = self._of_group(group)
        if outcome not in ("skipped", "duplicate", "released"):
            handler_seconds.observe(seconds)
        if outcome == "retry":
            self.retries.labels(group).inc()
        if outcome in _FINAL:
            in_flight.dec()

    @hookimpl
    def pubsubkit_dead_lettered(self, letter: DeadLetter) -> None:
        self.dead.labels(letter.group, letter.reason).inc()
        if letter.reason == "fatal" or letter.reason == "failed":
            return  # already counted final by pubsubkit_handled
        if letter.envelope is not None:
            self.in_flight.labels(letter.group).dec()

    @hookimpl
    def pubsubkit_outbox_relayed(self, count: int, pending: int, url: str) -> None:
        self.relayed.inc(count)
        self.pending.set(max(0, pending - count))

    @hookimpl
    def pubsubkit_consumer_lag(self, group: str, lag: Mapping[str, int], url: str) -> None:
        for partition, waiting in lag.items():
            self.lag.labels(group, partition).set(waiting)
