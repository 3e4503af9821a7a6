"""The SQS wire format against raw boto3, both ways, and the transport's SQS-specific behaviour."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import orjson
import pytest
from pubsubkit_sqs import SqsTransport

import pubsubkit
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.testing import Collector, InboxEffects, unique_name, wait_until
from pubsubkit.transport import DeadLetter, Delivery


@attrs.frozen
class EventCreated:
    """The Go MyEvents' ``eventCreated`` payload (a subset)."""

    id: str
    name: str


@pytest.fixture
def url(aws_env: str) -> str:
    return f"sqs://?region=us-east-1&endpoint_url={aws_env}&prefix={unique_name('wire')}&wait=2"


@pytest.fixture
def transport(url: str) -> Iterator[SqsTransport]:
    t = SqsTransport(url)
    yield t
    t.close()


def receive_until(consumer: Any, count: int, timeout: float = 30.0) -> list[Delivery]:
    got: list[Delivery] = []
    wait_until(lambda: got.extend(consumer.receive(10, 0.5)) or len(got) >= count, timeout=timeout)
    return got


def test_raw_go_format_is_consumed(url: str, sqs_client: Any) -> None:
    """A message as the Go MyEvents sent it (body = payload, only ``event_name``) reaches a listener."""
    name = unique_name("eventCreated")
    registry = pubsubkit.EventRegistry()
    registry.register(EventCreated, name)
    with pubsubkit.open_broker(url, codec=pubsubkit.Codec(registry)) as broker:
        got = Collector()
        listener = broker.listener("booking", poll_interval=0.05)
        listener.add_handler(EventCreated, got)
        listener.start()
        assert listener.wait_ready(30)
        queue = broker.transport.aws.group("booking").url
        sent = sqs_client.send_message(
            QueueUrl=queue,
            MessageBody='{"id": "e1", "name": "Opera"}',
            MessageAttributes={"event_name": {"DataType": "String", "StringValue": name}},
        )
        got.wait_for([sent["MessageId"]])
        listener.close()
    [received] = got.snapshot()
    assert received.event == EventCreated("e1", "Opera")
    assert received.envelope.id == sent["MessageId"]
    assert received.envelope.name == name


def test_emitted_message_reads_as_go_format(transport: SqsTransport, sqs_client: Any) -> None:
    """What pubsubkit publishes is, to raw boto3, the Go format plus metadata attributes."""
    transport.consumer("raw", None).close()  # the group's queue, subscribed to the topic
    env = Envelope(
        id=new_id(),
        name="eventCreated",
        payload=b'{"id":"e2","name":"Jazz"}',
        key="e2",
        headers={"correlation-id": "c1"},
    )
    transport.publish([env])
    queue = transport.aws.group("raw").url
    messages: list[dict[str, Any]] = []
    wait_until(
        lambda: (
            messages.extend(
                sqs_client.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=1).get(
                    "Messages", []
                )
            )
            or messages
        )
    )
    [message] = messages
    assert orjson.loads(message["Body"]) == {"id": "e2", "name": "Jazz"}
    attrs_ = message["MessageAttributes"]
    assert attrs_["event_name"] == {"DataType": "String", "StringValue": "eventCreated"}
    assert attrs_["event_id"]["StringValue"] == env.id
    assert attrs_["event_key"]["StringValue"] == "e2"
    assert attrs_["correlation_id"]["StringValue"] == "c1"
    sqs_client.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_binary_payload_round_trip(transport: SqsTransport) -> None:
    """A payload SQS cannot carry as text travels base64-encoded and comes back byte for byte."""
    consumer = transport.consumer("bin", None)
    try:
        env = Envelope(id=new_id(), name="blob", payload=b"\xff\x00\x01 not utf-8")
        transport.publish([env])
        [d] = receive_until(consumer, 1)
        assert d.envelope is not None
        assert d.envelope.payload == env.payload
        consumer.ack([d])
    finally:
        consumer.close()


def test_release_extend_and_attempts(transport: SqsTransport) -> None:
    """Release makes a message visible at once with its receive count as attempt; extend keeps it owned."""
    consumer = transport.consumer("rel", None)
    try:
        env = Envelope(id=new_id(), name="x", payload=b"{}")
        transport.publish([env])
        [first] = receive_until(consumer, 1)
        assert first.attempt == 1
        consumer.extend([first], 60)
        consumer.release([first])
        [second] = receive_until(consumer, 1)
        assert second.envelope is not None
        assert second.envelope.id == env.id
        assert second.attempt == 2
        consumer.ack([second])
        assert consumer.receive(10, 0.1) == []
    finally:
        consumer.close()


