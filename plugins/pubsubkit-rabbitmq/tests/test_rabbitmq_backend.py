"""The RabbitMQ backend's own behaviour: options, unroutable messages, delivery counts, dead-letter queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pubsubkit_rabbitmq import RabbitTransport, Unroutable
from rabbitmq_support import raw_channel, with_query

import pubsubkit
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.testing import Collector, EventKit, unique_name, wait_until
from pubsubkit.transport import DeadLetter, Delivery


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


@pytest.fixture
def url(amqp_url: str) -> str:
    # No archive: these cases are about a group's own queue (and unroutable messages, which the archive takes).
    return with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300", archive="false")


@pytest.fixture
def broker(url: str, kit: EventKit) -> Iterator[pubsubkit.Broker]:
    b = pubsubkit.open_broker(url, codec=kit.codec)
    yield b
    b.close()


def receive(consumer: pubsubkit.plugin.Consumer, count: int) -> list[Delivery]:
    got: list[Delivery] = []

    def enough() -> bool:
        got.extend(consumer.receive(count - len(got), 0.05))
        return len(got) >= count

    wait_until(enough, 30, f"{count} deliveries", interval=0)
    return got


def test_options_from_query_and_keywords() -> None:
    t = RabbitTransport("amqp://u:p@localhost:5673/vh?exchange=bus&prefetch=7&heartbeat=11", queue_type="classic")
    try:
        s = t.settings
        assert (s.exchange, s.prefetch, s.queue_type, s.mandatory) == ("bus", 7, "classic", True)
        assert (s.params.heartbeat, s.params.port, s.params.virtual_host) == (11, 5673, "vh")
        assert (s.queue("g"), s.dead_letter_queue("g"), s.dead_letter_exchange) == ("bus.g", "bus.g.dlq", "bus.dlx")
    finally:
        t.close()


@pytest.mark.parametrize(
    ("url", "options", "named"),
    [
        ("amqp://localhost/%2F", {"exchnage": "x"}, "exchnage"),
        ("amqp://localhost/%2F?queue_type=stream", {}, "queue_type"),
        ("amqp://localhost/%2F?prefetch=none", {}, "prefetch"),
        ("amqp://localhost/%2F?mandatory=maybe", {}, "mandatory"),
        ("amqp://localhost/%2F?unroutable=maybe", {}, "unroutable"),
        ("amqp://localhost/%2F?hearbeat=3", {}, "hearbeat"),
        ("amqp://localhost/%2F", {"missing_id": "random"}, "missing_id"),
    ],
)
def test_wrong_options_are_named(url: str, options: dict[str, str], named: str) -> None:
    with pytest.raises(pubsubkit.ConfigError, match=named):
        pubsubkit.open_broker(url, **options)


def test_unreachable_server_is_a_lost_connection() -> None:
    with pubsubkit.open_broker("amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1") as broker:
        with pytest.raises(pubsubkit.ConnectionLost):
            broker.ping()
        with pytest.raises(pubsubkit.ConnectionLost):
            broker.transport.publish([Envelope(id=new_id(), name="x", payload=b"{}")])
        with pytest.raises(pubsubkit.ConnectionLost):
            broker.transport.consumer("g", None)


def test_an_unroutable_message_is_logged_by_default(
    broker: pubsubkit.Broker, kit: EventKit, caplog: pytest.LogCaptureFixture
) -> None:
    ping = kit.event_type()
    with caplog.at_level("WARNING", logger="pubsubkit.rabbitmq"):
        broker.emitter().emit(ping(n=1))  # nobody listens to it yet: no error in publish/subscribe
    assert any("no queue is bound" in r.getMessage() for r in caplog.records)


def test_an_unroutable_message_is_a_publish_error_when_asked(url: str, kit: EventKit) -> None:
    with pubsubkit.open_broker(url, codec=kit.codec, unroutable="fail") as broker:
        ping = kit.event_type()
        with pytest.raises(Unroutable, match="no queue is bound") as info:
            broker.emitter().emit(ping(n=1))
        assert isinstance(info.value, pubsubkit.PublishError)
        # Others of the same batch that were routed are stored, once: the emitter does not publish the batch again.
        consumer = broker.transport.consumer(kit.name("g"), [kit.name("bound")])
        try:
            bound = kit.event_type("bound")
            with pytest.raises(Unroutable):
                broker.emitter().emit_many([bound(n=1), ping(n=2), bound(n=3)])
            assert [d.envelope.name for d in receive(consumer, 2) if d.envelope] == [kit.name("bound")] * 2
            assert consumer.receive(10, 0.3) == []
        finally:
            consumer.close()
        with pubsubkit.open_broker(url, codec=kit.codec, mandatory="false") as lenient:
            lenient.emitter(retry_for=0).emit(ping(n=3))  # dropped by the broker, as asked


def test_delivery_count_and_release(broker: pubsubkit.Broker, kit: EventKit) -> None:
    """A released message comes back with its attempt counted by the quorum queue."""
    ping = kit.event_type()
    consumer = broker.transport.consumer(kit.name("g"), None)
    try:
        env = broker.emitter().emit(ping(n=1))
        [first] = receive(consumer, 1)
        assert first.attempt == 1
        consumer.release([first])
        [again] = receive(consumer, 1)
        assert again.envelope is not None
        assert again.envelope.id == env.id
        assert again.attempt == 2
        consumer.ack([again])
        assert consumer.receive(10, 0.2) == []
    finally:
        consumer.close()


def test_classic_queues(amqp_url: str, url: str, kit: EventKit) -> None:
    ping = kit.event_type()
    with pubsubkit.open_broker(url, codec=kit.codec, queue_type="classic") as broker:
        consumer = broker.transport.consumer(kit.name("g"), None)
        try:
            env = broker.emitter().emit(ping(n=1))
            [first] = receive(consumer, 1)
            consumer.release([first])
            [again] = receive(consumer, 1)
            assert again.envelope is not None
            assert again.envelope.id == env.id
            assert again.attempt == 2  # from the redelivered flag
            consumer.ack([again])
        finally:
            consumer.close()
        with raw_channel(amqp_url) as ch:
            ch.queue_declare(f"{broker.transport.settings.exchange}.{kit.name('g')}", passive=True)


def test_a_queue_of_another_type_is_a_config_error(url: str, kit: EventKit) -> None:
    group = kit.name("g")
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        broker.transport.consumer(group, None).close()
    with (
        pubsubkit.open_broker(url, codec=kit.codec, queue_type="classic") as broker,
        pytest.raises(pubsubkit.ConfigError, match=f"it is a quorum queue: set queue_type.{group}=quorum"),
    ):
        broker.transport.consumer(group, None)


def test_dead_letter_queue_is_readable_by_any_client(
    amqp_url: str, url: str, broker: pubsubkit.Broker, kit: EventKit
) -> None:
    """A dead letter keeps the original message and says why in headers; it can be listed and replayed."""
    ping = kit.event_type()
    group = kit.name("g")
    consumer = broker.transport.consumer(group, None)
    try:
        env = broker.emitter().emit(ping(n=1), key="k")
        [d] = receive(consumer, 1)
        consumer.dead_letter(d, DeadLetter(group, "failed", "Boom: it broke", 3, env.name, d.envelope))
        assert consumer.receive(10, 0.2) == []
    finally:
        consumer.close()
    [letter] = broker.transport.dead_letters(group)
    assert (letter.reason, letter.error, letter.attempts, letter.original_name) == (
        "failed",
        "Boom: it broke",
        3,
        env.name,
    )
    assert letter.envelope is not None
    assert letter.envelope.id == env.id
    assert letter.envelope.key == "k"
    assert letter.id is not None
    assert letter.id.startswith(f"{group}/")
    assert broker.transport.dead_letters(group) == [letter], "listing took the letter away"
    with pubsubkit.open_broker(url, codec=kit.codec) as other:  # a process that never joined the group
        assert other.transport.dead_letters() == [letter], "listed without naming the group"
    with raw_channel(amqp_url) as ch:
        method, props, body = ch.basic_get(broker.transport.settings.dead_letter_queue(group), auto_ack=False)
        assert method is not None
        assert body == env.payload
        assert props.headers["x-pubsubkit-dl-reason"] == "failed"
        assert props.headers["x-event-name"] == env.name
    with pytest.raises(pubsubkit.NotFound):
        broker.transport.replay_dead_letter(f"{group}/{new_id()}")
    got = Collector()
    listener = broker.listener(group, poll_interval=0.05)
    listener.add_handler(ping, got)
    listener.start()
    assert listener.wait_ready(30)
    broker.transport.replay_dead_letter(letter.id)
    got.wait_for([env.id])
    listener.close(timeout=30)
    assert broker.transport.dead_letters(group) == []


def test_a_member_takes_no_more_ahead_than_its_max_in_flight(
    broker: pubsubkit.Broker, kit: EventKit, amqp_url: str
) -> None:
    """A listener's ``max_in_flight`` below ``prefetch`` bounds what the broker sends it ahead: the rest stay
    in the group's queue, for a member that joins later."""
    ping = kit.event_type()
    group = kit.name("g")
    gate, calls = threading.Event(), []
    handled = Collector(effect=lambda event, msg: calls.append(msg) or gate.wait(60))
    listener = broker.listener(group, max_in_flight=2, concurrency=1, poll_interval=0.05)
    listener.add_handler(ping, handled)
    listener.start()
    try:
        assert listener.wait_ready(30), "the listener did not join its group"
        sent = broker.emitter().emit_many([ping(n=i) for i in range(20)])
        wait_until(lambda: calls, 30, "the first message to be handled")
        queue = broker.transport.settings.queue(group)  # type: ignore[attr-defined]
        with raw_channel(amqp_url) as ch:
            ready = lambda: ch.queue_declare(queue, passive=True).method.message_count  # noqa: E731
            wait_until(lambda: ready() == 18, 30, lambda: f"18 messages ready in {queue} (now {ready()})", 0.1)
            assert len(calls) == 1, "the handler was called again while it blocks (concurrency=1)"
        gate.set()
        handled.wait_for([e.id for e in sent])
    finally:
        gate.set()
        listener.close(timeout=30)
