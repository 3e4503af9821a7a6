"""The conformance suite against SQS on the moto test server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from pubsubkit.api import Broker
from pubsubkit.envelope import new_id
from pubsubkit.testing import EventKit, MessagingSuite, ServerControl, Sizes, unique_name
from pubsubkit.testing._base import Listeners

RESTART_LOSES = (
    "the moto test server keeps its queues in memory: a restart loses every message in them, which real SQS "
    "keeps (the transport re-creates its topic and queues and carries on; test_21 covers that)"
)


class TestSqsMessaging(MessagingSuite):
    @pytest.fixture
    def broker_url(self, aws_env: str) -> str:
        return f"sqs://?region=us-east-1&endpoint_url={aws_env}&prefix={unique_name('sq')}&wait=5"

    @pytest.fixture
    def server_control(self, script_server_control: Callable[[str], ServerControl]) -> ServerControl:
        return script_server_control("aws")

    @pytest.fixture
    def publish_undecodable(self, broker_url: str, aws_env: str) -> Iterator[Callable[[str, str | None], None]]:
        client = boto3.client("sns", region_name="us-east-1", endpoint_url=aws_env)
        prefix = broker_url.rsplit("prefix=", 1)[1].split("&", 1)[0]

        def publish(name: str, key: str | None) -> None:
            topic = client.create_topic(Name=prefix)["TopicArn"]
            attributes: dict[str, Any] = {
                "event_name": {"DataType": "String", "StringValue": name},
                "event_id": {"DataType": "String", "StringValue": new_id()},
                "event_time": {"DataType": "String", "StringValue": "not a time"},
            }
            if key:
                attributes["event_key"] = {"DataType": "String", "StringValue": key}
            client.publish(TopicArn=topic, Message='{"n": 1}', MessageAttributes=attributes)

        yield publish
        client.close()

    def test_14_reconnect(
        self, broker: Broker, server_control: ServerControl, kit: EventKit, listeners: Listeners, sizes: Sizes
    ) -> None:
        pytest.skip(RESTART_LOSES)
