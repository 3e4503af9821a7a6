"""pubsubkit-kafka: Kafka as a pubsubkit message backend, ``kafka://host:port[,host:port]?options``.

Every event goes to one topic (``events`` by default, as in the Go MyEvents), as the Go original's JSON value
``{"eventName": ..., "payload": {...}}``; the event key is the Kafka message key and picks the partition; one
listener group is one Kafka consumer group. See the README for the options.
"""

from __future__ import annotations

from collections.abc import Callable

from pubsubkit.hookspecs import hookimpl
from pubsubkit.registry import BrokerSpec
from pubsubkit_kafka._config import KafkaSettings, parse_url
from pubsubkit_kafka._consumer import KafkaConsumer
from pubsubkit_kafka._transport import CAPABILITIES, KafkaTransport
from pubsubkit_kafka._wire import ID_HEADER, TIME_HEADER, derived_id

__all__ = [
    "CAPABILITIES",
    "ID_HEADER",
    "TIME_HEADER",
    "KafkaConsumer",
    "KafkaSettings",
    "KafkaTransport",
    "derived_id",
    "parse_url",
]


@hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``kafka://`` URLs."""
    register(
        BrokerSpec(
            schemes=("kafka",),
            factory=KafkaTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-kafka",
            description="Kafka topic with consumer groups (confluent-kafka / librdkafka)",
        )
    )
