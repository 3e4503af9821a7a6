"""Wire compatibility with the Go MyEvents services, both ways, through a plain pika client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pika
import pytest
from rabbitmq_support import raw_channel, with_query

import pubsubkit
from pubsubkit.listener import Message
from pubsubkit.testing import Collector, EventKit, InboxEffects, unique_name, wait_until
from pubsubkit.testing.helpers import HookRecorder


@pytest.fixture
def broker(amqp_url: str, kit: EventKit) -> Iterator[pubsubkit.Broker]:
    """A broker on the Go services' exchange, ``events`` (the default)."""
    # No archive: the exchange is the original's events, shared with other tests, whose history a new group would read.
    b = pubsubkit.open_broker(with_query(amqp_url, queue_expires="300", archive="false"), codec=kit.codec)
    yield b
    b.close()


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


def go_publish(amqp_url: str, name: str, body: bytes) -> None:
    """Publish as the Go MyEvents emitter does: exchange events, routing key and x-event-name, JSON body."""
    props = pika.BasicProperties(content_type="application/json", headers={"x-event-name": name})
    with raw_channel(amqp_url) as ch:
        ch.exchange_declare("events", exchange_type="topic", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("events", name, body, props, mandatory=True)


def test_go_message_reaches_a_listener(amqp_url: str, broker: pubsubkit.Broker, kit: EventKit) -> None:
    """A message without pubsubkit's headers is handled; without a message_id it gets an id of its own."""
    ping = kit.event_type("booked")
    got = Collector()
    listener = broker.listener(kit.name("booking"), poll_interval=0.05)
    listener.add_handler(ping, got)
    listener.start()
    assert listener.wait_ready(30)
    before = datetime.now(UTC) - timedelta(seconds=1)
    body = json.dumps({"n": 7, "note": "from go"}).encode()
    go_publish(amqp_url, kit.name("booked"), body)
    go_publish(amqp_url, kit.name("booked"), body)
    got.wait_count(2)
    listener.close(timeout=30)
    first, second = got.snapshot()
    assert first.event == ping(n=7, note="from go")
    assert first.envelope.name == kit.name("booked")
    assert first.envelope.key is None
    assert first.envelope.payload == body
    assert first.envelope.occurred_at >= before
    assert first.attempt == 1
    assert first.id != second.id, "two identical messages without message_id were given one id"


def identical_go_messages_effects(amqp_url: str, kit: EventKit, **options: str) -> int:
    """Two byte-identical Go-format messages (two bookings of one user for one event) to a listener with an
    inbox; the number of effects they had."""
    ping = kit.event_type("booked")
    url = with_query(amqp_url, queue_expires="300", archive="false", **options)
    store = pubsubkit.open_store(f"memory://{kit.name('store')}")
    effects, recorder = InboxEffects(store), HookRecorder()
    pm = pubsubkit.get_plugin_manager()
    pm.register(recorder)
    group = kit.name("booking")
    with pubsubkit.open_broker(url, codec=kit.codec, pm=pm) as broker:
        listener = broker.listener(group, poll_interval=0.05, store=store)
        listener.add_handler(ping, effects)
        listener.start()
        assert listener.wait_ready(30)
        for _ in range(2):
            go_publish(amqp_url, kit.name("booked"), b'{"n": 1, "note": "eventBooked"}')
        wait_until(lambda: len(recorder.outcomes_of(group)) >= 2, what="both messages handled")
        listener.close(timeout=30)
    store.close()
    assert sorted(recorder.outcomes_of(group)) in (["ok", "ok"], ["duplicate", "ok"])
    return effects.count


def test_identical_go_messages_each_have_their_effect(amqp_url: str, kit: EventKit) -> None:
    """By default (missing_id=fresh) an inbox does not merge two identical id-less messages."""
    assert identical_go_messages_effects(amqp_url, kit) == 2


def test_hashed_ids_merge_identical_messages(amqp_url: str, kit: EventKit) -> None:
    """missing_id=hash, the opt-in for producers whose payloads are unique: identical messages have one effect."""
    assert identical_go_messages_effects(amqp_url, kit, missing_id="hash") == 1


def test_pubsubkit_message_reads_as_go_format(amqp_url: str, broker: pubsubkit.Broker, kit: EventKit) -> None:
    """An emitted event is what a Go consumer expects; pubsubkit's metadata rides in properties and headers."""
    ping = kit.event_type("created")
    name = kit.name("created")
    queue = unique_name("go_queue")
    with raw_channel(amqp_url) as ch:
        ch.exchange_declare("events", exchange_type="topic", durable=True)
        ch.queue_declare(queue, exclusive=True)
        ch.queue_bind(queue, "events", routing_key=name)
        env = broker.emitter().emit(ping(n=3, key="a1", note="é"), key="a1", headers={"traceparent": "00-x"})
        method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None, "the raw consumer got nothing"
    assert method.exchange == "events"
    assert method.routing_key == name
    assert props.headers["x-event-name"] == name
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert json.loads(body) == {"n": 3, "key": "a1", "note": "é", "tags": []}
    assert props.message_id == env.id
    assert props.correlation_id == env.id
    assert props.timestamp == int(env.occurred_at.timestamp())
    assert props.headers["x-pubsubkit-key"] == "a1"
    assert props.headers["traceparent"] == "00-x"
    assert datetime.fromisoformat(props.headers["x-pubsubkit-occurred-at"]) == env.occurred_at


def test_round_trip_keeps_the_envelope(amqp_url: str, broker: pubsubkit.Broker, kit: EventKit) -> None:
    """pubsubkit to pubsubkit over the Go format: id, key, time, headers come back unchanged."""
    ping = kit.event_type()
    seen: list[Message] = []
    done = threading.Event()

    def handle(event: object, msg: Message) -> None:
        seen.append(msg)
        done.set()

    listener = broker.listener(kit.name("g"), poll_interval=0.05)
    listener.add_handler(ping, handle)
    listener.start()
    assert listener.wait_ready(30)
    env = broker.emitter().emit(ping(n=1), key="k", headers={"x-note": "ü ✓"})
    wait_until(done.is_set)
    listener.close(timeout=30)
    got = seen[0].envelope
    assert (got.id, got.name, got.key, got.payload, got.occurred_at) == (
        env.id,
        env.name,
        env.key,
        env.payload,
        env.occurred_at,
    )
    assert got.headers == env.headers


def test_go_message_that_cannot_be_decoded_is_dead_lettered(
    amqp_url: str, broker: pubsubkit.Broker, kit: EventKit
) -> None:
    """A Go message whose payload does not fit the event is a poison message, kept with its derived id."""
    ping = kit.event_type("booked")
    group = kit.name("booking")
    listener = broker.listener(group, poll_interval=0.05)
    listener.add_handler(ping, Collector())
    listener.start()
    assert listener.wait_ready(30)
    go_publish(amqp_url, kit.name("booked"), b'{"n": "seven"}')
    wait_until(lambda: broker.transport.dead_letters(group), what="the dead letter")
    listener.close(timeout=30)
    [letter] = broker.transport.dead_letters(group)
    assert (letter.reason, letter.attempts, letter.original_name) == ("poison", 1, kit.name("booked"))
    assert letter.envelope is not None
    assert letter.envelope.payload == b'{"n": "seven"}'
    assert letter.id is not None
    assert letter.id.startswith(f"{group}/")


def test_the_asyncapi_document_has_a_routing_key_per_event_and_accepts_a_message_read_back(
    amqp_url: str, broker: pubsubkit.Broker, kit: EventKit
) -> None:
    """A channel per event name, the routing key of the durable topic exchange; the document validates against
    AsyncAPI 3.0.0, and the message schema accepts the body and headers of a message taken from the exchange."""
    from pathlib import Path

    import jsonschema_rs

    from pubsubkit.asyncapi import document

    ping = kit.event_type("created")
    name = kit.name("created")
    listener = broker.listener(kit.name("g"))
    listener.add_handler(ping, lambda e, m: None)
    doc = document("amqp app", broker=broker, emits=[ping], listeners=[listener], registry=kit.codec.registry)
    spec = json.loads((Path(__file__).resolve().parents[3] / "tests/asyncapi/asyncapi-3.0.0.schema.json").read_text())
    assert [e.message for e in jsonschema_rs.validator_for(spec).iter_errors(doc)] == []
    channel = doc["channels"][name]
    assert channel["address"] == name
    assert channel["bindings"]["amqp"]["is"] == "routingKey"
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "events"
    assert doc["servers"]["bus"]["protocol"] == "amqp"
    assert sorted(doc["operations"]) == sorted([f"{kit.name('g')}.{name}.receive", f"{name}.send"])

    queue = unique_name("doc_queue")
    with raw_channel(amqp_url) as ch:
        ch.exchange_declare("events", exchange_type="topic", durable=True)
        ch.queue_declare(queue, exclusive=True)
        ch.queue_bind(queue, "events", routing_key=name)
        broker.emitter().emit(ping(n=3, key="a1", note="é"), key="a1", headers={"traceparent": "00-x"})
        method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None, "the raw consumer got nothing"
    message = doc["components"]["messages"][name]
    payload = {**message["payload"], "components": doc["components"]}
    jsonschema_rs.Draft7Validator(payload).validate(json.loads(body))
    jsonschema_rs.Draft7Validator(message["headers"]).validate(props.headers)
    assert set(props.headers) <= set(message["headers"]["properties"])
