"""Wire compatibility with the Go MyEvents, both ways, dead letters on their topic, and the URL options."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Message
from kafka_support import kafka_url, raw_consumer, raw_producer
from pubsubkit_kafka import ID_HEADER, KafkaTransport, derived_id, parse_url

import pubsubkit
from pubsubkit.api import Broker, open_broker
from pubsubkit.errors import ConfigError, FatalError
from pubsubkit.retry import RetryPolicy
from pubsubkit.testing import Collector, EventKit, InboxEffects, unique_name, wait_until


@pytest.fixture
def topic() -> str:
    return unique_name("t")


@pytest.fixture
def broker(kafka_bootstrap: str, topic: str, kit: EventKit) -> Iterator[Broker]:
    b = open_broker(kafka_url(kafka_bootstrap, topic), codec=kit.codec)
    yield b
    b.close()


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


def read(consumer: Consumer, count: int, timeout: float = 60.0) -> list[Message]:
    """``count`` records from a raw consumer."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            out.append(msg)
    assert len(out) == count, f"read {len(out)} of {count} records"
    return out


def headers_of(msg: Message) -> dict[str, str]:
    raw = msg.headers() or []
    assert isinstance(raw, list)
    return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in raw}


def test_go_message_reaches_a_listener(broker: Broker, kafka_bootstrap: str, topic: str, kit: EventKit) -> None:
    """A record in the Go format, without pubsubkit's headers, is handled; its id comes from where it is stored."""
    ping = kit.event_type()
    broker.transport.consumer(kit.name("g0"), None).close()  # the topic exists, with its partitions
    producer = raw_producer(kafka_bootstrap)
    value = orjson.dumps({"eventName": kit.name("ping"), "payload": {"n": 7, "note": "from go", "tags": ["a"]}})
    producer.produce(topic, value, b"user-1")
    producer.produce(topic, orjson.dumps({"eventName": kit.name("ping"), "payload": {"n": 8}}))
    assert producer.flush(10) == 0

    # Two groups at once: each handles both records, with the same ids (derived from topic, partition, offset).
    got, again = Collector(), Collector()
    listeners = [broker.listener(kit.name(g), poll_interval=0.05) for g in ("g", "g2")]
    for listener, collector in zip(listeners, (got, again), strict=True):
        listener.add_handler(ping, collector)
        listener.start()
    try:
        wait_until(lambda: got.count == 2 and again.count == 2, what="both groups to handle both Go records")
    finally:
        for listener in listeners:
            listener.close()
    by_n = {r.event.n: r for r in got.snapshot()}
    assert by_n[7].event == ping(n=7, note="from go", tags=["a"])
    assert by_n[7].envelope.key == "user-1"
    assert by_n[8].envelope.key is None
    assert by_n[7].envelope.occurred_at.tzinfo is not None
    assert {r.id for r in again.snapshot()} == {r.id for r in got.snapshot()}
    raw = raw_consumer(kafka_bootstrap, topic)
    try:
        records = read(raw, 2)
    finally:
        raw.close()
    derived = {derived_id(topic, m.partition() or 0, m.offset() or 0) for m in records}
    assert derived == {r.id for r in got.snapshot()}


def test_pubsubkit_message_reads_as_go_json(broker: Broker, kafka_bootstrap: str, topic: str, kit: EventKit) -> None:
    """What pubsubkit emits is the Go JSON value; the key is the Kafka key; the metadata rides in headers."""
    ping = kit.event_type()
    emitter = broker.emitter()
    env = emitter.emit(ping(n=3, note="to go ✓"), key="order-9", headers={"correlation-id": "c-1"})
    keyless = emitter.emit(ping(n=4))
    raw = raw_consumer(kafka_bootstrap, topic)
    try:
        records = {m.value(): m for m in read(raw, 2)}
    finally:
        raw.close()
    by_n = {orjson.loads(v)["payload"]["n"]: m for v, m in records.items() if isinstance(v, bytes)}
    first = by_n[3]
    value = first.value()
    assert isinstance(value, bytes)
    assert orjson.loads(value) == {
        "eventName": kit.name("ping"),
        "payload": {"n": 3, "key": None, "note": "to go ✓", "tags": []},
    }
    assert first.key() == b"order-9"
    headers = headers_of(first)
    assert headers[ID_HEADER] == env.id
    assert headers["correlation-id"] == "c-1"
    assert datetime.fromisoformat(headers["pubsubkit-time"]) == env.occurred_at
    assert by_n[4].key() is None
    assert headers_of(by_n[4])[ID_HEADER] == keyless.id


