"""A full listener keeps polling its consumer (keep_alive) and pauses the partitions only once it stays full."""

from __future__ import annotations

import time

from kafka_support import kafka_url
from pubsubkit_kafka._consumer import KEEP_ALIVE_BUFFER, KafkaConsumer

from pubsubkit.api import open_broker
from pubsubkit.testing import EventKit, unique_name


def test_keep_alive_takes_records_for_the_next_receive_then_pauses(kafka_bootstrap: str) -> None:
    """While the listener has no room, keep_alive polls (rebalances go on) and keeps what the polls return, up
    to KEEP_ALIVE_BUFFER records; then the partitions are paused and no more are taken. The next receive
    resumes them and delivers every record once, in the order of the log."""
    kit = EventKit()
    ping = kit.event_type()
    broker = open_broker(kafka_url(kafka_bootstrap, unique_name("t"), "partitions=1"), codec=kit.codec)
    total = KEEP_ALIVE_BUFFER + 300
    ids = [env.id for env in broker.emitter().emit_many([(ping(n=i), None) for i in range(total)])]
    consumer = broker.transport.consumer(kit.name("g"), None)
    assert isinstance(consumer, KafkaConsumer)
    try:
        got = []
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:  # joins the group at its first receive
            got = consumer.receive(10, 1.0)
        assert got, "nothing received"

        while len(consumer._buffer) < KEEP_ALIVE_BUFFER and time.monotonic() < deadline:  # the listener is full
            consumer.keep_alive()
            time.sleep(0.001)
        assert len(consumer._buffer) == KEEP_ALIVE_BUFFER
        assert not consumer._paused, "paused before KEEP_ALIVE_BUFFER records waited"
        for _ in range(200):  # it stays full: paused, and at most one record fetched before the pause is kept
            consumer.keep_alive()
            time.sleep(0.001)
        assert consumer._paused
        assert KEEP_ALIVE_BUFFER <= len(consumer._buffer) <= KEEP_ALIVE_BUFFER + 1

        while len(got) < total and time.monotonic() < deadline:
            got += consumer.receive(total - len(got), 1.0)
        assert not consumer._paused
        assert [d.envelope.id for d in got if d.envelope is not None] == ids
        consumer.ack(got)
    finally:
        consumer.close()
        broker.close()
