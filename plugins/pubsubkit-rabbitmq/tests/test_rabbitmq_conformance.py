"""The conformance suite against the RabbitMQ test server."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pytest
from rabbitmq_support import raw_channel, with_query

from pubsubkit.envelope import new_id
from pubsubkit.testing import MessagingSuite, ServerControl, unique_name
from pubsubkit.testing._base import MessagingFixtures
from pubsubkit.testing._delivery import DeliveryCases
from pubsubkit.testing._lifecycle import LifecycleCases


class TestRabbitMessaging(MessagingSuite):
    @pytest.fixture
    def exchange(self) -> str:
        return unique_name("ex")

    @pytest.fixture
    def broker_url(self, amqp_url: str, exchange: str) -> str:
        return with_query(amqp_url, exchange=exchange, queue_expires="300")

    @pytest.fixture
    def server_control(self, script_server_control: Callable[[str], ServerControl]) -> ServerControl:
        return script_server_control("rabbitmq")

    @pytest.fixture
    def publish_undecodable(self, amqp_url: str, exchange: str) -> Callable[[str, str | None], None]:
        def publish(name: str, key: str | None) -> None:
            headers = {"x-event-name": name, "x-pubsubkit-occurred-at": "not a time"}
            if key is not None:
                headers["x-pubsubkit-key"] = key
            props = pika.BasicProperties(message_id=new_id(), delivery_mode=2, headers=headers)
            with raw_channel(amqp_url) as ch:
                ch.confirm_delivery()
                ch.basic_publish(exchange, name, b"\xff\xfe", props, mandatory=True)

        return publish


class TestRabbitSingleActiveOrdering(MessagingFixtures):
    """With ``single_active=true`` one member of a group consumes at a time: the ordering cases hold."""

    @pytest.fixture
    def broker_url(self, amqp_url: str) -> str:
        return with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300", single_active="true")

    test_05_no_ack_holds_order = LifecycleCases.test_05_no_ack_holds_order
    test_09_ordering_per_key = DeliveryCases.test_09_ordering_per_key
