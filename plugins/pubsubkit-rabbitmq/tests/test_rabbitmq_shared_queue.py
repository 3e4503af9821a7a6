"""A group's queue by name and type, and a queue shared with an application that declares it its own way.

The other application here is a plain pika client that declares, binds and consumes exactly as the Go MyEvents
listener does: a classic durable queue without arguments, bound to the names it knows, manual acks, and a nack
without requeue (on a queue without a dead-letter exchange: dropped) for a name it does not know.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator
from contextlib import closing
from typing import Any

import pika
import pytest
from pubsubkit_rabbitmq import RabbitTransport
from pubsubkit_rabbitmq._options import parse
from rabbitmq_support import raw_channel, with_query

import pubsubkit
from pubsubkit.errors import ConfigError
from pubsubkit.testing import Collector, EventKit, wait_until
from pubsubkit.transport import Delivery


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


class GoStyleListener:
    """Consumes ``queue`` as the original's AMQP listener does, in a thread of its own, and counts."""

    def __init__(self, amqp_url: str, queue: str, known: Collection[str], exchange: str = "events") -> None:
        self.known = frozenset(known)
        self.handled: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self._stop = threading.Event()
        self._conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = self._conn.channel()
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        ch.queue_declare(queue, durable=True)  # QueueDeclare(queue, true, false, false, false, nil)
        for name in sorted(self.known):
            ch.queue_bind(queue, exchange, routing_key=name)
        ch.basic_consume(queue, on_message_callback=self._on_message, auto_ack=False)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_message(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        name = (props.headers or {}).get("x-event-name")
        if not isinstance(name, str) or name not in self.known:
            self.rejected.append(str(name))
            ch.basic_nack(method.delivery_tag, multiple=False, requeue=False)
            return
        self.handled.append(json.loads(body))
        ch.basic_ack(method.delivery_tag)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._conn.process_data_events(time_limit=0.05)
        self._conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def go_publish(amqp_url: str, messages: list[tuple[str, dict[str, Any]]], exchange: str = "events") -> None:
    """Publish as the original's emitter does: routing key and x-event-name, a JSON body, no message id."""
    with raw_channel(amqp_url) as ch:
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        ch.confirm_delivery()
        for name, payload in messages:
            props = pika.BasicProperties(content_type="application/json", headers={"x-event-name": name})
            ch.basic_publish(exchange, name, json.dumps(payload).encode(), props)


@pytest.fixture
def cleanup(amqp_url: str) -> Iterator[list[str]]:
    """Queue names to delete after the test."""
    queues: list[str] = []
    yield queues
    with raw_channel(amqp_url) as ch:
        for q in queues:
            ch.queue_delete(q)


def test_group_options_are_read_per_group() -> None:
    s = parse(
        "amqp://h/?queue.booking=booking&queue_type.booking=CLASSIC&share.audit=shared:a, b&heartbeat=20",
        {"queue_type.audit": "quorum"},
    )
    assert (s.queue("booking"), s.queue_type_of("booking")) == ("booking", "classic")
    assert (s.queue("audit"), s.queue_type_of("audit")) == ("events.audit", "quorum")
    assert s.group("audit").share is not None
    assert s.group("audit").share.names == {"a", "b"}
    assert (s.queue("other"), s.queue_type_of("other")) == ("events.other", "quorum")
    assert s.params.heartbeat == 20
    # A classic queue carries no dead-letter arguments (the broker never dead-letters it), as a Go client's has none.
    assert s.queue_arguments("booking") == {"x-queue-type": "classic"}
    assert s.queue_arguments("other")["x-dead-letter-exchange"] == "events.dlx"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("queue_type.booking=stream", "queue_type.booking='stream': use quorum or classic"),
        ("share.booking=booking", "share.booking='booking': use <queue>:<name>"),
        ("share.booking=:eventCreated", "use <queue>:<name>"),
        ("queue.=x", "name the group"),
        ("queue.booking=", "give the name of the group's queue"),
    ],
)
def test_a_wrong_group_option_is_named_with_its_fix(query: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("<", "<")):
        parse(f"amqp://h/?{query}", {})


def test_a_listener_of_every_name_cannot_share(amqp_url: str, kit: EventKit) -> None:
    group = kit.name("g")
    with closing(RabbitTransport(with_query(amqp_url, **{f"share.{group}": "q:x"}))) as t:
        with pytest.raises(ConfigError, match="handles every name"):
            t.consumer(group, None)
        with pytest.raises(ConfigError, match="handles none of x"):
            t.consumer(group, ["y"])


def test_a_group_and_a_go_listener_share_a_queue(amqp_url: str, kit: EventKit, cleanup: list[str]) -> None:
    """share.<group>: each shared message is handled once in total; names only the group handles stay its own."""
    created, updated = kit.event_type("created"), kit.event_type("updated")
    group, shared = kit.name("booking"), kit.name("go-booking")
    cleanup += [shared, f"events.{group}", f"events.{group}.dlq"]
    go = GoStyleListener(amqp_url, shared, [kit.name("created")])
    got = Collector()
    url = with_query(amqp_url, **{f"share.{group}": f"{shared}:{kit.name('created')}"})
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        listener = broker.listener(group, poll_interval=0.05)
        listener.add_handler(created, got)
        listener.add_handler(updated, got)
        listener.start()
        assert listener.wait_ready(30)
        go_publish(amqp_url, [(kit.name("created"), {"n": i, "note": "c"}) for i in range(60)])
        go_publish(amqp_url, [(kit.name("updated"), {"n": i, "note": "u"}) for i in range(20)])
        wait_until(lambda: len(go.handled) + len(got.snapshot()) >= 80, what="every message handled")
        listener.close(timeout=30)
    go.close()
    by_python = [m.event.n for m in got.snapshot() if m.envelope.name == kit.name("created")]
    by_go = [p["n"] for p in go.handled]
    assert sorted(by_python + by_go) == list(range(60)), "a shared message was lost or handled twice"
    assert by_python, "the group got no shared message"
    assert by_go, "the Go listener got no shared message"
    assert sorted(m.event.n for m in got.snapshot() if m.envelope.name == kit.name("updated")) == list(range(20))
    assert go.rejected == [], "a name the Go listener does not know reached the shared queue"


