"""The peers, at the same guarantee as pubsubkit: FastStream (Kafka through confluent-kafka, RabbitMQ through
aio-pika) and Kombu (AMQP through py-amqp).

Each peer publishes persistent (Kafka: idempotent, ``acks=all``) messages and waits for the broker's
confirmation: FastStream with 100 publishes in flight (``asyncio.gather``), Kombu one at a time (its
``confirm_publish`` transport option). Each consumes with an acknowledgement after the handler returned
(FastStream's ``AckPolicy.ACK``; Kombu's ``message.ack()`` with a prefetch of 100).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.brokers import QUEUE_ARGS, SCENARIO, kafka_create_topic, kafka_delete_topic, rabbit_declare
from bench.common import Row, amqp_url, guarded, kafka_bootstrap, payload, progress, rate_row, run_name

IN_FLIGHT = 100


async def _publish_all(publish: Any, n: int) -> float:
    start = time.perf_counter()
    for i in range(0, n, IN_FLIGHT):
        await asyncio.gather(*(publish(j) for j in range(i, min(n, i + IN_FLIGHT))))
    return time.perf_counter() - start


class _Count:
    def __init__(self, n: int) -> None:
        self.n, self.got, self.first, self.last = n, 0, 0.0, 0.0
        self.done = asyncio.Event()

    def hit(self) -> None:
        now = time.perf_counter()
        if self.got == 0:
            self.first = now
        self.got += 1
        self.last = now
        if self.got >= self.n:
            self.done.set()

    def row(self, backend: str, client: str, case: str) -> Row:
        return rate_row(SCENARIO, backend, client, case, max(0, self.got - 1), max(1e-9, self.last - self.first))


async def _faststream_kafka(n: int, timeout: float) -> list[Row]:
    from faststream import AckPolicy
    from faststream.confluent import KafkaBroker

    topic = run_name("fs")
    kafka_create_topic(topic)
    body = payload()
    producer = KafkaBroker(kafka_bootstrap(), enable_idempotence=True, acks="all", logger=None)
    async with producer:
        await producer.start()
        await producer.publish(body, topic, key="warm-up")  # started before the clock, as pubsubkit
        seconds = await _publish_all(
            lambda i: producer.publish(body, topic, key=f"k{i % 100}", headers={"content-type": "application/json"}),
            n,
        )
    rows = [rate_row(SCENARIO, "kafka", "faststream", "emit idempotent acks=all", n, seconds)]

    count = _Count(n)
    consumer = KafkaBroker(kafka_bootstrap(), logger=None)

    @consumer.subscriber(
        topic,
        group_id=run_name("fsgroup"),
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        ack_policy=AckPolicy.ACK,
    )
    async def handle(msg: Any) -> None:
        count.hit()

    async with consumer:
        await consumer.start()
        await asyncio.wait_for(count.done.wait(), timeout)
    kafka_delete_topic(topic)
    rows.append(count.row("kafka", "faststream", "consume ack-after"))
    return rows


async def _faststream_rabbit(n: int, timeout: float) -> list[Row]:
    import pika
    from faststream import AckPolicy
    from faststream.rabbit import Channel, ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

    exchange, queue = run_name("fs"), run_name("fsq")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    rabbit_declare(conn.channel(), exchange, queue)
    body = payload()
    ex = RabbitExchange(exchange, type=ExchangeType.TOPIC, durable=True)
    producer = RabbitBroker(amqp_url(), logger=None)
    try:
        async with producer:
            await producer.start()
            seconds = await _publish_all(
                lambda i: producer.publish(body, exchange=ex, routing_key=f"k{i % 100}", persist=True), n
            )
        rows = [rate_row(SCENARIO, "rabbitmq", "faststream", f"emit persistent {IN_FLIGHT} confirms", n, seconds)]

        count = _Count(n)
        consumer = RabbitBroker(amqp_url(), logger=None, default_channel=Channel(prefetch_count=100))

        @consumer.subscriber(
            RabbitQueue(queue, QueueType.QUORUM, durable=True, routing_key="#"), ex, ack_policy=AckPolicy.ACK
        )
        async def handle(msg: Any) -> None:
            count.hit()

        async with consumer:
            await consumer.start()
            await asyncio.wait_for(count.done.wait(), timeout)
        rows.append(count.row("rabbitmq", "faststream", "consume ack-after prefetch 100"))
    finally:
        ch = conn.channel()
        ch.queue_delete(queue)
        ch.exchange_delete(exchange)
        conn.close()
    return rows


def faststream_rows(backend: str, n: int, timeout: float) -> list[Row]:
    """FastStream's rows for ``kafka`` or ``rabbitmq``."""
    progress(f"{backend}: FastStream, {n} messages")
    fn = {"kafka": _faststream_kafka, "rabbitmq": _faststream_rabbit}[backend]
    return guarded(SCENARIO, backend, "faststream", "all", lambda: asyncio.run(fn(n, timeout)))


