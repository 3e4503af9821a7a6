"""pubsubkit-sqs: Amazon SQS as a pubsubkit message backend, ``sqs://?region=us-east-1&prefix=events``.

Publishing goes to the SNS topic ``<prefix>`` in batches of 10; each consumer group has an SQS queue
``<prefix>-<group>`` subscribed to the topic (raw message delivery), so every group gets every event, and a
dead-letter queue ``<prefix>-<group>-dlq``. The wire format is the Go MyEvents' one: the body is the JSON payload,
the message attribute ``event_name`` names the event (see :mod:`pubsubkit_sqs._wire`).

boto3 is imported when an ``sqs://`` broker is opened (or :class:`SqsTransport` or :class:`SqsConsumer` is first
named), not when pubsubkit loads the plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pubsubkit.lazy import lazy_attributes
from pubsubkit.plugin import BrokerSpec, hookimpl
from pubsubkit_sqs._options import CAPABILITIES, FIFO_CAPABILITIES, Options

if TYPE_CHECKING:
    from pubsubkit_sqs._consumer import SqsConsumer
    from pubsubkit_sqs._transport import SqsTransport

__all__ = ["CAPABILITIES", "FIFO_CAPABILITIES", "Options", "SqsConsumer", "SqsTransport", "pubsubkit_register_brokers"]

#: The names whose modules import boto3, and those modules.
_LAZY = {"SqsConsumer": "pubsubkit_sqs._consumer", "SqsTransport": "pubsubkit_sqs._transport"}

if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, globals(), _LAZY)


def _open_transport(url: str, **options: Any) -> SqsTransport:
    """The factory of ``sqs://`` brokers: an :class:`SqsTransport`, boto3 imported only now."""
    from pubsubkit_sqs._transport import SqsTransport

    return SqsTransport(url, **options)


@hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``sqs://``."""
    register(
        BrokerSpec(
            schemes=("sqs",),
            factory=_open_transport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-sqs",
            description="Amazon SQS queues per consumer group, fanned out from an SNS topic (fifo=true: ordered)",
        )
    )
