"""Broker throughput: pubsubkit through its public API on any URL, and the raw clients with the same guarantees.

pubsubkit's side knows nothing of the broker: it opens ``open_broker(url)``, emits confirmed batches with
``emit_many`` (and one event per ``emit`` for reference) and consumes with a listener that acknowledges after
its handler returned. The raw side is what a careful hand-written client does: confluent-kafka's idempotent
``acks=all`` producer flushed at the end and a consumer committing once per batch; pika with persistent
messages and publisher confirms (one at a time, and unconfirmed for reference), consuming with manual acks
and a prefetch of 100; boto3's SQS batch send and receive + batch delete.

Consume rates count from the first message received to the last, so a consumer group's join is left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pubsubkit
from bench.common import Row, Ticket, WarmUp, guarded, payload, progress, rate_row, run_name, skip_row, ticket

SCENARIO = "brokers"
BATCH = 100


# --- pubsubkit, generic ----------------------------------------------------------------------------------------


def pubsubkit_emit(broker: pubsubkit.Broker, n: int, batch: int = BATCH) -> float:
    """Emit ``n`` events in confirmed batches of ``batch``; seconds taken."""
    emitter = broker.emitter()
    events = [(ticket(i), f"k{i % 100}") for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, batch):
        emitter.emit_many(events[i : i + batch])
    return time.perf_counter() - start


def pubsubkit_emit_one(broker: pubsubkit.Broker, n: int) -> float:
    """Emit ``n`` events one confirmed ``emit`` at a time; seconds taken."""
    emitter = broker.emitter()
    events = [ticket(i) for i in range(n)]
    start = time.perf_counter()
    for i, ev in enumerate(events):
        emitter.emit(ev, key=f"k{i % 100}")
    return time.perf_counter() - start


class Counter:
    """A handler that counts and notes the time of the first and the last message; waits for a gate first.

    ``round_first`` is the time of the first message handled since the last :meth:`until`.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first = 0.0
        self.round_first = 0.0
        self.last = 0.0
        self.done = threading.Event()
        self.gate = threading.Event()
        self.target = n
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: Any, msg: Any = None) -> None:
        self.gate.wait()
        with self._lock:
            now = time.perf_counter()
            if self.count == 0:
                self.first = now
            if not self.round_first:
                self.round_first = now
            self.count += 1
            self.last = now
            if self.count >= self.n:
                self.done.set()
            if self.count >= self.target:
                self.reached.set()

    def until(self, target: int) -> threading.Event:
        """An event set once ``target`` messages were handled in all."""
        with self._lock:
            self.target = target
            self.round_first = 0.0
            self.reached.clear()
            if self.count >= target:
                self.reached.set()
        return self.reached


#: The largest batch of the batch-handler consume.
BATCH_MAX = 500


