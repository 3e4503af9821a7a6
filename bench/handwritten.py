"""The hand-written service: what a team writes on the raw client, without a library, to send and handle the same
event with the same guarantee.

It is the second baseline, next to the raw-bytes clients of :mod:`bench.brokers` (the limit): the event goes out as
orjson of its fields under their wire names, with a unique id (uuid4), the time and the event name in headers or
properties; the consumer decodes each message back into the same attrs class, calls a handler and acknowledges
after it returned. Nothing else: no envelope, no retries, no dead letters, no metrics.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.brokers import (
    BATCH,
    QUEUE_ARGS,
    SCENARIO,
    kafka_create_topic,
    kafka_delete_topic,
    kafka_group_consumer,
    rabbit_consume,
    rabbit_declare,
)
from bench.common import Row, Ticket, guarded, progress, rate_row, run_name, ticket

__all__ = ["CLIENT", "from_wire", "handwritten_rows", "to_wire"]

CLIENT = "hand-written"


def to_wire(t: Ticket) -> bytes:
    """The event's JSON with the wire names, as a team writes it by hand."""
    return orjson.dumps(
        {
            "id": t.id,
            "eventId": t.event_id,
            "userId": t.user_id,
            "seats": t.seats,
            "priceCents": t.price_cents,
            "tags": t.tags,
            "note": t.note,
        }
    )


def from_wire(data: bytes) -> Ticket:
    """The event back from its JSON."""
    d = orjson.loads(data)
    return Ticket(d["id"], d["eventId"], d["userId"], d["seats"], d["priceCents"], d["tags"], d["note"])


def now_text() -> str:
    return datetime.now(UTC).isoformat()


