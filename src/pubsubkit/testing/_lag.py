"""Messaging case 31: the consumer lag gauge rises while a group's consumer is stopped and falls to zero once
it caught up."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from pubsubkit.api import Broker
from pubsubkit.testing._base import Listeners, MessagingFixtures
from pubsubkit.testing.helpers import DEFAULT_TIMEOUT, Collector, EventKit, wait_until

__all__ = ["LagCases"]

#: Events published while the group's consumer is stopped.
WAITING = 20


class LagCases(MessagingFixtures):
    def test_31_consumer_lag(
        self, broker: Broker, kit: EventKit, listeners: Listeners, metrics_registry: CollectorRegistry
    ) -> None:
        """The gauge ``pubsubkit_consumer_lag`` rises while the group's consumer is stopped and falls to zero
        once it caught up; a running listener reports its own group's lag."""
        ping = kit.event_type()
        group = kit.name("g")
        got = Collector()
        listener = listeners.start(broker, group, [(ping, got)])
        assert listener.wait_ready(DEFAULT_TIMEOUT)  # brokers without history keep only what comes after the join
        first = broker.emitter().emit(ping(n=0))
        got.wait_for([first.id])
        if broker.transport.lag(group) is None:
            pytest.skip("the broker cannot tell a group's lag (Transport.lag)")
        listeners.close_all()
        monitor = broker.lag_monitor(group, interval=0.1)

        def gauge() -> float:
            samples = [
                s.value
                for m in metrics_registry.collect()
                if m.name == "pubsubkit_consumer_lag"
                for s in m.samples
                if s.labels.get("group") == group
            ]
            return sum(samples)

        ids = [e.id for e in broker.emitter().emit_many([ping(n=i) for i in range(1, WAITING + 1)])]
        wait_until(lambda: monitor.poll() and gauge() == WAITING, DEFAULT_TIMEOUT, f"a lag of {WAITING}")
        assert monitor.latest(group) == WAITING
        listener = listeners.start(broker, group, [(ping, got)], lag_interval=0.1)
        got.wait_for([first.id, *ids])
        wait_until(lambda: monitor.poll() and gauge() == 0, DEFAULT_TIMEOUT, "the lag to fall to zero")
        wait_until(lambda: listener.lag == 0, DEFAULT_TIMEOUT, "the listener's own reading of zero")
