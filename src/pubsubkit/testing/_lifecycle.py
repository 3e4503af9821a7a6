"""Messaging cases about subscribers and servers coming and going: 5, 6, 7, 12, 14, 20 and 21."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pubsubkit.api import Broker
from pubsubkit.errors import ConnectionLost, PublishError, PubsubkitError
from pubsubkit.listener import Message
from pubsubkit.testing._base import Listeners, MessagingFixtures, require
from pubsubkit.testing._delivery import assert_exactly, emit_in_chunks
from pubsubkit.testing.helpers import (
    DEFAULT_TIMEOUT,
    Collector,
    EventKit,
    ServerControl,
    Sizes,
    duplicates,
    run_threads,
    wait_until,
)
from pubsubkit.transport import Consumer, Delivery

#: Seconds within which released messages must come back; leases are longer (30 s on the built-in backends).
RELEASE_TIMEOUT = 15.0


def collect(
    consumer: Consumer, until: Callable[[list[Delivery]], bool], timeout: float = DEFAULT_TIMEOUT, batch: int = 10
) -> list[Delivery]:
    """Receive from ``consumer`` (settling nothing) until ``until(received so far)`` holds."""
    got: list[Delivery] = []

    def done() -> bool:
        if until(got):
            return True
        got.extend(consumer.receive(batch, 0.05))
        return until(got)

    wait_until(done, timeout, lambda: f"deliveries from the consumer; got {len(got)} so far", interval=0)
    return got


def join_group(broker: Broker, group: str, names: list[str]) -> None:
    """Make ``group`` exist at the broker (its queue, subscription or offsets) without keeping a member in it."""
    broker.transport.consumer(group, names).close()


def ids_of(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.id for d in deliveries if d.envelope is not None]


class LifecycleCases(MessagingFixtures):
    def test_05_no_ack_holds_order(
        self, broker: Broker, open_brokers: Callable[[], Broker], kit: EventKit, listeners: Listeners
    ) -> None:
        """While a message is unacked, the next one with its key reaches no other member; after the ack it does."""
        require(broker, "ordered", "the broker does not keep the order of messages with one key")
        require(broker, "consumer_groups", "the broker has no consumer groups")
        ping = kit.event_type()
        group = kit.name("g")
        a = broker.transport.consumer(group, [kit.name("ping")])
        b = open_brokers().transport.consumer(group, [kit.name("ping")])
        try:
            emitter = broker.emitter()
            m1 = emitter.emit(ping(n=1), key="k")
            m2 = emitter.emit(ping(n=2), key="k")
            first = collect(a, lambda got: len(got) >= 1, batch=1)
            assert ids_of(first) == [m1.id]
            early: list[Delivery] = []
            for _ in range(10):
                early += b.receive(10, 0.05)
            assert ids_of(early) == [], "another member got a message while an earlier one of its key was unacked"
            a.ack(first)
            # Now it may come to either member (on a partitioned log, to the one that owns the key's partition).
            later: list[tuple[Consumer, Delivery]] = []

            def arrived() -> bool:
                later.extend((c, d) for c in (b, a) for d in c.receive(10, 0.05))
                return bool(later)

            wait_until(arrived, what="message 2 after message 1 was acknowledged", interval=0)
            assert [d.envelope.id for _, d in later if d.envelope is not None] == [m2.id]
            for c, d in later:
                c.ack([d])
        finally:
            a.close()
            b.close()

        # The same through listeners: a handler blocked on message 1 holds back message 2 of its key.
        release, started = threading.Event(), threading.Event()

        def block(event: Any, msg: Message) -> None:
            if event.n == 1:
                started.set()
                release.wait(DEFAULT_TIMEOUT)

        got = Collector(effect=block)
        group2, pong = kit.name("g2"), kit.event_type("pong")
        listeners.start(broker, group2, [(pong, got)])
        listeners.start(open_brokers(), group2, [(pong, got)])
        n1 = emitter.emit(pong(n=1), key="k")
        n2 = emitter.emit(pong(n=2), key="k")
        wait_until(started.is_set, what="the first handler to start")
        threading.Event().wait(0.5)
        assert got.count == 0, "message 2 was handled while message 1 of its key was still being handled"
        release.set()
        got.wait_for([n1.id, n2.id])
        assert got.ids() == [n1.id, n2.id]

    def test_06_continue_after_close(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """Members join and leave one after another while messages are published: none is lost."""
        ping = kit.event_type()
        group = kit.name("g")
        got = Collector()
        join_group(broker, group, [kit.name("ping")])  # brokers without replay keep only what comes after this
        published: list[str] = []
        publishing = threading.Thread(
            target=lambda: published.extend(
                e.id
                for e in emit_in_chunks(
                    broker.emitter(), [(ping(n=i), None) for i in range(sizes.continue_after_close)], 50
                )
            ),
            daemon=True,
        )
        publishing.start()
        step = max(1, sizes.continue_after_close // 8)
        quota_lock = threading.Lock()
        rounds = 0
        while publishing.is_alive() or not set(published) <= got.distinct():
            # Each member handles about ``step`` messages, then its handlers hold until it is told to stop.
            gate, quota = threading.Event(), [step]

            def handle(event: Any, msg: Message, gate: threading.Event = gate, quota: list[int] = quota) -> None:
                with quota_lock:
                    quota[0] -= 1
                    full = quota[0] < 0
                if full:
                    gate.wait(DEFAULT_TIMEOUT)
                got(event, msg)

            member = listeners.start(
                broker if rounds % 2 else open_brokers(), group, [(ping, handle)], max_in_flight=20
            )

            def took_share(quota: list[int] = quota) -> bool:
                return quota[0] < 0 or (not publishing.is_alive() and set(published) <= got.distinct())

            wait_until(took_share, what="a member to take its share")
            member.stop()
            gate.set()
            listeners.close(member)
            rounds += 1
        publishing.join()
        assert rounds >= 3, "the members never took turns"
        assert len(published) == sizes.continue_after_close
        assert got.distinct() == set(published)

    def test_07_concurrent_close(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """Many members closed at once all stop; a new member then gets exactly what was published after."""
        ping = kit.event_type()
        group = kit.name("g")
        before = Collector()
        other = open_brokers()
        members = [
            listeners.start(broker if i % 2 else other, group, [(ping, before)]) for i in range(sizes.concurrent_close)
        ]
        emitter = broker.emitter()
        first = [emitter.emit(ping(n=i)).id for i in range(20)]
        before.wait_for(first)
        run_threads(len(members), lambda i: listeners.close(members[i]))
        assert all(m.stopped for m in members)
        after = [emitter.emit(ping(n=i)).id for i in range(50)]
        fresh = Collector()
        listeners.start(broker, group, [(ping, fresh)])
        fresh.wait_for(after)
        listeners.close_all()
        assert_exactly(before.snapshot(), first, "the closed members")
        assert_exactly(fresh.snapshot(), after, "the new member")

    def test_12_cancel_subscription(
        self, broker: Broker, open_brokers: Callable[[], Broker], kit: EventKit, listeners: Listeners
    ) -> None:
        """A closed subscription stops; what it received and did not ack goes to the next member, nothing else."""
        ping = kit.event_type()
        group = kit.name("g")
        emitter = broker.emitter()
        a = broker.transport.consumer(group, [kit.name("ping")])
        all_ids = [e.id for e in emitter.emit_many([ping(n=i) for i in range(20)])]
        taken = collect(a, lambda got: len(got) >= 10)
        assert not duplicates(ids_of(taken))
        a.ack(taken[:5])
        released = set(ids_of(taken[5:7]))
        a.release(taken[5:7])
        # Well within any lease: a message that only comes back when its lease runs out was not released.
        again = collect(a, lambda got: released <= set(ids_of(got)), timeout=RELEASE_TIMEOUT)
        assert not set(ids_of(again)) & set(ids_of(taken[:5])), "an acknowledged message came back"
        a.close()
        a.close()  # idempotent
        acked = set(ids_of(taken[:5]))
        b = open_brokers().transport.consumer(group, [kit.name("ping")])
        try:
            rest = collect(b, lambda got: set(all_ids) - acked <= set(ids_of(got)), timeout=RELEASE_TIMEOUT)
            assert not duplicates(ids_of(rest))
            assert set(ids_of(rest)) == set(all_ids) - acked, "an acknowledged message came back"
            b.ack(rest)
        finally:
            b.close()

        # Through listeners: after close() the loop has ended and handles nothing more.
        group2, pong = kit.name("g2"), kit.event_type("pong")
        first, second = Collector(), Collector()
        closing = listeners.start(broker, group2, [(pong, first)])
        before = [emitter.emit(pong(n=i)).id for i in range(10)]
        first.wait_for(before)
        listeners.close(closing)
        closing.close()  # idempotent
        after = [emitter.emit(pong(n=i)).id for i in range(10)]
        listeners.start(broker, group2, [(pong, second)])
        second.wait_for(after)
        listeners.close_all()
        assert_exactly(first.snapshot(), before, "the closed listener")
        assert_exactly(second.snapshot(), after, "the next listener")

    def test_14_reconnect(
        self,
        broker: Broker,
        server_control: ServerControl,
        kit: EventKit,
        listeners: Listeners,
        sizes: Sizes,
    ) -> None:
        """The server restarts twice during publishing; publishers retry; everything published arrives."""
        require(broker, "persistent", "messages published before a restart are lost with the server")
        ping = kit.event_type()
        got = Collector()
        listeners.start(broker, kit.name("g"), [(ping, got)])
        emitter = broker.emitter(retry_for=120.0)
        published: list[str] = []
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                for i in range(sizes.reconnect):
                    published.append(emitter.emit(ping(n=i), key=f"k{i % 8}").id)
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        for third in (1, 2):
            wait_until(lambda: len(published) >= sizes.reconnect * third // 3 or not t.is_alive())  # noqa: B023
            server_control.stop()
            server_control.start()
        t.join(DEFAULT_TIMEOUT * 3)
        assert not errors, f"publishing failed across a restart: {errors[0]!r}"
        got.wait_for(published, timeout=DEFAULT_TIMEOUT * 3)
        assert got.distinct() == set(published)

    def test_20_graceful_shutdown(
        self, broker: Broker, open_brokers: Callable[[], Broker], kit: EventKit, listeners: Listeners, sizes: Sizes
    ) -> None:
        """stop() while a handler runs: in-flight work finishes and is acked; the next member gets only the rest."""
        ping = kit.event_type()
        group = kit.name("g")
        release, blocked = threading.Event(), threading.Event()
        lock = threading.Lock()
        started: list[str] = []

        def work(event: Any, msg: Message) -> None:
            with lock:
                started.append(msg.id)
            if event.n == 5:
                blocked.set()
                release.wait(DEFAULT_TIMEOUT)

        done = Collector(effect=work)
        stopping = listeners.start(broker, group, [(ping, done)], max_in_flight=8, concurrency=2)
        ids = [e.id for e in emit_in_chunks(broker.emitter(), [(ping(n=i), None) for i in range(sizes.shutdown)])]
        wait_until(blocked.is_set, what="the handler of message 5 to start")
        stopping.stop()
        release.set()
        listeners.close(stopping)
        assert sorted(started) == sorted(done.ids()), "a handler that had started did not finish"
        assert ids[5] in done.distinct()

        rest = Collector()
        listeners.start(open_brokers(), group, [(ping, rest)])
        wait_until(lambda: set(ids) <= done.distinct() | rest.distinct(), what="every message to be handled")
        listeners.close_all()
        assert not done.distinct() & rest.distinct(), "a message handled before the shutdown was redelivered"
        assert not duplicates(done.ids() + rest.ids())

    def test_20_graceful_shutdown_sigterm(
        self, broker_url: str, broker: Broker, kit: EventKit, listeners: Listeners, sizes: Sizes, tmp_path: Path
    ) -> None:
        """SIGTERM to a listener process while handling: it drains, acks, exits 0; nothing is lost or repeated."""
        require(broker, "multi_process", "another process cannot reach this broker")
        ping = kit.event_type()
        group = kit.name("g")
        record = tmp_path / "handled.txt"
        record.touch()

        def lines() -> list[str]:
            return record.read_text(encoding="utf-8").splitlines()

        command = [sys.executable, "-m", "pubsubkit.testing._shutdown_child", broker_url, group, kit.name("ping")]
        child = subprocess.Popen([*command, str(record), "0.05"], env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_until(lambda: "ready" in lines(), what="the child to join its group")
            ids = [e.id for e in emit_in_chunks(broker.emitter(), [(ping(n=i), None) for i in range(sizes.shutdown)])]
            wait_until(lambda: sum(x.startswith("done ") for x in lines()) >= 5, what="the child to handle 5")
            child.send_signal(signal.SIGTERM)
            assert child.wait(DEFAULT_TIMEOUT) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        log = lines()
        assert log[-1] == "exit", "the child did not drain and close"
        starts = [x.split()[1] for x in log if x.startswith("start ")]
        dones = [x.split()[1] for x in log if x.startswith("done ")]
        assert sorted(starts) == sorted(dones), "a handler that had started was cut off"
        assert not duplicates(dones)

        rest = Collector()
        listeners.start(broker, group, [(ping, rest)])
        wait_until(lambda: set(ids) <= set(dones) | rest.distinct(), what="every message to be handled")
        listeners.close_all()
        assert not set(dones) & rest.distinct(), "a message the child handled was redelivered"
        assert not duplicates(rest.ids())

    def test_21_publish_while_down(
        self, broker: Broker, server_control: ServerControl, kit: EventKit, listeners: Listeners
    ) -> None:
        """With the server down the emitter raises a clear error after its retry bound; success means stored."""
        ping = kit.event_type()
        got = Collector()
        listeners.start(broker, kit.name("g"), [(ping, got)])
        emitter = broker.emitter(retry_for=1.0)
        before = emitter.emit(ping(n=1))
        server_control.stop()
        try:
            with pytest.raises(PubsubkitError) as info:
                emitter.emit(ping(n=2))
            assert isinstance(info.value, ConnectionLost | PublishError)
            assert str(info.value), "the error does not say what went wrong"
        finally:
            server_control.start()
        after = emitter.emit(ping(n=3))
        got.wait_for([before.id, after.id], timeout=DEFAULT_TIMEOUT * 2)