class Handled:
    """The hand-written handler: counts the events it got."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Ticket) -> None:
        self.count += 1


# --- Kafka -----------------------------------------------------------------------------------------------------


def _kafka_emit(producer: Any, topic: str, events: list[Ticket], flush_every: int, timeout: float) -> float:
    failed: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(err)

    start = time.perf_counter()
    for i, ev in enumerate(events):
        headers = [("id", str(uuid.uuid4()).encode()), ("time", now_text().encode()), ("name", b"benchTicket")]
        while True:
            try:
                producer.produce(topic, to_wire(ev), key=f"k{i % 100}".encode(), headers=headers, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        if (i + 1) % flush_every == 0:
            producer.flush(timeout)
    producer.flush(timeout)
    seconds = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{len(failed)} deliveries failed: {failed[0]}")
    return seconds


def kafka_handwritten(n: int, timeout: float) -> list[Row]:
    """Idempotent acks=all producer (confirmed per 100, and all at once), then a consumer decoding each record
    and committing synchronously after each handled batch."""
    from confluent_kafka import Producer

    from bench.common import kafka_bootstrap

    topic, other = run_name("hand"), run_name("handall")
    kafka_create_topic(topic)
    kafka_create_topic(other)
    events = [ticket(i) for i in range(n)]
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap(), "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    producer.produce(topic, b"{}", key=b"warm-up")  # started before the clock, as every client
    producer.flush(timeout)
    rows = [
        rate_row(
            SCENARIO,
            "kafka",
            CLIENT,
            f"emit acks=all, flush per {BATCH}",
            n,
            _kafka_emit(producer, topic, events, BATCH, timeout),
        ),
        rate_row(
            SCENARIO,
            "kafka",
            CLIENT,
            "emit acks=all, flush at the end",
            n,
            _kafka_emit(producer, other, events, n, timeout),
        ),
    ]
    kafka_delete_topic(other)
    rows.append(_kafka_consume(topic, n, timeout))
    kafka_delete_topic(topic)
    return rows


def _kafka_consume(topic: str, n: int, timeout: float) -> Row:
    """A new group reads ``topic`` from its start, decoding each record and committing after each batch."""
    consumer = kafka_group_consumer(topic, "handgroup")
    handle = Handled()
    got, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout
    while got < n and time.monotonic() < deadline:
        asked = time.perf_counter()
        batch = consumer.consume(num_messages=500, timeout=0.5)
        msgs = [m for m in batch if m.error() is None and m.key() != b"warm-up"]
        if not msgs:
            continue
        if got == 0:
            first = asked
        for m in msgs:
            headers = dict(m.headers() or ())
            if headers.get("name") == b"benchTicket":
                handle(from_wire(m.value()))
        got += len(msgs)
        consumer.commit(asynchronous=False)
        last = time.perf_counter()
    consumer.close()
    if handle.count < n:
        raise TimeoutError(f"consumed {handle.count} of {n} in {timeout:.0f} s")
    return rate_row(SCENARIO, "kafka", CLIENT, "consume decode, commit per batch", got, max(1e-9, last - first))


# --- RabbitMQ --------------------------------------------------------------------------------------------------


def _rabbit_consume(conn: Any, queue: str, n: int, timeout: float) -> Row:
    """A manual-ack consumer of ``queue`` decoding each message, prefetch 100."""
    handle = Handled()
    state = {"first": 0.0, "last": 0.0}

    def on_message(c: Any, method: Any, properties: Any, data: bytes) -> None:
        if properties.type == "benchTicket":
            handle(from_wire(data))
        c.basic_ack(method.delivery_tag)
        state["last"] = time.perf_counter()
        if handle.count >= n:
            c.stop_consuming()

    state["first"] = time.perf_counter()
    rabbit_consume(conn, queue, on_message, timeout)
    if handle.count < n:
        raise TimeoutError(f"consumed {handle.count} of {n} in {timeout:.0f} s")
    seconds = state["last"] - state["first"]
    return rate_row(SCENARIO, "rabbitmq", CLIENT, "consume decode, manual ack prefetch 100", n, seconds)


def rabbit_handwritten(n_sync: int, n: int, timeout: float) -> list[Row]:
    """pika: persistent messages with id, time and type properties, publisher confirms (the blocking channel's,
    one at a time); then a manual-ack consumer decoding each message, prefetch 100."""
    import pika

    from bench.common import amqp_url

    exchange, queue = run_name("hand"), run_name("handq")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    rows: list[Row] = []
    try:
        ch = conn.channel()
        rabbit_declare(ch, exchange, queue)
        ch.confirm_delivery()
        events = [ticket(i) for i in range(n_sync)]
        start = time.perf_counter()
        for i, ev in enumerate(events):
            props = pika.BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                message_id=str(uuid.uuid4()),
                timestamp=int(time.time()),
                type="benchTicket",
            )
            ch.basic_publish(exchange, f"k{i % 100}", to_wire(ev), props)
        rows.append(
            rate_row(SCENARIO, "rabbitmq", CLIENT, "emit persistent confirm sync", n_sync, time.perf_counter() - start)
        )
        plain = conn.channel()  # more messages for the consume, unconfirmed: the emit was measured above
        for i in range(n - n_sync):
            props = pika.BasicProperties(delivery_mode=2, message_id=str(uuid.uuid4()), type="benchTicket")
            plain.basic_publish(exchange, f"k{i % 100}", to_wire(ticket(i)), props)
        plain.queue_declare(queue, durable=True, arguments=QUEUE_ARGS)

        rows.append(_rabbit_consume(conn, queue, n, timeout))
        ch.exchange_delete(exchange)
        ch.queue_delete(queue)
    finally:
        conn.close()
    return rows


# --- SQS -------------------------------------------------------------------------------------------------------


def sqs_handwritten(n: int, timeout: float, rounds_of: int = 200) -> list[Row]:
    """boto3: batch send (10 a call) with id, time and name attributes; receive, decode, batch delete. In rounds of
    ``rounds_of``, as the raw client (the emulator slows as a queue fills)."""
    import boto3

    from bench.common import aws_endpoint, aws_env

    aws_env()
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint(), region_name="us-east-1")
    url = sqs.create_queue(QueueName=run_name("hand"))["QueueUrl"]
    handle = Handled()
    sent_s = recv_s = 0.0
    sent = 0
    deadline = time.monotonic() + timeout
    try:
        while sent < n and time.monotonic() < deadline:
            size = min(rounds_of, n - sent)
            start = time.perf_counter()
            for j in range(sent, sent + size, 10):
                entries = [
                    {
                        "Id": str(k),
                        "MessageBody": to_wire(ticket(j + k)).decode(),
                        "MessageAttributes": {
                            "id": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                            "time": {"DataType": "String", "StringValue": now_text()},
                            "name": {"DataType": "String", "StringValue": "benchTicket"},
                        },
                    }
                    for k in range(min(10, sent + size - j))
                ]
                if sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed"):
                    raise RuntimeError("send failed")
            sent_s += time.perf_counter() - start
            sent += size
            start = time.perf_counter()
            while handle.count < sent and time.monotonic() < deadline:
                msgs = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
                ).get("Messages", [])
                for m in msgs:
                    if m["MessageAttributes"]["name"]["StringValue"] == "benchTicket":
                        handle(from_wire(m["Body"].encode()))
                if msgs:
                    entries = [{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(msgs)]
                    sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            recv_s += time.perf_counter() - start
    finally:
        sqs.delete_queue(QueueUrl=url)
    if handle.count < n:
        raise TimeoutError(f"consumed {handle.count} of {n} in {timeout:.0f} s")
    return [
        rate_row(SCENARIO, "sqs", CLIENT, "emit batch 10", sent, sent_s),
        rate_row(SCENARIO, "sqs", CLIENT, "consume decode, receive+delete batch", handle.count, recv_s),
    ]


HANDWRITTEN = {
    "kafka": kafka_handwritten,
    "rabbitmq": lambda n, timeout: rabbit_handwritten(max(200, n // 10), n, timeout),
    "sqs": sqs_handwritten,
}


def handwritten_rows(backend: str, n: int, timeout: float) -> list[Row]:
    """The hand-written service's rows for a broker (an error becomes a skipped row)."""
    progress(f"{backend}: hand-written service, {n} messages")
    return guarded(SCENARIO, backend, CLIENT, "all", lambda: HANDWRITTEN[backend](n, timeout))
