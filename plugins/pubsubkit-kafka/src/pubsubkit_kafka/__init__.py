"""pubsubkit-kafka: Kafka as a pubsubkit message backend, ``kafka://host:port[,host:port]?options``.

Every event goes to one topic (``events`` by default, as in the Go MyEvents), as the Go original's JSON value
``{"eventName": ..., "payload": {...}}``; the event key is the Kafka message key and picks the partition; one
listener group is one Kafka consumer group. See the README for the options.

confluent-kafka is imported when a ``kafka://`` broker is opened (or :class:`KafkaTransport` or
:class:`KafkaConsumer` is first named), not when pubsubkit loads the plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pubsubkit.lazy import lazy_attributes
from pubsubkit.plugin import BrokerSpec, hookimpl
from pubsubkit_kafka._options import CAPABILITIES, KafkaSettings, parse_url
from pubsubkit_kafka._wire import ID_HEADER, TIME_HEADER, derived_id

if TYPE_CHECKING:
    from pubsubkit_kafka._consumer import KafkaConsumer
    from pubsubkit_kafka._transport import KafkaTransport

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

#: The names whose modules import confluent-kafka, and those modules.
_LAZY = {"KafkaConsumer": "pubsubkit_kafka._consumer", "KafkaTransport": "pubsubkit_kafka._transport"}

if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY)


def _open_transport(url: str, **options: Any) -> KafkaTransport:
    """The factory of ``kafka://`` brokers: a :class:`KafkaTransport`, confluent-kafka imported only now."""
    from pubsubkit_kafka._transport import KafkaTransport

    return KafkaTransport(url, **options)


@hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``kafka://`` URLs."""
    register(
        BrokerSpec(
            schemes=("kafka",),
            factory=_open_transport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-kafka",
            description="Kafka topic with consumer groups (confluent-kafka / librdkafka)",
        )
    )