def test_dead_letters_go_to_their_topic(broker: Broker, kafka_bootstrap: str, topic: str, kit: EventKit) -> None:
    """A message given up on lands on ``<topic>.dlq``, unchanged, with the reason in headers."""
    ping = kit.event_type()
    group = kit.name("g")

    def fail(event: Any, msg: pubsubkit.Message) -> None:
        raise FatalError("cannot handle this one")

    got = Collector(fail=fail)
    assert isinstance(broker.transport, KafkaTransport)
    broker.transport.ensure_topic(f"{topic}.dlq")  # so that the raw consumer finds it when it subscribes
    listener = broker.listener(group, poll_interval=0.05, retry=RetryPolicy(attempts=2, initial=0.001, jitter=0))
    listener.add_handler(ping, got)
    listener.start()
    try:
        env = broker.emitter().emit(ping(n=1), key="k")
        raw = raw_consumer(kafka_bootstrap, f"{topic}.dlq")
        try:
            [letter] = read(raw, 1)
        finally:
            raw.close()
    finally:
        listener.close()
    value = letter.value()
    assert isinstance(value, bytes)
    assert orjson.loads(value)["eventName"] == kit.name("ping")
    assert letter.key() == b"k"
    headers = headers_of(letter)
    assert headers[ID_HEADER] == env.id
    assert headers["pubsubkit-dl-group"] == group
    assert headers["pubsubkit-dl-reason"] == "fatal"
    assert headers["pubsubkit-dl-attempts"] == "1"
    assert headers["pubsubkit-dl-original-name"] == kit.name("ping")
    assert "cannot handle this one" in headers["pubsubkit-dl-error"]
    assert datetime.fromisoformat(headers["pubsubkit-dl-dead-at"]).tzinfo == UTC


def test_url_options() -> None:
    """The URL names the topic and the partition count; librdkafka properties pass through; typos are refused."""
    s = parse_url("kafka://h1:9092,h2:9092?partitions=6&linger.ms=20&session.timeout.ms=6000", {})
    assert (s.bootstrap, s.topic, s.dead_letter_topic, s.partitions) == ("h1:9092,h2:9092", "events", "events.dlq", 6)
    assert s.producer_config()["linger.ms"] == "20"
    assert "session.timeout.ms" not in s.producer_config()
    consumer = s.consumer_config("booking", "c1")
    assert consumer["group.id"] == "booking"
    assert consumer["session.timeout.ms"] == "6000"
    assert consumer["enable.auto.commit"] is False
    assert "linger.ms" not in consumer
    assert parse_url("kafka://h:1?group_prefix=staging.", {}).consumer_config("booking", "c1")["group.id"] == (
        "staging.booking"
    )
    assert parse_url("kafka://h:1", {"topic": "orders", "dead_letter_topic": "dead"}).dead_letter_topic == "dead"
    for bad in (
        "kafka://h:1?partitons=3",
        "kafka://h:1?partitions=0",
        "kafka://h:1?topic=a/b",
        "kafka://h:1?group.id=x",
        "kafka://?topic=x",
        "kafka://h:1/events",
    ):
        with pytest.raises(ConfigError):
            parse_url(bad, {})
    with contextlib.closing(KafkaTransport("kafka://127.0.0.1:1")) as transport:  # opening does not connect
        assert transport.capabilities.ordered
    with contextlib.closing(KafkaTransport("kafka://127.0.0.1:1?linger.ms=soon&session.timeout.ms=never")) as t:
        with pytest.raises(ConfigError, match=r"linger\.ms"):
            t.publish([pubsubkit.Envelope(id=pubsubkit.new_id(), name="x", payload=b"{}")])
        with pytest.raises(ConfigError, match=r"session\.timeout\.ms"):
            t.consumer("g", None)


def test_identical_go_records_each_have_their_effect(
    broker: Broker, kafka_bootstrap: str, topic: str, kit: EventKit
) -> None:
    """Two byte-identical Go-format records (two bookings of one user for one event) have two effects through
    an inbox: an id-less record's id comes from its place in the log, never from its bytes."""
    ping = kit.event_type()
    broker.transport.consumer(kit.name("g0"), None).close()
    producer = raw_producer(kafka_bootstrap)
    value = orjson.dumps({"eventName": kit.name("ping"), "payload": {"n": 1, "note": "eventBooked"}})
    for _ in range(2):
        producer.produce(topic, value, b"event-1")
    assert producer.flush(10) == 0
    store = pubsubkit.open_store(f"memory://{kit.name('store')}")
    effects = InboxEffects(store)
    listener = broker.listener(kit.name("g"), poll_interval=0.05, store=store)
    listener.add_handler(ping, effects)
    listener.start()
    try:
        wait_until(lambda: effects.count >= 2, what="two effects of two identical records")
    finally:
        listener.close()
        store.close()
    assert effects.count == 2


