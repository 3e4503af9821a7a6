"""The archive of the RabbitMQ backend: a group that stops half-way through it resumes, a reset is refused
while the group has members, and an archive declared otherwise is named with its options."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pubsubkit_rabbitmq import QueueMismatch
from rabbitmq_support import raw_channel, with_query

import pubsubkit
from pubsubkit.errors import ConfigError
from pubsubkit.testing import EventKit, unique_name, wait_until
from pubsubkit.transport import Consumer, Delivery

pytestmark = pytest.mark.usefixtures("amqp_url")


@pytest.fixture
def url(amqp_url: str) -> str:
    return with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300")


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


@pytest.fixture
def broker(url: str, kit: EventKit) -> Iterator[pubsubkit.Broker]:
    b = pubsubkit.open_broker(url, codec=kit.codec)
    yield b
    b.close()


def take(consumer: Consumer, count: int) -> list[Delivery]:
    """``count`` deliveries, each acknowledged (the archive sends ``prefetch`` ahead of the acknowledgements)."""
    got: list[Delivery] = []

    def enough() -> bool:
        batch = consumer.receive(min(100, count - len(got)), 0.05)
        consumer.ack(batch)
        got.extend(batch)
        return len(got) >= count

    wait_until(enough, 60, f"{count} deliveries", interval=0)
    return got


def ids(deliveries: list[Delivery]) -> set[str]:
    return {d.envelope.id for d in deliveries if d.envelope is not None}


def test_a_member_lost_half_way_through_the_archive_resumes_there(broker: pubsubkit.Broker, kit: EventKit) -> None:
    """A member whose connection is lost half-way through the archive (no close) leaves its position; the
    next member reads on from about there and the group misses nothing."""
    ping = kit.event_type()
    emitter = broker.emitter()
    sent = [e.id for i in range(0, 3000, 500) for e in emitter.emit_many([ping(n=j) for j in range(i, i + 500)])]
    group = kit.name("g")
    first = broker.transport.consumer(group, None)
    handled = take(first, 1500)
    time.sleep(1.1)
    first.receive(1, 0.1)  # the position is written at a receive, at most once a second
    first._drop()  # type: ignore[attr-defined]  # as a crash would: nothing written on the way out
    second = broker.transport.consumer(group, None)
    try:
        rest: list[Delivery] = []

        def all_seen() -> bool:
            got = second.receive(100, 0.05)
            second.ack(got)
            rest.extend(got)
            return set(sent) <= ids(handled) | ids(rest)

        wait_until(all_seen, 60, "every message of the archive", interval=0)
        again = ids(handled) & ids(rest)
        assert len(again) < 500, f"{len(again)} of the first 1500 read again: the position was not kept"
    finally:
        second.close()
        first.close()


def test_a_reset_is_refused_while_the_group_has_members(broker: pubsubkit.Broker, kit: EventKit) -> None:
    group = kit.name("g")
    member = broker.transport.consumer(group, None)
    try:
        with pytest.raises(ConfigError, match="has members: stop its listeners"):
            broker.transport.reset_group(group)
        with pytest.raises(ConfigError, match="has members"):
            broker.transport.forget_group(group)
    finally:
        member.close()
    assert broker.transport.reset_group(group) == 0
    assert broker.transport.forget_group(group) is True
    assert broker.transport.forget_group(group) is False
    with pytest.raises(pubsubkit.NotFound, match="no consumer group"):
        broker.transport.reset_group(group)


def test_an_archive_declared_otherwise_is_named_with_its_options(amqp_url: str, url: str, kit: EventKit) -> None:
    exchange = url.split("exchange=")[1].split("&")[0]
    with raw_channel(amqp_url) as ch:
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        ch.queue_declare(f"{exchange}.archive", durable=True, arguments={"x-queue-type": "stream", "x-max-age": "1D"})
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        with pytest.raises(QueueMismatch, match="archive_max_age"):
            broker.emitter(retry_for=0).emit(kit.event_type()(n=1))
        with pytest.raises(QueueMismatch, match="archive_max_age"):
            broker.transport.consumer(kit.name("g"), None)
    with pubsubkit.open_broker(url, codec=kit.codec, archive_max_age="1D") as broker:
        broker.emitter().emit(kit.event_type()(n=1))


def test_without_the_archive_a_group_has_no_history(amqp_url: str, kit: EventKit) -> None:
    url = with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300", archive="false")
    with pubsubkit.open_broker(url, codec=kit.codec, mandatory="false") as broker:
        assert broker.capabilities.replay is False
        broker.emitter().emit(kit.event_type()(n=1))
        consumer = broker.transport.consumer(kit.name("g"), None)
        try:
            assert consumer.receive(10, 0.5) == []
        finally:
            consumer.close()
        with pytest.raises(ConfigError, match="archive=false"):
            broker.transport.reset_group(kit.name("g"))