class BatchCounter:
    """A batch handler that counts; waits for a gate first. The clock runs from the start of the first batch
    (after the gate) to the end of the last."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.gate = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, events: list[Any], batch: Any) -> None:
        self.gate.wait()
        with self._lock:
            now = time.perf_counter()
            if not self.first:
                self.first = now
            self.count += sum(1 for e in events if isinstance(e, Ticket))
            self.last = now
            if self.count >= self.n:
                self.done.set()


def pubsubkit_roundtrip(backend: str, url: str, n: int, timeout: float, rounds_of: int | None = None) -> list[Row]:
    """Join a fresh group, emit ``n`` events, then consume them with ack-after-handler; rows for both.

    With ``rounds_of``, emit and consume alternate by rounds of that many events (for the SQS emulator, which
    slows down as a queue fills), and the times of the rounds are added up.
    """
    broker = pubsubkit.open_broker(url)
    rows: list[Row] = []
    step = rounds_of or n
    try:
        counter = Counter(n)
        listener = broker.listener(run_name("group"), poll_interval=0.05)
        listener.add_handler(Ticket, counter)
        listener.start()
        if not listener.wait_ready(timeout):
            raise TimeoutError("the listener did not join its group")
        # A second group handles the same events with a batch handler, once the first has consumed them.
        batches = None if rounds_of else BatchCounter(n)
        batch_listener = None if batches is None else _batch_listener(broker, batches, timeout)
        broker.emitter().emit(WarmUp())  # the producer's start is not throughput: the raw clients warm up too
        emit_s = consume_s = 0.0
        deadline = time.monotonic() + timeout
        for sent in range(step, n + step, step):
            sent = min(sent, n)
            counter.gate.clear()
            emit_s += pubsubkit_emit(broker, sent - (sent - 1) // step * step)
            reached = counter.until(sent)
            start = time.perf_counter()
            counter.gate.set()
            reached.wait(max(0.0, deadline - time.monotonic()))
            # The clock starts at the first message handled, as for the raw clients and the peers: a Kafka
            # listener joins its group at its first receive, and the group's join can outlast the emit.
            start = max(start, counter.round_first or start)
            consume_s += (counter.last if reached.is_set() else time.perf_counter()) - start
        listener.close()
        rows.append(rate_row(SCENARIO, backend, "pubsubkit", f"emit batch {BATCH} confirmed", n, emit_s))
        if counter.count < n:
            raise TimeoutError(f"consumed {counter.count} of {n} in {timeout:.0f} s")
        rows.append(rate_row(SCENARIO, backend, "pubsubkit", "consume ack-after", counter.count, consume_s))
        if batches is not None and batch_listener is not None:
            batches.gate.set()
            batches.done.wait(timeout)
            batch_listener.close()
            if batches.count < n:
                raise TimeoutError(f"batch handler consumed {batches.count} of {n} in {timeout:.0f} s")
            seconds = batches.last - batches.first
            rows.append(rate_row(SCENARIO, backend, "pubsubkit", f"consume batch handler {BATCH_MAX}", n, seconds))
        rows += _emit_rows(broker, backend, n)
    finally:
        broker.close()
    return rows


def _batch_listener(broker: pubsubkit.Broker, batches: BatchCounter, timeout: float) -> pubsubkit.Listener:
    """A started listener of a second group whose batch handler counts the same events."""
    listener = broker.listener(
        run_name("batch"), poll_interval=0.05, max_in_flight=BATCH_MAX * 2, batch_size=BATCH_MAX, concurrency=2
    )
    listener.add_batch_handler([Ticket], batches, max_size=BATCH_MAX, max_wait=0.05)
    listener.start()
    if not listener.wait_ready(timeout):
        raise TimeoutError("the batch listener did not join its group")
    return listener


def _emit_rows(broker: pubsubkit.Broker, backend: str, n: int) -> list[Row]:
    """One event per confirmed emit, and all ``n`` in one emit_many call."""
    one = max(50, n // 20)
    return [
        rate_row(SCENARIO, backend, "pubsubkit", "emit one confirmed", one, pubsubkit_emit_one(broker, one)),
        # The raw clients' best is one pipelined run confirmed at its end: the same with one emit_many call.
        rate_row(SCENARIO, backend, "pubsubkit", "emit all in one call confirmed", n, pubsubkit_emit(broker, n, n)),
    ]


def pubsubkit_rows(backend: str, url: str | None, reason: str | None, n: int, timeout: float) -> list[Row]:
    """The pubsubkit rows of a broker, or skipped rows saying why."""
    if url is None or reason is not None:
        why = reason or "skipped: plugin not installed"
        return [
            skip_row(SCENARIO, backend, "pubsubkit", case, why)
            for case in (
                f"emit batch {BATCH} confirmed",
                "consume ack-after",
                f"consume batch handler {BATCH_MAX}",
                "emit one confirmed",
                "emit all in one call confirmed",
            )
        ]
    rounds = 200 if backend == "sqs" else None
    return guarded(
        SCENARIO, backend, "pubsubkit", "roundtrip", lambda: pubsubkit_roundtrip(backend, url, n, timeout, rounds)
    )


# --- raw confluent-kafka ---------------------------------------------------------------------------------------


def kafka_delete_topic(topic: str) -> None:
    """Free the test broker's memory: it keeps every topic until it restarts."""
    from confluent_kafka.admin import AdminClient

    from bench.common import kafka_bootstrap

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap()})
    for fut in admin.delete_topics([topic]).values():
        fut.result(10)


def kafka_create_topic(topic: str, partitions: int = 4) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from bench.common import kafka_bootstrap

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap()})
    for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        fut.result(10)