def test_moving_a_name_to_a_shared_queue_unbinds_it_from_the_own_queue(
    amqp_url: str, kit: EventKit, cleanup: list[str]
) -> None:
    """A group that bound a name to its own queue in an earlier run stops getting it there once it shares it."""
    group, shared = kit.name("booking"), kit.name("go-booking")
    cleanup += [shared, f"events.{group}", f"events.{group}.dlq"]
    with closing(RabbitTransport(amqp_url)) as t:
        t.consumer(group, [kit.name("created")]).close()  # the earlier run: bound to the own queue
    go = GoStyleListener(amqp_url, shared, [kit.name("created")])
    go.close()  # declared and bound, nobody consuming: every shared message stays there
    url = with_query(amqp_url, **{f"share.{group}": f"{shared}:{kit.name('created')}"})
    with closing(RabbitTransport(url)) as t:
        consumer = t.consumer(group, [kit.name("created")])
        go_publish(amqp_url, [(kit.name("created"), {"n": 1, "note": "c"})])
        got: list[Delivery] = []
        wait_until(lambda: got.extend(consumer.receive(10, 0.2)) or got, what="the message of the shared queue")
        consumer.ack(got)
        assert [d.envelope.name for d in got if d.envelope is not None] == [kit.name("created")]
        assert consumer.receive(10, 1) == [], "the name is still bound to the group's own queue"
        consumer.close()


def test_a_group_consumes_a_go_queue_by_name_and_type(amqp_url: str, kit: EventKit, cleanup: list[str]) -> None:
    """queue.<group> and queue_type.<group>=classic: the group's queue is the one the Go listener declares."""
    created = kit.event_type("created")
    group, queue = kit.name("booking"), kit.name("go-booking")
    cleanup += [queue, f"events.{group}.dlq"]
    url = with_query(amqp_url, **{f"queue.{group}": queue, f"queue_type.{group}": "classic"})
    got = Collector()
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        listener = broker.listener(group, poll_interval=0.05)
        listener.add_handler(created, got)
        listener.start()
        assert listener.wait_ready(30)
        go = GoStyleListener(amqp_url, queue, [kit.name("created")])  # declared after us: its declaration agrees
        go_publish(amqp_url, [(kit.name("created"), {"n": i, "note": "c"}) for i in range(40)])
        wait_until(lambda: len(go.handled) + len(got.snapshot()) >= 40, what="every message handled")
        listener.close(timeout=30)
    go.close()
    assert sorted([m.event.n for m in got.snapshot()] + [p["n"] for p in go.handled]) == list(range(40))


def test_a_queue_declared_otherwise_is_a_clear_error(amqp_url: str, kit: EventKit, cleanup: list[str]) -> None:
    """The broker's PRECONDITION_FAILED becomes a ConfigError naming the queue, the argument and the option to set;
    the queue is left as it was."""
    group, queue = kit.name("booking"), kit.name("go-booking")
    cleanup += [queue, f"events.{group}", f"events.{group}.dlq"]
    with raw_channel(amqp_url) as ch:
        ch.queue_declare(queue, durable=True)  # as the Go listener declares it
        ch.queue_declare(f"events.{group}", durable=True)
    with closing(RabbitTransport(with_query(amqp_url, **{f"queue.{group}": queue}))) as t:
        with pytest.raises(ConfigError, match=f"queue '{queue}' of group {group} exists with other arguments") as e:
            t.consumer(group, ["x"])
        assert f"set queue_type.{group}=classic" in str(e.value)
        assert "it is a classic queue" in str(e.value)
    with (  # its own queue, made classic by someone else
        closing(RabbitTransport(amqp_url)) as t,
        pytest.raises(ConfigError, match=f"set queue_type.{group}=classic"),
    ):
        t.consumer(group, ["x"])
    with raw_channel(amqp_url) as ch:
        ch.queue_declare(queue, durable=True)  # unchanged: still classic without arguments
    with pubsubkit.open_broker(with_query(amqp_url, **{f"queue.{group}": queue}), codec=kit.codec) as broker:
        listener = broker.listener(group)
        listener.add_handler(kit.event_type("x"), Collector())
        with pytest.raises(ConfigError, match=f"set queue_type.{group}=classic"):
            listener.run()


def test_a_quorum_queue_asked_for_as_classic_names_its_type(amqp_url: str, kit: EventKit, cleanup: list[str]) -> None:
    group = kit.name("booking")
    cleanup += [f"events.{group}", f"events.{group}.dlq"]
    with closing(RabbitTransport(amqp_url)) as t:
        t.consumer(group, ["x"]).close()  # quorum, by default
    classic = with_query(amqp_url, **{f"queue_type.{group}": "classic"})
    with (
        closing(RabbitTransport(classic)) as t,
        pytest.raises(ConfigError, match=f"it is a quorum queue: set queue_type.{group}=quorum to use it as it is"),
    ):
        t.consumer(group, ["x"])
