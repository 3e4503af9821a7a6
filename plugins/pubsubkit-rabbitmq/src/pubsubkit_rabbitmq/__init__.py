"""pubsubkit-rabbitmq: RabbitMQ as a pubsubkit message backend, ``amqp://`` and ``amqps://``.

Events go to a durable topic exchange (``events`` by default) with the event name as routing key, as
persistent messages confirmed by the broker (publisher confirms, pipelined). Each consumer group has a
durable queue ``<exchange>.<group>`` (a quorum queue by default) bound to the names its listener handles,
and a dead-letter queue ``<exchange>.<group>.dlq`` fed through the exchange ``<exchange>.dlx``. The wire format
is the Go MyEvents one: routing key and header ``x-event-name`` = event name, JSON body.
"""

from __future__ import annotations

from collections.abc import Callable

import pubsubkit
from pubsubkit import BrokerSpec
from pubsubkit_rabbitmq._config import OPTIONS, Settings
from pubsubkit_rabbitmq._consumer import RabbitConsumer
from pubsubkit_rabbitmq._publisher import Unroutable
from pubsubkit_rabbitmq._transport import CAPABILITIES, RabbitTransport

__all__ = ["CAPABILITIES", "OPTIONS", "RabbitConsumer", "RabbitTransport", "Settings", "Unroutable"]


@pubsubkit.hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``amqp://`` and ``amqps://`` URLs."""
    register(
        BrokerSpec(
            schemes=("amqp", "amqps"),
            factory=RabbitTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-rabbitmq",
            description="RabbitMQ: durable topic exchange, a quorum queue per consumer group, publisher confirms",
        )
    )
