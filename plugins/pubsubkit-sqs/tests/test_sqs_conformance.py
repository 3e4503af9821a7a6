"""The conformance suite against SQS on the moto test server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import boto3
import pytest

from pubsubkit.envelope import new_id
from pubsubkit.testing import MessagingSuite, ServerControl, Sizes, unique_name
from pubsubkit.testing.plugin import SIZE_ENV

#: The emulator's receive slows as a queue deepens (about 1 s per call at a depth of 500, on 2 busy cores), so
#: the quick run keeps the largest cases at a few hundred messages; ``--conformance-size full`` runs them all.
EMULATOR_QUICK = {"concurrent_publish": 300, "continue_after_close": 300, "emitter_close": 300, "reconnect": 300}


class TestSqsMessaging(MessagingSuite):
    fifo = False

    @pytest.fixture
    def sizes(self, request: pytest.FixtureRequest) -> Sizes:
        name = request.config.getoption("conformance_size", default=None) or os.environ.get(SIZE_ENV, "quick")
        base = Sizes.for_name(str(name))
        return base if name == "full" else attrs.evolve(base, **EMULATOR_QUICK)

    @pytest.fixture
    def broker_url(self, aws_env: str) -> str:
        url = f"sqs://?region=us-east-1&endpoint_url={aws_env}&prefix={unique_name('sq')}&wait=5"
        return url + "&fifo=true" if self.fifo else url

    @pytest.fixture
    def server_control(self, script_server_control: Callable[[str], ServerControl]) -> ServerControl:
        return script_server_control("aws")

    @pytest.fixture
    def publish_undecodable(self, broker_url: str, aws_env: str) -> Iterator[Callable[[str, str | None], None]]:
        client = boto3.client("sns", region_name="us-east-1", endpoint_url=aws_env)
        prefix = broker_url.rsplit("prefix=", 1)[1].split("&", 1)[0]

        def publish(name: str, key: str | None) -> None:
            fifo = {"FifoTopic": "true"} if self.fifo else {}
            topic = client.create_topic(Name=prefix + (".fifo" if self.fifo else ""), Attributes=fifo)["TopicArn"]
            attributes: dict[str, Any] = {
                "event_name": {"DataType": "String", "StringValue": name},
                "event_id": {"DataType": "String", "StringValue": new_id()},
                "event_time": {"DataType": "String", "StringValue": "not a time"},
            }
            if key:
                attributes["event_key"] = {"DataType": "String", "StringValue": key}
            extra = {"MessageGroupId": key or "pubsubkit", "MessageDeduplicationId": new_id()} if self.fifo else {}
            client.publish(TopicArn=topic, Message='{"n": 1}', MessageAttributes=attributes, **extra)

        yield publish
        client.close()


FIFO_CASES = {
    "test_01_publish_subscribe",
    "test_05_no_ack_holds_order",
    "test_09_ordering_per_key",
    "test_15_consumer_groups",
    "test_17_dead_letter",
    "test_18_poison_message",
    "test_22_multiple_handlers_and_bulk",
}


class TestSqsFifoMessaging(TestSqsMessaging):
    """``fifo=true``: the cases about order, groups and dead letters (the rest run on standard queues above)."""

    fifo = True


for _case in dir(MessagingSuite):
    if _case.startswith("test_") and _case not in FIFO_CASES:
        setattr(TestSqsFifoMessaging, _case, None)
