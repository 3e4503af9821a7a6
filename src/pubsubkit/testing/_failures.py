"""Messaging cases about failing handlers and bad messages: 4, 8, 16, 17, 18, 19 and the metrics they move."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
from prometheus_client import CollectorRegistry

from pubsubkit.api import Broker
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.errors import FatalError
from pubsubkit.listener import Message
from pubsubkit.retry import RetryPolicy
from pubsubkit.store import Collection, Store
from pubsubkit.testing._base import Listeners, MessagingFixtures
from pubsubkit.testing._delivery import assert_exactly, assert_same_envelope
from pubsubkit.testing.helpers import Collector, EventKit, HookRecorder, Sizes, run_threads, wait_until
from pubsubkit.transport import DeadLetter


class Boom(Exception):
    """What the failing handlers of these cases raise."""


def fail_when(pred: Callable[[Any, Message], bool]) -> Callable[[Any, Message], None]:
    def fail(event: Any, msg: Message) -> None:
        if pred(event, msg):
            raise Boom(f"boom {event.n} attempt {msg.attempt}")

    return fail


@attrs.frozen
class Effect:
    """A document a handler writes once per message, in the idempotent-consumer case."""

    id: str
    message_id: str
    n: int


def wait_letters(recorder: HookRecorder, group: str, count: int) -> list[DeadLetter]:
    wait_until(
        lambda: len(recorder.letters_of(group)) >= count,
        what=lambda: f"{count} dead letters in group {group}; saw {len(recorder.letters_of(group))}",
    )
    return recorder.letters_of(group)


def stored_letters(broker: Broker, group: str, count: int) -> list[DeadLetter]:
    """The dead letters the broker keeps for ``group``, once there are ``count`` of them."""
    wait_until(
        lambda: len(broker.transport.dead_letters(group)) >= count,
        what=f"{count} stored dead letters in group {group}",
    )
    return broker.transport.dead_letters(group)


def _each_handler_has_one_effect(
    broker: Broker,
    kit: EventKit,
    listeners: Listeners,
    recorder: HookRecorder,
    store: Store,
    effects: Collection[Effect],
) -> None:
    """Two handlers each writing through a unit of work, the second failing on the first attempt: the retry
    runs only the second again, and each has one effect."""
    group, pong = kit.name("g2"), kit.event_type("pong")

    def writer(tag: str, fail_first: bool) -> Callable[[Any, Message], None]:
        def handle(event: Any, msg: Message) -> None:
            if fail_first and msg.attempt == 1:
                raise Boom(f"{tag} fails once")
            with msg.unit_of_work() as uow:
                uow.insert(effects, Effect(f"{tag}-{new_id()}", msg.id, event.n))

        return handle

    listeners.start(broker, group, [(pong, writer("first", False)), (pong, writer("second", True))], store=store)
    emitter = broker.emitter()
    ids = [emitter.emit(pong(n=i), key=f"k{i % 2}").id for i in range(6)]
    wait_until(
        lambda: all(set(recorder.outcomes_of(group, i)) & {"ok", "duplicate", "failed"} for i in ids),
        what="every message to be handled",
    )
    listeners.close_all()
    for i in ids:
        assert recorder.outcomes_of(group, i) == ["retry", "ok"]
        tags = sorted(x.id.split("-")[0] for x in effects.find(message_id=i))
        assert tags == ["first", "second"], f"{i}: effects {tags}, not one of each handler"
        assert store.inbox_contains(group, i)


class FailureCases(MessagingFixtures):
    def test_04_redelivery_on_failure(
        self, broker: Broker, kit: EventKit, listeners: Listeners, recorder: HookRecorder, sizes: Sizes
    ) -> None:
        """A handler failing the first two deliveries of every message still handles all of them."""
        ping = kit.event_type()
        got = Collector(fail=fail_when(lambda e, m: m.attempt <= 2))
        group = kit.name("g")
        listeners.start(broker, group, [(ping, got)], retry=RetryPolicy(attempts=5, initial=0.001, jitter=0))
        emitter = broker.emitter()
        ids = [emitter.emit(ping(n=i), key=f"k{i % 3}").id for i in range(sizes.redelivery)]
        got.wait_for(ids)
        listeners.close_all()
        assert_exactly(got.snapshot(), ids)
        assert all(r.attempt == 3 for r in got.snapshot()), "a message succeeded on an unexpected attempt"
        failed = Counter((r.id, r.attempt) for r in got.failures)
        assert failed == Counter({(i, a): 1 for i in ids for a in (1, 2)})
        assert recorder.letters_of(group) == []
        if broker.capabilities.dead_letter_store:
            assert broker.transport.dead_letters(group) == []

    def test_08_continue_after_errors(
        self,
        broker: Broker,
        open_brokers: Callable[[], Broker],
        kit: EventKit,
        listeners: Listeners,
        recorder: HookRecorder,
        metrics_registry: CollectorRegistry,
        sizes: Sizes,
    ) -> None:
        """Three members fail on everything many times and leave; a fresh member then gets every message."""
        ping = kit.event_type()
        group = kit.name("g")
        forever = RetryPolicy(attempts=1_000_000, initial=0.005, multiplier=1.0, max_delay=0.005, jitter=0)
        failing = [Collector(fail=fail_when(lambda e, m: True)) for _ in range(3)]
        members = [
            listeners.start(b, group, [(ping, c)], retry=forever, max_in_flight=5)
            for b, c in zip((broker, open_brokers(), open_brokers()), failing, strict=True)
        ]
        emitter = broker.emitter()
        ids = [emitter.emit(ping(n=i)).id for i in range(sizes.continue_after_errors)]
        for c in failing:
            wait_until(lambda c=c: len(c.failures) >= 10, what="every failing member to fail 10 times")  # type: ignore[misc]
        run_threads(len(members), lambda i: listeners.close(members[i]))
        assert all(c.count == 0 for c in failing)
        assert metrics_registry.get_sample_value("pubsubkit_in_flight", {"group": group}) == 0

        fresh = Collector()
        listeners.start(open_brokers(), group, [(ping, fresh)])
        fresh.wait_for(ids)
        listeners.close_all()
        assert_exactly(fresh.snapshot(), ids, "the fresh member")
        assert recorder.letters_of(group) == []

    def test_16_retry_policy(self, broker: Broker, kit: EventKit, listeners: Listeners, recorder: HookRecorder) -> None:
        """The configured attempts and backoff are honoured; fatal errors are not retried."""
        ping = kit.event_type()
        group = kit.name("g")
        policy = RetryPolicy(
            attempts=4, initial=0.05, multiplier=2.0, max_delay=0.15, jitter=0.0, fatal=(FatalError, LookupError)
        )

        def fail(event: Any, msg: Message) -> None:
            if event.note == "fatal":
                raise FatalError("cannot be fixed by retrying")
            if event.note == "lookup":
                raise KeyError("a fatal type of this policy")
            raise Boom(f"boom {event.n}")

        got = Collector(fail=fail)
        listeners.start(broker, group, [(ping, got)], retry=policy)
        emitter = broker.emitter()
        retried = emitter.emit(ping(n=1), key="a")
        fatal = emitter.emit(ping(n=2, note="fatal"), key="b")
        lookup = emitter.emit(ping(n=3, note="lookup"), key="c")
        letters = {x.envelope.id: x for x in wait_letters(recorder, group, 3) if x.envelope is not None}
        listeners.close_all()

        tries = [r for r in got.failures if r.id == retried.id]
        assert [r.attempt for r in tries] == [1, 2, 3, 4]
        gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
        for attempt, gap in enumerate(gaps, start=1):
            assert gap >= policy.delay(attempt) - 0.005, f"retried after {gap:.3f}s, before the backoff ran out"
        assert (letters[retried.id].reason, letters[retried.id].attempts) == ("failed", 4)
        for env in (fatal, lookup):
            assert [r.attempt for r in got.failures if r.id == env.id] == [1], "a fatal error was retried"
            assert (letters[env.id].reason, letters[env.id].attempts) == ("fatal", 1)
        assert got.count == 0

    def test_17_dead_letter(self, broker: Broker, kit: EventKit, listeners: Listeners, recorder: HookRecorder) -> None:
        """After the last attempt a message is dead-lettered with its metadata, and the stream goes on."""
        ping = kit.event_type()
        group = kit.name("g")
        healed = threading.Event()
        got = Collector(fail=fail_when(lambda e, m: e.note == "bad" and not healed.is_set()))
        listeners.start(broker, group, [(ping, got)], retry=RetryPolicy(attempts=3, initial=0.001, jitter=0))
        emitter = broker.emitter()
        bad = emitter.emit(ping(n=0, note="bad"), key="k", headers={"x-why": "test"})
        goods = [emitter.emit(ping(n=i), key="k").id for i in range(1, 11)]
        got.wait_for(goods)
        [letter] = wait_letters(recorder, group, 1)
        assert letter.reason == "failed"
        assert letter.attempts == 3
        assert letter.group == group
        assert letter.original_name == kit.name("ping")
        assert "Boom: boom 0" in letter.error
        assert letter.envelope is not None
        assert_same_envelope(letter.envelope, bad)
        assert [r.event.n for r in got.snapshot()] == list(range(1, 11)), "the stream did not go on in order"

        if not broker.capabilities.dead_letter_store:
            return  # listing and replaying need capability dead_letter_store
        [stored] = stored_letters(broker, group, 1)
        assert (stored.reason, stored.attempts, stored.group, stored.original_name) == (
            "failed",
            3,
            group,
            kit.name("ping"),
        )
        assert "Boom: boom 0" in stored.error
        assert stored.id is not None
        assert stored.dead_at is not None
        assert stored.envelope is not None
        assert_same_envelope(stored.envelope, bad)
        assert broker.transport.dead_letters(kit.name("other")) == []
        healed.set()
        broker.transport.replay_dead_letter(stored.id)
        got.wait_for([bad.id])
        assert broker.transport.dead_letters(group) == []

    def test_18_poison_message(
        self,
        broker: Broker,
        kit: EventKit,
        listeners: Listeners,
        recorder: HookRecorder,
        publish_undecodable: Callable[[str, str | None], None] | None,
    ) -> None:
        """Undecodable messages are dead-lettered at once and do not hold up the messages behind them."""
        ping = kit.event_type()
        group = kit.name("g")
        got = Collector()
        listeners.start(broker, group, [(ping, got)])
        emitter = broker.emitter()
        name = kit.name("ping")
        poison = [
            Envelope(id=new_id(), name=name, payload=b"{not json", key="k"),
            Envelope(id=new_id(), name=name, payload=b'{"n": "not a number"}', key="k"),
            Envelope(id=new_id(), name=name, payload=b"[1, 2]", key="k"),
        ]
        emitter.publish(poison[:1])
        goods = [emitter.emit(ping(n=1), key="k").id]
        emitter.publish(poison[1:])
        goods += [emitter.emit(ping(n=i), key="k").id for i in range(2, 11)]
        if publish_undecodable is not None:
            publish_undecodable(name, "k")
            goods.append(emitter.emit(ping(n=11), key="k").id)
        got.wait_for(goods)
        expected_letters = len(poison) + (publish_undecodable is not None)
        letters = wait_letters(recorder, group, expected_letters)
        listeners.close_all()

        assert_exactly(got.snapshot(), goods)
        assert [r.event.n for r in got.snapshot()] == list(range(1, len(goods) + 1))
        assert len(letters) == expected_letters
        assert all(x.reason == "poison" and x.attempts == 1 and x.error for x in letters)
        assert {x.envelope.id for x in letters if x.envelope is not None} == {p.id for p in poison}
        assert all(x.original_name == name for x in letters if x.envelope is not None)
        if publish_undecodable is not None:
            [raw] = [x for x in letters if x.envelope is None]
            assert raw.raw is not None
        if broker.capabilities.dead_letter_store:
            stored = stored_letters(broker, group, expected_letters)
            assert sorted(x.reason for x in stored) == ["poison"] * expected_letters

    def test_19_idempotent_consumer(
        self,
        broker: Broker,
        kit: EventKit,
        listeners: Listeners,
        recorder: HookRecorder,
        store: Store,
    ) -> None:
        """A message delivered twice (same id) has one effect when the handler writes through its inbox."""
        ping = kit.event_type()
        group = kit.name("g")
        effects = store.collection(kit.name("effects"), Effect, indexes=["message_id"])

        def write(event: Any, msg: Message) -> None:
            with msg.unit_of_work() as uow:
                uow.insert(effects, Effect(new_id(), msg.id, event.n))

        got = Collector(effect=write)
        listeners.start(broker, group, [(ping, got)], store=store, concurrency=4)
        emitter = broker.emitter()
        envs = [emitter.envelope(ping(n=i), key=f"k{i}" if i % 2 else None) for i in range(10)]
        n_of = {env.id: i for i, env in enumerate(envs)}
        for env in envs[:5]:
            emitter.publish([env])
            emitter.publish([env])
        for env in envs[5:]:
            emitter.publish([env, env])

        def settled() -> bool:
            return all(len(recorder.outcomes_of(group, e.id)) >= 2 for e in envs)

        wait_until(settled, what="both copies of every message to be settled")
        listeners.close_all()
        for env in envs:
            outcomes = sorted(recorder.outcomes_of(group, env.id))
            assert outcomes == ["duplicate", "ok"], f"{env.id}: {outcomes}"
            assert [x.n for x in effects.find(message_id=env.id)] == [n_of[env.id]], "not exactly one effect"
            assert store.inbox_contains(group, env.id)
        assert len(effects.find()) == len(envs)
        assert sorted(got.ids()) == sorted(e.id for e in envs)

        _each_handler_has_one_effect(broker, kit, listeners, recorder, store, effects)

    def test_23_metrics(
        self,
        broker: Broker,
        kit: EventKit,
        listeners: Listeners,
        recorder: HookRecorder,
        metrics_registry: CollectorRegistry,
    ) -> None:
        """The metrics plugin on an injected registry counts emitted, handled, retried and dead-lettered messages."""
        ping = kit.event_type()
        group = kit.name("g")
        name = kit.name("ping")
        got = Collector(fail=fail_when(lambda e, m: e.note == "bad"))
        listeners.start(broker, group, [(ping, got)], retry=RetryPolicy(attempts=2, initial=0.001, jitter=0))
        emitter = broker.emitter()
        ids = [emitter.emit(ping(n=i), key="k").id for i in range(5)]
        emitter.publish([Envelope(id=new_id(), name=name, payload=b"{broken", key="p")])
        emitter.emit(ping(n=99, note="bad"), key="k")
        got.wait_for(ids)
        wait_letters(recorder, group, 2)
        listeners.close_all()

        def sample(metric: str, **labels: str) -> float:
            return metrics_registry.get_sample_value(metric, labels) or 0.0

        assert sample("pubsubkit_emitted_total", name=name) == 7
        assert sample("pubsubkit_received_total", group=group) == 7
        assert sample("pubsubkit_handled_total", group=group, name=name, outcome="ok") == 5
        assert sample("pubsubkit_handled_total", group=group, name=name, outcome="retry") == 1
        assert sample("pubsubkit_handled_total", group=group, name=name, outcome="failed") == 1
        assert sample("pubsubkit_retries_total", group=group) == 1
        assert sample("pubsubkit_dead_lettered_total", group=group, reason="failed") == 1
        assert sample("pubsubkit_dead_lettered_total", group=group, reason="poison") == 1
        assert sample("pubsubkit_handler_seconds_count", group=group) == 7
        assert sample("pubsubkit_in_flight", group=group) == 0