def test_dead_letter_queue(transport: SqsTransport, sqs_client: Any) -> None:
    """dead_letter() moves the message as received to the group's DLQ with the letter, and deletes it."""
    consumer = transport.consumer("dlq", None)
    try:
        env = Envelope(id=new_id(), name="x", payload=b'{"a": 1}', key="k")
        transport.publish([env])
        [d] = receive_until(consumer, 1)
        letter = DeadLetter(group="dlq", reason="failed", error="Boom", attempts=3, original_name="x", envelope=env)
        consumer.dead_letter(d, letter)
        dlq = transport.aws.group("dlq").dlq_url
        reply = sqs_client.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=2)
        [dead] = reply["Messages"]
        assert dead["Body"] == '{"a": 1}'
        assert dead["MessageAttributes"]["event_id"]["StringValue"] == env.id
        info = orjson.loads(dead["MessageAttributes"]["dead_letter"]["StringValue"])
        assert (info["reason"], info["error"], info["attempts"], info["group"], info["original_name"]) == (
            "failed",
            "Boom",
            3,
            "dlq",
            "x",
        )
        assert consumer.receive(10, 0.1) == []
    finally:
        consumer.close()


def test_batched_publish_of_many(transport: SqsTransport) -> None:
    """A publish of more than one batch (several calls, concurrent lanes) stores every message."""
    consumer = transport.consumer("many", None)
    try:
        envs = [Envelope(id=new_id(), name="x", payload=b"{}", key=f"k{i % 5}") for i in range(45)]
        transport.publish(envs)
        got = receive_until(consumer, 45)
        consumer.ack(got)
        assert sorted(d.envelope.id for d in got if d.envelope is not None) == sorted(e.id for e in envs)
    finally:
        consumer.close()


def test_missing_attribute_is_poison(transport: SqsTransport, sqs_client: Any) -> None:
    """A message without ``event_name`` comes as an undecodable delivery, for the listener to dead-letter."""
    consumer = transport.consumer("poison", None)
    try:
        sqs_client.send_message(QueueUrl=consumer.queues.url, MessageBody="hello")  # type: ignore[attr-defined]
        [d] = receive_until(consumer, 1)
        assert d.envelope is None
        assert d.raw == b"hello"
        assert d.error
        consumer.ack([d])
    finally:
        consumer.close()


def test_publish_after_close_and_config_errors(url: str) -> None:
    t = SqsTransport(url)
    t.close()
    t.close()
    with pytest.raises(pubsubkit.Closed):
        t.publish([Envelope(id=new_id(), name="x", payload=b"{}")])
    for bad in ("sqs://host?prefix=x", "sqs://?colour=red", "sqs://?wait=30", "sqs://?fifo=maybe", "sqs://?prefix=a.b"):
        with pytest.raises(pubsubkit.ConfigError):
            SqsTransport(bad)
    with pytest.raises(pubsubkit.ConfigError):
        SqsTransport(url).consumer("bad name", None)


def test_missing_topic_and_queue_are_created_again(transport: SqsTransport, sqs_client: Any, sns_client: Any) -> None:
    """After the topic and the group's queue vanish (an emulator restart), publish and receive carry on."""
    consumer = transport.consumer("gone", None)
    try:
        queues = transport.aws.group("gone")
        sqs_client.delete_queue(QueueUrl=queues.url)
        sns_client.delete_topic(TopicArn=transport.aws.topic_arn())
        env = Envelope(id=new_id(), name="x", payload=b"{}")
        transport.publish([env])  # re-creates the topic and the queues of the groups with open consumers
        [d] = receive_until(consumer, 1)
        assert d.envelope is not None
        assert d.envelope.id == env.id
        consumer.ack([d])
        sqs_client.delete_queue(QueueUrl=transport.aws.group("gone").url)
        assert consumer.receive(10, 0.1) == []  # finds its queue missing and creates it again
        transport.publish([env])
        [again] = receive_until(consumer, 1)
        consumer.ack([again])
    finally:
        consumer.close()