def kafka_raw(n: int, timeout: float) -> list[Row]:
    """confluent-kafka: idempotent acks=all produce + flush, then consume committing once per batch."""
    from confluent_kafka import Producer

    from bench.common import kafka_bootstrap

    topic = run_name("raw")
    kafka_create_topic(topic)
    body = payload()
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap(), "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    failed: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(err)

    producer.produce(topic, body, key=b"warm-up", on_delivery=report)  # started before the clock, as pubsubkit
    producer.flush(timeout)
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, body, key=f"k{i % 100}".encode(), on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(timeout)
    seconds = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{len(failed)} deliveries failed: {failed[0]}")
    rows = [rate_row(SCENARIO, "kafka", "raw", "emit idempotent acks=all", n, seconds)]

    # For reference, the guarantee of pubsubkit's emit_many: each batch of BATCH confirmed before the next one.
    batched = run_name("rawbatch")
    kafka_create_topic(batched)
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        for j in range(i, min(n, i + BATCH)):
            producer.produce(batched, body, key=f"k{j % 100}".encode(), on_delivery=report)
        producer.flush(timeout)
    seconds = time.perf_counter() - start
    kafka_delete_topic(batched)
    if failed:
        raise RuntimeError(f"{len(failed)} deliveries failed: {failed[0]}")
    rows.append(rate_row(SCENARIO, "kafka", "raw", f"emit acks=all, flush per {BATCH}", n, seconds))
    rows.append(_kafka_raw_consume(topic, n, timeout))
    kafka_delete_topic(topic)
    return rows


def kafka_group_consumer(topic: str, group: str) -> Any:
    """A confluent-kafka consumer of a new group (``group`` and a run suffix) reading ``topic`` from its start,
    committing only when told."""
    from confluent_kafka import Consumer

    from bench.common import kafka_bootstrap

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap(),
            "group.id": run_name(group),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    return consumer


def _kafka_raw_consume(topic: str, n: int, timeout: float) -> Row:
    """confluent-kafka: a new group reads ``topic`` from its start, committing once per batch."""
    consumer = kafka_group_consumer(topic, "rawgroup")
    got, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout
    while got < n and time.monotonic() < deadline:
        asked = time.perf_counter()
        batch = consumer.consume(num_messages=500, timeout=0.5)
        msgs = [m for m in batch if m.error() is None]
        if not msgs:
            continue
        if got == 0:
            first = asked  # the fetch of the first batch counts, the group's join does not
        got += len(msgs)
        consumer.commit(asynchronous=False)
        last = time.perf_counter()
    consumer.close()
    if got < n:
        raise TimeoutError(f"consumed {got} of {n} in {timeout:.0f} s (was the server restarted?)")
    return rate_row(SCENARIO, "kafka", "raw", "consume commit per batch", got, max(1e-9, last - first))


# --- raw pika --------------------------------------------------------------------------------------------------


#: pubsubkit's RabbitMQ groups use quorum queues by default: the raw client and the peers use them too.
QUEUE_ARGS = {"x-queue-type": "quorum"}


def rabbit_declare(channel: Any, exchange: str, queue: str) -> None:
    """A durable topic exchange and a durable quorum queue bound to every routing key."""
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True, arguments=QUEUE_ARGS)
    channel.queue_bind(queue, exchange, routing_key="#")


def rabbit_consume(conn: Any, queue: str, on_message: Any, timeout: float) -> None:
    """pika: consume ``queue`` with a prefetch of 100 through ``on_message`` until it stops consuming, or for
    ``timeout`` seconds at most."""
    consumer = conn.channel()
    consumer.basic_qos(prefetch_count=100)
    consumer.basic_consume(queue, on_message, auto_ack=False)
    timer = conn.call_later(timeout, consumer.stop_consuming)
    consumer.start_consuming()
    conn.remove_timeout(timer)


def _rabbit_raw_consume(conn: Any, queue: str, n: int, timeout: float) -> Row:
    """pika: consume ``n`` messages of ``queue`` with a prefetch of 100, acknowledging each."""
    state = {"got": 0, "first": 0.0, "last": 0.0}

    def on_message(c: Any, method: Any, properties: Any, data: bytes) -> None:
        state["got"] += 1
        c.basic_ack(method.delivery_tag)
        state["last"] = time.perf_counter()
        if state["got"] >= n:
            c.stop_consuming()

    state["first"] = time.perf_counter()
    rabbit_consume(conn, queue, on_message, timeout)
    got = int(state["got"])
    if got < n:
        raise TimeoutError(f"consumed {got} of {n} in {timeout:.0f} s")
    return rate_row(SCENARIO, "rabbitmq", "raw", "consume manual ack prefetch 100", got, state["last"] - state["first"])


