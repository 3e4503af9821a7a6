"""The conformance suite against the Kafka-protocol test server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka_support import kafka_url, raw_producer

from pubsubkit.api import Broker
from pubsubkit.testing import MessagingSuite, ServerControl, unique_name

#: Seen with the raw confluent-kafka client too: members that leave while the others rejoin leave the group
#: with a departed leader, and a new member's SyncGroup answers "rebalance in progress" for ever.
TANSU_LEAVE = (
    "the Kafka-protocol test server (Tansu 0.6) keeps a member that left during a rebalance as the group's "
    "leader, so after several members close at once the group never forms again"
)


class TestKafkaMessaging(MessagingSuite):
    @pytest.fixture
    def topic(self) -> str:
        return unique_name("t")

    @pytest.fixture
    def broker_url(self, kafka_bootstrap: str, topic: str) -> str:
        return kafka_url(kafka_bootstrap, topic)

    @pytest.fixture
    def server_control(self, script_server_control: Callable[[str], ServerControl]) -> ServerControl:
        return script_server_control("kafka")

    @pytest.fixture
    def publish_undecodable(self, kafka_bootstrap: str, topic: str) -> Callable[[str, str | None], None]:
        def publish(name: str, key: str | None) -> None:
            producer = raw_producer(kafka_bootstrap)
            producer.produce(topic, b"\xff\xfe not the Go JSON", key, headers=[("pubsubkit-id", b"x")])
            assert producer.flush(10) == 0

        return publish

    def test_14_reconnect(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(
            "the Kafka-protocol test server keeps data in memory only: a restart loses the topic and the "
            "messages not yet consumed"
        )

    def test_07_concurrent_close(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(TANSU_LEAVE)

    def test_08_continue_after_errors(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(TANSU_LEAVE)