def _kombu_consume(conn: Any, q: Any, n: int, timeout: float) -> Row:
    """Kombu: consume ``n`` messages of ``q``, acknowledging each after its callback, prefetch 100."""
    state = {"got": 0, "first": 0.0, "last": 0.0}

    def on_message(data: Any, message: Any) -> None:
        now = time.perf_counter()
        if state["got"] == 0:
            state["first"] = now
        state["got"] += 1
        message.ack()
        state["last"] = time.perf_counter()

    with conn.Consumer([q], callbacks=[on_message], prefetch_count=100, accept=["json"]):
        deadline = time.monotonic() + timeout
        while state["got"] < n and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                continue
    if state["got"] < n:
        raise TimeoutError(f"consumed {state['got']} of {n} in {timeout:.0f} s")
    got, seconds = int(state["got"]) - 1, state["last"] - state["first"]
    return rate_row(SCENARIO, "rabbitmq", "kombu", "consume ack-after prefetch 100", got, seconds)


def _kombu(n_sync: int, n: int, timeout: float) -> list[Row]:
    """Kombu: persistent messages with publisher confirms, then a consumer acknowledging after its callback."""
    import kombu
    import pika

    exchange, queue = run_name("kombu"), run_name("kombuq")
    pconn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    rabbit_declare(pconn.channel(), exchange, queue)
    body = payload()
    ex = kombu.Exchange(exchange, type="topic", durable=True)
    q = kombu.Queue(queue, ex, routing_key="#", durable=True, queue_arguments=QUEUE_ARGS)
    rows: list[Row] = []
    try:
        with kombu.Connection(amqp_url(), transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            start = time.perf_counter()
            for i in range(n_sync):
                producer.publish(
                    body,
                    exchange=ex,
                    routing_key=f"k{i % 100}",
                    delivery_mode=2,
                    content_type="application/json",
                    content_encoding="utf-8",
                )
            rows.append(
                rate_row(
                    SCENARIO, "rabbitmq", "kombu", "emit persistent confirm sync", n_sync, time.perf_counter() - start
                )
            )
        pconn.channel().queue_purge(queue)
        with kombu.Connection(amqp_url()) as conn:
            producer = conn.Producer()
            for i in range(n):
                producer.publish(
                    body,
                    exchange=ex,
                    routing_key=f"k{i % 100}",
                    delivery_mode=2,
                    content_type="application/json",
                    content_encoding="utf-8",
                )
            rows.append(_kombu_consume(conn, q, n, timeout))
    finally:
        ch = pconn.channel()
        ch.queue_delete(queue)
        ch.exchange_delete(exchange)
        pconn.close()
    return rows


def kombu_rows(n: int, timeout: float) -> list[Row]:
    """Kombu's rows on RabbitMQ."""
    progress(f"rabbitmq: Kombu, {n} messages")
    return guarded(SCENARIO, "rabbitmq", "kombu", "all", lambda: _kombu(max(200, n // 10), n, timeout))