def _ids(broker: Broker, group: str, count: int) -> list[str]:
    """The ids of the first ``count`` messages a new member of ``group`` receives (acknowledged, then it leaves)."""
    consumer = broker.transport.consumer(group, None)
    got: list[Any] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.receive(count - len(got), 0.5)
    consumer.ack(got)
    extra = consumer.receive(10, 1.0)
    consumer.close()
    assert extra == [], "the group received more than it was moved back over"
    return [d.envelope.id for d in got if d.envelope is not None]


def test_a_stopped_group_is_moved_back_to_the_start_or_a_time(broker: Broker, kit: EventKit) -> None:
    """reset_group: a stopped group receives again every record kept, or those at or after a time; a group with
    a member is refused with the fix."""
    ping = kit.event_type()
    group = kit.name("g")
    early = broker.emitter().emit_many([(ping(n=i), f"k{i}") for i in range(3)])
    time.sleep(0.05)  # so that the later records' timestamps are later
    late = broker.emitter().emit_many([(ping(n=i), f"k{i}") for i in range(3, 6)])
    assert sorted(_ids(broker, group, 6)) == sorted(e.id for e in early + late)
    assert broker.transport.reset_group(group, late[0].occurred_at) == 3
    assert sorted(_ids(broker, group, 3)) == sorted(e.id for e in late)
    assert broker.transport.reset_group(group) == 6
    assert sorted(_ids(broker, group, 6)) == sorted(e.id for e in early + late)
    member = broker.transport.consumer(group, None)
    try:
        member.receive(1, 10)  # joins the group
        with pytest.raises(ConfigError, match="has members: stop its listeners"):
            broker.transport.reset_group(group)
    finally:
        member.close()


def test_the_asyncapi_document_names_the_topic_and_its_schema_accepts_a_record_from_it(
    broker: Broker, kafka_bootstrap: str, topic: str, kit: EventKit
) -> None:
    """Every event on the one topic, as a Go-format value; the document validates against AsyncAPI 3.0.0 and
    the message schema accepts the value of a record read back from the topic (headers included)."""
    import json
    from pathlib import Path

    import jsonschema_rs

    from pubsubkit.asyncapi import document

    ping, pong = kit.event_type("ping"), kit.event_type("pong")
    listener = broker.listener(kit.name("g"))
    listener.add_handler(pong, lambda e, m: None)
    doc = document("kafka app", broker=broker, emits=[ping], listeners=[listener], registry=kit.codec.registry)
    spec = json.loads((Path(__file__).resolve().parents[3] / "tests/asyncapi/asyncapi-3.0.0.schema.json").read_text())
    found = [e.message for e in jsonschema_rs.validator_for(spec).iter_errors(doc)]
    assert found == []
    assert list(doc["channels"]) == [topic]
    assert doc["channels"][topic]["address"] == topic
    assert doc["channels"][topic]["bindings"]["kafka"]["topic"] == topic
    assert doc["servers"]["bus"] == {"host": kafka_bootstrap, "protocol": "kafka"}
    assert sorted(doc["operations"]) == [f"{kit.name('g')}.{kit.name('pong')}.receive", f"{kit.name('ping')}.send"]

    broker.emitter().emit(ping(n=1, note="n"), key="k", headers={"correlation-id": "c-1"})
    raw = raw_consumer(kafka_bootstrap, topic)
    try:
        [record] = read(raw, 1)
    finally:
        raw.close()
    message = doc["components"]["messages"][kit.name("ping")]
    value = record.value()
    assert isinstance(value, bytes)
    schema = {**message["payload"], "components": doc["components"]}
    jsonschema_rs.Draft7Validator(schema).validate(orjson.loads(value))
    headers = {**message["headers"], "components": doc["components"]}
    jsonschema_rs.Draft7Validator(headers).validate(headers_of(record))
    assert set(headers_of(record)) <= set(message["headers"]["properties"])
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.Draft7Validator(schema).validate({"eventName": kit.name("ping"), "payload": {"n": "one"}})
