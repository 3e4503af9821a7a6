"""pubsubkit-rabbitmq: RabbitMQ as a pubsubkit message backend, ``amqp://`` and ``amqps://``.

Events go to a durable topic exchange (``events`` by default) with the event name as routing key, as
persistent messages confirmed by the broker (publisher confirms, pipelined). Each consumer group has a
durable queue ``<exchange>.<group>`` (a quorum queue by default; ``queue.<group>`` and ``queue_type.<group>``
choose another) bound to the names its listener handles, and a dead-letter queue ``<exchange>.<group>.dlq`` fed
through the exchange ``<exchange>.dlx``; ``share.<group>`` takes some names from another application's queue.
The wire format is the Go MyEvents one: routing key and header ``x-event-name`` = event name, JSON body.

pika is imported when an ``amqp://`` broker is opened (or :class:`RabbitTransport` or :class:`RabbitConsumer` is
first named), not when pubsubkit loads the plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pubsubkit
from pubsubkit.lazy import lazy_attributes
from pubsubkit.plugin import BrokerSpec
from pubsubkit_rabbitmq._options import CAPABILITIES, GROUP_OPTIONS, OPTIONS, QueueMismatch, Settings, Unroutable

if TYPE_CHECKING:
    from pubsubkit_rabbitmq._consumer import RabbitConsumer
    from pubsubkit_rabbitmq._transport import RabbitTransport

__all__ = [
    "CAPABILITIES",
    "GROUP_OPTIONS",
    "OPTIONS",
    "QueueMismatch",
    "RabbitConsumer",
    "RabbitTransport",
    "Settings",
    "Unroutable",
]

#: The names whose modules import pika, and those modules.
_LAZY = {"RabbitConsumer": "pubsubkit_rabbitmq._consumer", "RabbitTransport": "pubsubkit_rabbitmq._transport"}

if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY)


def _open_transport(url: str, **options: Any) -> RabbitTransport:
    """The factory of ``amqp://`` brokers: a :class:`RabbitTransport`, pika imported only now."""
    from pubsubkit_rabbitmq._transport import RabbitTransport

    return RabbitTransport(url, **options)


@pubsubkit.plugin.hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``amqp://`` and ``amqps://`` URLs."""
    register(
        BrokerSpec(
            schemes=("amqp", "amqps"),
            factory=_open_transport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-rabbitmq",
            description="RabbitMQ: durable topic exchange, a quorum queue per consumer group, publisher confirms",
        )
    )