def rabbit_raw(n_sync: int, n: int, timeout: float) -> list[Row]:
    """pika: persistent messages with synchronous confirms, unconfirmed, and a manual-ack consumer."""
    import pika

    from bench.common import amqp_url

    exchange, queue = run_name("raw"), run_name("rawq")
    body = payload()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
    rows: list[Row] = []
    try:
        ch = conn.channel()
        rabbit_declare(ch, exchange, queue)
        ch.confirm_delivery()
        start = time.perf_counter()
        for i in range(n_sync):
            ch.basic_publish(exchange, f"k{i % 100}", body, props, mandatory=False)
        rows.append(
            rate_row(SCENARIO, "rabbitmq", "raw", "emit persistent confirm sync", n_sync, time.perf_counter() - start)
        )
        ch.queue_purge(queue)

        plain = conn.channel()
        start = time.perf_counter()
        for i in range(n):
            plain.basic_publish(exchange, f"k{i % 100}", body, props)
        plain.queue_declare(
            queue, durable=True, arguments=QUEUE_ARGS
        )  # one round trip: everything before it reached the server
        rows.append(
            rate_row(SCENARIO, "rabbitmq", "raw", "emit persistent unconfirmed", n, time.perf_counter() - start)
        )

        rows.append(_rabbit_raw_consume(conn, queue, n, timeout))
        ch.exchange_delete(exchange)
        ch.queue_delete(queue)
    finally:
        conn.close()
    return rows


# --- raw boto3 SQS ---------------------------------------------------------------------------------------------


def sqs_raw(n: int, timeout: float, threads: int = 1, rounds_of: int = 200) -> list[Row]:
    """boto3: batch send (10 a call) and receive (10 a call) + batch delete, from ``threads`` threads at once.

    The emulator slows as a queue fills, so messages are sent and received in rounds of ``rounds_of``.
    """
    import boto3

    from bench.common import aws_endpoint, aws_env

    aws_env()
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint(), region_name="us-east-1")  # boto3 clients are thread-safe
    url = sqs.create_queue(QueueName=run_name("raw"))["QueueUrl"]
    body = payload().decode()
    sent_s = recv_s = 0.0
    sent = got = 0
    lock = threading.Lock()
    deadline = time.monotonic() + timeout

    def send(first: int, count: int) -> None:
        entries = [{"Id": str(k), "MessageBody": body, "MessageAttributes": _attrs(first + k)} for k in range(count)]
        out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if out.get("Failed"):
            raise RuntimeError(f"send failed: {out['Failed'][0]}")

    def receive(until: int) -> None:
        nonlocal got
        while got < until and time.monotonic() < deadline:
            msgs = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if msgs:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(msgs)],
                )
                with lock:
                    got += len(msgs)

    with ThreadPoolExecutor(threads) as pool:
        try:
            while sent < n and time.monotonic() < deadline:
                size = min(rounds_of, n - sent)
                start = time.perf_counter()
                calls = [(sent + j, min(10, size - j)) for j in range(0, size, 10)]
                list(pool.map(lambda call: send(*call), calls))
                sent_s += time.perf_counter() - start
                sent += size
                start = time.perf_counter()
                list(pool.map(receive, [sent] * threads))
                recv_s += time.perf_counter() - start
        finally:
            sqs.delete_queue(QueueUrl=url)
    if got < n:
        raise TimeoutError(f"consumed {got} of {n} in {timeout:.0f} s")
    how = "" if threads == 1 else f", {threads} threads"
    return [
        rate_row(SCENARIO, "sqs", "raw", f"emit batch 10{how}", sent, sent_s),
        rate_row(SCENARIO, "sqs", "raw", f"consume receive+delete batch{how}", got, recv_s),
    ]


def _attrs(i: int) -> dict[str, Any]:
    return {
        "name": {"DataType": "String", "StringValue": "benchTicket"},
        "key": {"DataType": "String", "StringValue": f"k{i % 100}"},
    }


RAW: dict[str, Callable[[int, float], list[Row]]] = {
    "kafka": kafka_raw,
    "rabbitmq": lambda n, timeout: rabbit_raw(max(200, n // 10), n, timeout),
    "sqs": lambda n, timeout: sqs_raw(n, timeout) + sqs_raw(n, timeout, threads=4),
}


def raw_rows(backend: str, n: int, timeout: float) -> list[Row]:
    """The raw client's rows for a broker (an error becomes a skipped row)."""
    progress(f"{backend}: raw client, {n} messages")
    return guarded(SCENARIO, backend, "raw", "all", lambda: RAW[backend](n, timeout))
