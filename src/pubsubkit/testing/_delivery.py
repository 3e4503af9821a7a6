"""Messaging cases about what arrives where: 1, 2, 3, 9, 10, 11, 13, 15 and 22 (docs/conformance.md)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from pubsubkit.api import Broker
from pubsubkit.emitter import Emitter
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.errors import Closed
from pubsubkit.events import UnknownEvent
from pubsubkit.listener import Message
from pubsubkit.testing._base import Listeners, MessagingFixtures, require
from pubsubkit.testing.helpers import Collector, EventKit, Received, Sizes, duplicates, run_threads, wait_until

NOTE = "unicode ü ✓ 😀, quotes \" ' and \\ backslash,\nnew line\ttab"


def emit_in_chunks(emitter: Emitter, events: Sequence[tuple[Any, str | None]], chunk: int = 100) -> list[Envelope]:
    """Publish ``(event, key)`` pairs in order, ``chunk`` at a time; returns their envelopes."""
    out: list[Envelope] = []
    for i in range(0, len(events), chunk):
        out.extend(emitter.emit_many(events[i : i + chunk]))
    return out


def assert_same_envelope(got: Envelope, sent: Envelope) -> None:
    """What a consumer got is what was published: id, name, key, payload bytes, headers and time (to 1 ms)."""
    assert got.id == sent.id
    assert got.name == sent.name
    assert got.key == sent.key
    assert got.payload == sent.payload
    assert {h: got.headers.get(h) for h in sent.headers} == dict(sent.headers), "headers changed on the way"
    assert abs(got.occurred_at - sent.occurred_at) < timedelta(milliseconds=1)


def assert_exactly(calls: Sequence[Received], expected: Sequence[str], who: str = "the subscriber") -> None:
    """Every expected id handled exactly once, and nothing else."""
    got = [c.id for c in calls]
    dups = duplicates(got)
    assert not dups, f"{who} handled {len(dups)} messages more than once: {list(dups.items())[:5]}"
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing, f"{who} never handled {len(missing)} of {len(expected)} messages"
    assert not extra, f"{who} handled {len(extra)} messages it should not have seen"


class DeliveryCases(MessagingFixtures):
    def test_01_publish_subscribe(self, broker: Broker, kit: EventKit, listeners: Listeners, sizes: Sizes) -> None:
        """Events with per-message headers all arrive; name, key, payload, headers and time intact."""
        ping = kit.event_type()
        got = Collector()
        listener = listeners.start(broker, kit.name("g"), [(ping, got)])
        emitter = broker.emitter()
        sent: list[tuple[Any, Envelope]] = []
        for i in range(sizes.publish_subscribe):
            key = f"k{i % 7}" if i % 5 else None
            event = ping(n=i, key=key, note=NOTE, tags=["a", str(i)])
            headers = {"x-index": str(i), "x-note": f"héllo ✓ {i}", "traceparent": f"00-{i:032x}-{i:016x}-01"}
            sent.append((event, emitter.emit(event, key=key, headers=headers)))
        got.wait_for(env.id for _, env in sent)
        listeners.close(listener)

        calls = got.snapshot()
        assert_exactly(calls, [env.id for _, env in sent])
        by_id = {c.id: c for c in calls}
        for event, env in sent:
            rec = by_id[env.id]
            assert rec.event == event
            assert_same_envelope(rec.envelope, env)
            assert rec.group == kit.name("g")

    def test_02_concurrent_publish(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """Many threads publish at once; several consumers of one group together get every message once."""
        ping = kit.event_type()
        got = Collector()
        group = kit.name("g")
        members = [listeners.start(b, group, [(ping, got)]) for b in (broker, open_brokers(), open_brokers())]
        threads = sizes.concurrent_publishers
        per_thread = sizes.concurrent_publish // threads
        ids: list[list[str]] = [[] for _ in range(threads)]

        def publish(t: int) -> None:
            emitter = broker.emitter()
            for i in range(per_thread):
                ids[t].append(emitter.emit(ping(n=t * per_thread + i), key=f"t{t}").id)

        run_threads(threads, publish)
        expected = [i for chunk in ids for i in chunk]
        assert len(expected) == threads * per_thread
        got.wait_for(expected)
        for m in members:
            listeners.close(m)
        assert_exactly(got.snapshot(), expected, "the group")

    def test_03_many_names(self, broker: Broker, kit: EventKit, listeners: Listeners, sizes: Sizes) -> None:
        """Many event names, each with its own subscription: each receives exactly its own messages."""
        types = [kit.event_type(f"t{i}") for i in range(sizes.many_names)]
        collectors = [Collector() for _ in types]
        for i, (et, c) in enumerate(zip(types, collectors, strict=True)):
            listeners.start(broker, kit.name(f"g{i}"), [(et, c)], concurrency=1)
        emitter = broker.emitter()
        sent: list[list[str]] = [[] for _ in types]
        for n in range(sizes.per_name):
            batch = [(et(n=n), None) for et in types]
            for i, env in enumerate(emitter.emit_many(batch)):
                sent[i].append(env.id)
        for c, ids in zip(collectors, sent, strict=True):
            c.wait_for(ids)
        listeners.close_all()
        for i, (c, ids) in enumerate(zip(collectors, sent, strict=True)):
            assert_exactly(c.snapshot(), ids, f"subscription {i}")
            assert {r.envelope.name for r in c.snapshot()} == {kit.name(f"t{i}")}

    def test_09_ordering_per_key(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """Messages of one key are handled in publish order, even with several consumers in the group."""
        require(broker, "ordered", "the broker does not keep the order of messages with one key")
        ping = kit.event_type()
        lock = threading.Lock()
        seen: dict[str, list[int]] = {}
        rng = random.Random(9)

        def record(event: Any, msg: Message) -> None:
            if rng.random() < 0.05:
                threading.Event().wait(0.002)  # let another key's handler overtake this one
            with lock:
                seen.setdefault(event.key, []).append(event.n)

        got = Collector(effect=record)
        group = kit.name("g")
        for b in (broker, open_brokers(), open_brokers()):
            listeners.start(b, group, [(ping, got)], concurrency=4)
        keys = [f"key{k}" for k in range(sizes.ordering_keys)]
        events = [(ping(n=i, key=keys[i % len(keys)]), keys[i % len(keys)]) for i in range(sizes.ordering)]
        envs = emit_in_chunks(broker.emitter(), events, chunk=50)
        got.wait_for(e.id for e in envs)
        listeners.close_all()
        assert_exactly(got.snapshot(), [e.id for e in envs], "the group")
        for key in keys:
            expected = [i for i in range(sizes.ordering) if keys[i % len(keys)] == key]
            assert seen[key] == expected, f"messages of {key} were handled out of order"

    def test_10_emitter_close_loses_nothing(
        self, broker: Broker, open_brokers: Callable[[], Broker], kit: EventKit, listeners: Listeners, sizes: Sizes
    ) -> None:
        """Many threads emit through one emitter, which is then closed: every confirmed message arrives."""
        ping = kit.event_type()
        got = Collector()
        listeners.start(broker, kit.name("g"), [(ping, got)], max_in_flight=500)
        emitter = broker.emitter()
        threads = sizes.emitter_close_threads
        per_thread = sizes.emitter_close // threads
        ids: list[list[str]] = [[] for _ in range(threads)]

        def publish(t: int) -> None:
            for i in range(per_thread):
                ids[t].append(emitter.emit(ping(n=i, key=f"t{t}"), key=f"t{t}").id)

        run_threads(threads, publish)
        emitter.flush()
        emitter.close()
        emitter.close()  # idempotent
        with pytest.raises(Closed):
            emitter.emit(ping(n=-1))
        closed = open_brokers()
        closed.close()
        with pytest.raises(Closed):  # at once, not after retrying as if the server were away
            closed.emitter(retry_for=60.0).emit(ping(n=-2))
        expected = [i for chunk in ids for i in chunk]
        got.wait_for(expected)
        listeners.close_all()
        assert_exactly(got.snapshot(), expected)

    def test_11_topic_isolation(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """Two names, one message each: each subscriber sees only its own."""
        a, b = kit.event_type("a"), kit.event_type("b")
        got_a, got_b = Collector(), Collector()
        listeners.start(broker, kit.name("ga"), [(a, got_a)])
        listeners.start(broker, kit.name("gb"), [(b, got_b)])
        emitter = broker.emitter()
        env_a = emitter.emit(a(n=1))
        env_b = emitter.emit(b(n=2))
        got_a.wait_for([env_a.id])
        got_b.wait_for([env_b.id])
        listeners.close_all()
        assert_exactly(got_a.snapshot(), [env_a.id], "the subscriber of a")
        assert_exactly(got_b.snapshot(), [env_b.id], "the subscriber of b")
        assert got_a.snapshot()[0].event == a(n=1)
        assert got_b.snapshot()[0].event == b(n=2)

    def test_13_new_subscriber_sees_old_messages(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """A group that subscribes after messages were published still gets them all (a log)."""
        require(broker, "replay", "the broker keeps no log a new group could read from the start")
        ping = kit.event_type()
        envs = emit_in_chunks(broker.emitter(), [(ping(n=i), None) for i in range(20)])
        for g in ("late1", "late2"):
            got = Collector()
            listener = listeners.start(broker, kit.name(g), [(ping, got)])
            got.wait_for(e.id for e in envs)
            listeners.close(listener)
            assert_exactly(got.snapshot(), [e.id for e in envs], f"group {g}")

    def test_15_consumer_groups(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """Two groups each get every message; two members of one group split them between them."""
        require(broker, "consumer_groups", "the broker has no consumer groups")
        ping = kit.event_type()

        def slow(event: Any, msg: Message) -> None:
            # So that one member cannot take everything before the other joins: alone, the first takes about
            # 2.5 s over the 50 messages, longer than a Kafka rebalance (the first learns of it at its next
            # heartbeat) on a busy machine.
            threading.Event().wait(0.05)

        member_a, member_b, other = Collector(effect=slow), Collector(effect=slow), Collector()
        g1, g2 = kit.name("g1"), kit.name("g2")
        listeners.start(broker, g1, [(ping, member_a)], max_in_flight=2, concurrency=1)
        listeners.start(open_brokers(), g1, [(ping, member_b)], max_in_flight=2, concurrency=1)
        listeners.start(open_brokers(), g2, [(ping, other)])
        emitter = broker.emitter()
        ids = [emitter.emit(ping(n=i), key=f"k{i}").id for i in range(sizes.consumer_groups)]
        other.wait_for(ids)
        wait_until(
            lambda: set(ids) <= member_a.distinct() | member_b.distinct(),
            what=lambda: f"group {g1} to handle {len(ids)} messages",
        )
        listeners.close_all()
        assert_exactly(member_a.snapshot() + member_b.snapshot(), ids, f"group {g1}")
        assert_exactly(other.snapshot(), ids, f"group {g2}")
        assert member_a.count > 0, "one member of the group got nothing"
        assert member_b.count > 0, "one member of the group got nothing"

    def test_22_multiple_handlers_and_bulk(self, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """Several handlers per listener run in order for each message; bulk publish keeps per-key order."""
        a, b = kit.event_type("a"), kit.event_type("b")
        order: list[tuple[str, str]] = []
        lock = threading.Lock()

        def mark(tag: str) -> Callable[[Any, Message], None]:
            def effect(event: Any, msg: Message) -> None:
                with lock:
                    order.append((tag, msg.id))

            return effect

        first, second, other, fallback = (Collector(effect=mark(t)) for t in ("first", "second", "other", "fb"))
        listeners.start(
            broker,
            kit.name("g"),
            [(a, first), (a, second), (b, other), (UnknownEvent, fallback)],
            concurrency=4,
        )
        emitter = broker.emitter()
        batch: list[tuple[Any, str | None]] = []
        for i in range(100):
            batch.append((a(n=i, key=f"k{i % 4}"), f"k{i % 4}"))
            if i % 10 == 0:
                batch.append((b(n=i), None))
        envs = emitter.emit_many(batch)
        unknown = Envelope(id=new_id(), name=kit.name("not_registered"), payload=b'{"x": [1, "two"]}', key="k0")
        emitter.publish([unknown])
        a_ids = [e.id for e in envs if e.name == kit.name("a")]
        b_ids = [e.id for e in envs if e.name == kit.name("b")]
        for c, ids in ((first, a_ids), (second, a_ids), (other, b_ids), (fallback, [unknown.id])):
            c.wait_for(ids)
        listeners.close_all()

        assert_exactly(first.snapshot(), a_ids, "the first handler")
        assert_exactly(second.snapshot(), a_ids, "the second handler")
        assert_exactly(other.snapshot(), b_ids, "the handler of b")
        assert_exactly(fallback.snapshot(), [unknown.id], "the fallback handler")
        assert fallback.snapshot()[0].event == UnknownEvent(kit.name("not_registered"), {"x": [1, "two"]})
        position = {entry: i for i, entry in enumerate(order)}
        for message_id in a_ids:
            assert position[("first", message_id)] < position[("second", message_id)], "handlers ran out of order"
        for k in range(4):
            ns = [r.event.n for r in first.snapshot() if r.event.key == f"k{k}"]
            assert ns == sorted(ns), f"bulk-published messages of key k{k} were handled out of order"
