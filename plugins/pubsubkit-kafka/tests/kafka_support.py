"""Helpers of the Kafka plugin's tests: test URLs and raw confluent-kafka clients on the test server."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer

from pubsubkit.testing import unique_name

#: librdkafka settings the tests use: a quick first join (session timeout / 2), and new groups read from the start.
TEST_OPTIONS = "session.timeout.ms=6000&heartbeat.interval.ms=500&auto.offset.reset=earliest&message.timeout.ms=5000"


def kafka_url(bootstrap: str, topic: str | None = None, extra: str = "") -> str:
    """A URL on a topic of its own (a fresh one unless ``topic`` is given)."""
    url = f"kafka://{bootstrap}?topic={topic or unique_name('t')}&{TEST_OPTIONS}"
    return f"{url}&{extra}" if extra else url


def raw_producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})


def raw_consumer(bootstrap: str, topic: str, **config: Any) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("raw"),
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
            **config,
        }
    )
    consumer.subscribe([topic])
    return consumer
