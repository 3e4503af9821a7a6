"""The conformance suite against the Apache Kafka test server (``scripts/servers kafka``).

Every case runs; the restart cases (14, 21) stop and start the broker through ``scripts/servers``, which keeps
its log directory, so topics, messages and committed offsets come back as they do on any Kafka broker.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka_support import kafka_url, raw_producer

from pubsubkit.testing import MessagingSuite, ServerControl, unique_name


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
