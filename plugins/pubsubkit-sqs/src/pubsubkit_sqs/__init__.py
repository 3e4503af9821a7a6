"""pubsubkit-sqs: Amazon SQS as a pubsubkit message backend, ``sqs://?region=us-east-1&prefix=events``.

Publishing goes to the SNS topic ``<prefix>`` in batches of 10; each consumer group has an SQS queue
``<prefix>-<group>`` subscribed to the topic (raw message delivery), so every group gets every event, and a
dead-letter queue ``<prefix>-<group>-dlq``. The wire format is the Go MyEvents' one: the body is the JSON payload,
the message attribute ``event_name`` names the event (see :mod:`pubsubkit_sqs.wire`).
"""

from __future__ import annotations

from collections.abc import Callable

from pubsubkit.hookspecs import hookimpl
from pubsubkit.registry import BrokerSpec
from pubsubkit_sqs.consumer import SqsConsumer
from pubsubkit_sqs.options import Options
from pubsubkit_sqs.transport import CAPABILITIES, FIFO_CAPABILITIES, SqsTransport

__all__ = ["CAPABILITIES", "FIFO_CAPABILITIES", "Options", "SqsConsumer", "SqsTransport", "pubsubkit_register_brokers"]


@hookimpl
def pubsubkit_register_brokers(register: Callable[[BrokerSpec], None]) -> None:
    """Serve ``sqs://``."""
    register(
        BrokerSpec(
            schemes=("sqs",),
            factory=SqsTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit-sqs",
            description="Amazon SQS queues per consumer group, fanned out from an SNS topic (fifo=true: ordered)",
        )
    )
