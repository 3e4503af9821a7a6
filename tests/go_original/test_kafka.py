"""myevents beside the original Go services on Kafka (``tox -e kafka``).

The original's Kafka listener has no consumer group: it reads every partition of ``events`` from offset 0 and
maps ``{"eventName", "payload"}`` records. Its mapper cannot turn the RFC 3339 dates of ``eventCreated`` into
Go times (it has no hook for them), whoever sent the record, so on Kafka the original booking service never
learns an event; what is checked here is what it reads: the record's form and the event's id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from backend_urls import broker_url
from go_style import is_object_id_hex
from services import create_event, start

import pubsubkit
from pubsubkit.testing import wait_until

pytestmark = pytest.mark.go_original


def test_the_originals_kafka_reader_gets_an_event_with_an_object_id(tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = f"go-{pubsubkit.new_id()[-10:]}"
    svc = start("events", broker_url("kafka", topic, tmp_path))
    try:
        event = create_event(svc)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
        try:  # sarama's ConsumePartition(topic, partition, 0) for every partition: assigned, not subscribed
            records: list[dict[str, object]] = []
            assigned = False

            def heard() -> bool:
                nonlocal assigned
                if not assigned:  # the relay may not have made the topic yet
                    found = reader.list_topics(topic, timeout=5).topics.get(topic)
                    if found is None or found.error is not None or not found.partitions:
                        return False
                    reader.assign([TopicPartition(topic, p, 0) for p in found.partitions])
                    assigned = True
                msg = reader.poll(0.5)
                if msg is not None and msg.error() is None:
                    records.append(json.loads(msg.value()))
                return any(r.get("eventName") == "eventCreated" for r in records)

            wait_until(heard, timeout=60, what="eventCreated read from offset 0")
        finally:
            reader.close()
    finally:
        svc.close()
    [created] = [r for r in records if r["eventName"] == "eventCreated"]
    payload = created["payload"]
    assert isinstance(payload, dict)
    assert payload["id"] == event["ID"]
    assert is_object_id_hex(payload["id"])
    assert set(payload) >= {"id", "name", "location_id", "start_date", "end_date"}
