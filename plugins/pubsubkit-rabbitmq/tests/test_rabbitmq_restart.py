"""Across a restart of the server: stored messages survive, a consumer and the publisher reconnect.

This restarts the shared test server once (about 10 seconds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from rabbitmq_support import with_query

import pubsubkit
from pubsubkit.testing import EventKit, ServerControl, unique_name, wait_until
from pubsubkit.transport import Delivery


def test_messages_and_consumers_survive_a_restart(
    amqp_url: str, script_server_control: Callable[[str], ServerControl]
) -> None:
    kit = EventKit()
    ping = kit.event_type()
    url = with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300")
    server = script_server_control("rabbitmq")
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        consumer = broker.transport.consumer(kit.name("g"), None)
        try:
            before = [e.id for e in broker.emitter().emit_many([ping(n=i) for i in range(50)])]
            held: list[Delivery] = []
            wait_until(lambda: held.extend(consumer.receive(10 - len(held), 0.05)) or len(held) >= 10)
            server.stop()
            server.start()
            # Deliveries of the lost connection cannot be settled: the first try finds the connection gone,
            # a second one skips them, and the broker gives them back to the group by itself.
            with contextlib.suppress(pubsubkit.ConnectionLost):
                consumer.ack(held)
            consumer.ack(held)
            after = [e.id for e in broker.emitter(retry_for=60).emit_many([ping(n=i) for i in range(50, 60)])]
            got: list[Delivery] = []

            def everything() -> bool:
                try:
                    got.extend(consumer.receive(100, 0.1))
                except pubsubkit.ConnectionLost:
                    return False
                return {d.envelope.id for d in got if d.envelope} >= set(before + after)

            wait_until(everything, 60, "every message published before and after the restart")
            consumer.ack(got)
            assert consumer.receive(100, 0.3) == []
        finally:
            consumer.close()