def test_publish_error_names_the_entries_not_taken(transport: SqsTransport) -> None:
    """An entry the service refuses (too long) makes publish raise PublishError naming it; the rest is stored."""
    consumer = transport.consumer("partial", None)
    try:
        small = [Envelope(id=new_id(), name="x", payload=b"{}") for _ in range(2)]
        huge = Envelope(id=new_id(), name="x", payload=b'"' + b"x" * 300_000 + b'"')
        with pytest.raises(pubsubkit.PublishError) as info:
            transport.publish([small[0], huge, small[1]])
        assert huge.id in str(info.value)
        assert info.value.retryable is False  # a message too long stays too long: the emitter does not retry
        assert "1 of 3" in str(info.value)
        got = receive_until(consumer, 2)
        consumer.ack(got)
        assert sorted(d.envelope.id for d in got if d.envelope is not None) == sorted(e.id for e in small)
    finally:
        consumer.close()


@pytest.fixture
def not_an_answer() -> Iterator[str]:
    """An endpoint answering every request 503 with a page that is no AWS answer (as a proxy in front may)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "gateway busy"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_answer_that_is_not_one_is_a_lost_connection(not_an_answer: str) -> None:
    """botocore's ResponseParserError is no BotoCoreError: it must still become ConnectionLost, retried."""
    t = SqsTransport(f"sqs://?region=us-east-1&endpoint_url={not_an_answer}&prefix={unique_name('gw')}")
    try:
        with pytest.raises(pubsubkit.ConnectionLost):
            t.publish([Envelope(id=new_id(), name="x", payload=b"{}")])
        with pytest.raises(pubsubkit.ConnectionLost):
            t.consumer("g", None)
    finally:
        t.close()


def test_identical_go_messages_each_have_their_effect(url: str, sqs_client: Any) -> None:
    """Two byte-identical Go-format messages have two effects through an inbox: each has its SQS MessageId."""
    name = unique_name("eventBooked")
    registry = pubsubkit.EventRegistry()
    registry.register(EventCreated, name)
    store = pubsubkit.open_store(f"memory://{unique_name('store')}")
    effects = InboxEffects(store)
    with pubsubkit.open_broker(url, codec=pubsubkit.Codec(registry)) as broker:
        listener = broker.listener("booking", poll_interval=0.05, store=store)
        listener.add_handler(EventCreated, effects)
        listener.start()
        assert listener.wait_ready(30)
        queue = broker.transport.aws.group("booking").url
        for _ in range(2):
            sqs_client.send_message(
                QueueUrl=queue,
                MessageBody='{"id": "e1", "name": "Opera"}',
                MessageAttributes={"event_name": {"DataType": "String", "StringValue": name}},
            )
        try:
            wait_until(lambda: effects.count >= 2, what="two effects of two identical messages")
        finally:
            listener.close()
    store.close()
    assert effects.count == 2


def test_the_asyncapi_document_names_the_topic_and_accepts_a_message_read_back(
    url: str, transport: SqsTransport, sqs_client: Any
) -> None:
    """Every event on the prefix's SNS topic; the document validates against AsyncAPI 3.0.0, and the message
    schema accepts a body read from a group's queue, whose attributes are among the message's headers."""
    import json
    from pathlib import Path

    import jsonschema_rs

    from pubsubkit.asyncapi import document

    reg = pubsubkit.EventRegistry()
    reg.register(EventCreated, "eventCreated")
    broker = pubsubkit.Broker(transport, pubsubkit.Codec(reg), None)
    listener = broker.listener("raw")
    listener.add_handler(EventCreated, lambda e, m: None)
    doc = document("sqs app", broker=broker, emits=[EventCreated], listeners=[listener], registry=reg)
    spec = json.loads((Path(__file__).resolve().parents[3] / "tests/asyncapi/asyncapi-3.0.0.schema.json").read_text())
    assert [e.message for e in jsonschema_rs.validator_for(spec).iter_errors(doc)] == []
    [channel] = doc["channels"].values()
    assert channel["address"] == transport.options.topic_name
    assert sorted(doc["operations"]) == ["eventCreated.send", "raw.eventCreated.receive"]

    transport.consumer("raw", None).close()  # the group's queue, subscribed to the topic
    broker.emitter().emit(EventCreated("e3", "Folk"), key="e3")
    queue = transport.aws.group("raw").url
    messages: list[dict[str, Any]] = []
    wait_until(
        lambda: (
            messages.extend(
                sqs_client.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=1).get(
                    "Messages", []
                )
            )
            or messages
        )
    )
    message = doc["components"]["messages"]["eventCreated"]
    schema = {**message["payload"], "components": doc["components"]}
    jsonschema_rs.Draft7Validator(schema).validate(orjson.loads(messages[0]["Body"]))
    assert set(messages[0]["MessageAttributes"]) <= set(message["headers"]["properties"])
