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


#: The cases that restart the server run on the durable one (its log in S3), as a real broker keeps its data.
RESTART_CASES = {"test_14_reconnect", "test_21_publish_while_down"}

#: A defect of the test server, not run rather than run as a case that fails at random.
RECONNECT_LOSS = (
    "the S3-backed test server (kafka-durable, Tansu 0.6) loses acknowledged records across restarts: in 2 runs "
    "of 14 one of the 1,000 messages never arrived, and a raw consumer reading the topic from the start found "
    "neither that message nor anything at one offset of its partition (a gap in the log). The fault suite's "
    "broker-restart scenario lost 2 of 1,000 on it once"
)


class TestKafkaMessaging(MessagingSuite):
    @pytest.fixture
    def topic(self) -> str:
        return unique_name("t")

    @pytest.fixture
    def server_name(self, request: pytest.FixtureRequest) -> str:
        return "kafka-durable" if request.node.originalname in RESTART_CASES else "kafka"

    @pytest.fixture
    def bootstrap(self, request: pytest.FixtureRequest, server_name: str) -> str:
        return str(request.getfixturevalue("kafka_durable_bootstrap" if server_name != "kafka" else "kafka_bootstrap"))

    @pytest.fixture
    def broker_url(self, bootstrap: str, topic: str) -> str:
        return kafka_url(bootstrap, topic)

    @pytest.fixture
    def server_control(self, script_server_control: Callable[[str], ServerControl], server_name: str) -> ServerControl:
        return script_server_control(server_name)

    @pytest.fixture
    def publish_undecodable(self, kafka_bootstrap: str, topic: str) -> Callable[[str, str | None], None]:
        def publish(name: str, key: str | None) -> None:
            producer = raw_producer(kafka_bootstrap)
            producer.produce(topic, b"\xff\xfe not the Go JSON", key, headers=[("pubsubkit-id", b"x")])
            assert producer.flush(10) == 0

        return publish

    def test_14_reconnect(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(RECONNECT_LOSS)

    def test_07_concurrent_close(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(TANSU_LEAVE)

    def test_08_continue_after_errors(self, broker: Broker) -> None:  # type: ignore[override]
        pytest.skip(TANSU_LEAVE)
