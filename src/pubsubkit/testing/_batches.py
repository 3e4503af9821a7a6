"""Messaging cases 32 to 34: batch handlers (``Listener.on_batch``): lists acknowledged together, retries and the
rule for a poison message inside a batch, and the inbox of a batch."""

from __future__ import annotations

import threading
from typing import Any

import attrs

from pubsubkit.api import Broker
from pubsubkit.batch import Batch
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.errors import FatalError
from pubsubkit.store import Store
from pubsubkit.testing._base import FAST_RETRY, Listeners, MessagingFixtures
from pubsubkit.testing._delivery import emit_in_chunks
from pubsubkit.testing._failures import Boom, stored_letters, wait_letters
from pubsubkit.testing.helpers import Collector, EventKit, HookRecorder, Sizes, duplicates, wait_until

__all__ = ["BatchCases", "BatchCollector"]

#: The batch size of the cases: small, so that every case runs many batches.
MAX_SIZE = 20
MAX_WAIT = 0.05


@attrs.frozen
class Call:
    """One call of a batch handler, as :class:`BatchCollector` saw it."""

    events: list[Any]
    ids: list[str]
    attempt: int


class BatchCollector:
    """A batch handler recording every call that returned; thread-safe. ``fail(events, batch)`` may raise first."""

    def __init__(self, fail: Any = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.failed: list[Call] = []
        self._fail = fail

    def __call__(self, events: list[Any], batch: Batch) -> None:
        assert isinstance(events, list)
        assert len(events) == len(batch)
        call = Call(list(events), batch.ids, batch.attempt)
        if self._fail is not None:
            try:
                self._fail(events, batch)
            except BaseException:
                with self._lock:
                    self.failed.append(call)
                raise
        with self._lock:
            self.calls.append(call)

    def ids(self) -> list[str]:
        with self._lock:
            return [i for c in self.calls for i in c.ids]

    def wait_for(self, ids: list[str]) -> None:
        wanted = set(ids)
        wait_until(lambda: wanted <= set(self.ids()), what=lambda: f"{len(wanted - set(self.ids()))} never handled")


@attrs.define
class _Tally:
    id: str
    n: int = 0


class BatchCases(MessagingFixtures):
    def test_32_batch_handler(self, broker: Broker, kit: EventKit, listeners: Listeners, sizes: Sizes) -> None:
        """A batch handler gets lists of at most ``max_size`` events, each message once, in order per key where the
        broker keeps it; a partial batch runs after ``max_wait``; the batches were acknowledged: a listener of
        the group started afterwards gets none of them again."""
        ping, sentinel = kit.event_type(), kit.event_type("sentinel")
        group = kit.name("g")
        got = BatchCollector()
        options = {"max_in_flight": 100, "concurrency": 2}
        listener = listeners.start(broker, group, [], batches=[(ping, got, MAX_SIZE, MAX_WAIT)], **options)
        keys = [f"key{k}" for k in range(8)]
        envs = emit_in_chunks(broker.emitter(), [(ping(n=i, key=keys[i % 8]), keys[i % 8]) for i in range(sizes.bulk)])
        got.wait_for([e.id for e in envs])
        tail = broker.emitter().emit_many([(ping(n=sizes.bulk + i), "tail") for i in range(3)])
        got.wait_for([e.id for e in tail])  # fewer than max_size: they ran after max_wait
        listeners.close(listener)

        ids = got.ids()
        assert not duplicates(ids), "a message was handled twice without a failure"
        assert sorted(ids) == sorted(e.id for e in [*envs, *tail])
        assert all(1 <= len(c.events) <= MAX_SIZE for c in got.calls)
        assert any(len(c.events) > 1 for c in got.calls), "no call got more than one event"
        assert all(c.attempt == 1 for c in got.calls)
        if broker.capabilities.ordered:
            for key in keys:
                seen = [e.n for c in got.calls for e in c.events if e.key == key]
                assert seen == sorted(seen), f"events of {key} were handled out of order"

        again = Collector()
        listeners.start(broker, group, [(sentinel, again), (ping, again)])
        last = broker.emitter().emit(sentinel(n=0))
        again.wait_for([last.id])
        assert again.ids() == [last.id], "a message of an acknowledged batch came back"

    def test_33_batch_retries_and_poison(
        self,
        broker: Broker,
        kit: EventKit,
        listeners: Listeners,
        recorder: HookRecorder,
    ) -> None:
        """A failing batch is retried as a whole; after its last attempt (or a fatal error) each of its messages
        is handled alone: the bad ones are dead-lettered, each with its own error, the others acknowledged.
        An undecodable message is dead-lettered on its own as poison and costs its batch nothing."""
        ping = kit.event_type()
        group = kit.name("g")

        def fail(events: list[Any], batch: Batch) -> None:
            if batch.attempt == 1:
                raise Boom("every batch fails its first attempt")
            for e in events:
                if e.n == 7:
                    raise Boom("seven is refused")
                if e.n == 8:
                    raise FatalError("eight is fatal")

        got = BatchCollector(fail)
        listeners.start(broker, group, [], batches=[(ping, got, MAX_SIZE, MAX_WAIT)], concurrency=1)
        emitter = broker.emitter()
        goods = [e.id for e in emitter.emit_many([(ping(n=i), "k") for i in range(7)])]
        bad = emitter.emit_many([(ping(n=7), "k"), (ping(n=8), "k")])
        poison = Envelope(id=new_id(), name=kit.name("ping"), payload=b"{not json", key="k")
        emitter.publish([poison])
        goods += [e.id for e in emitter.emit_many([(ping(n=i), "k") for i in range(9, 30)])]
        got.wait_for(goods)
        letters = {x.envelope.id: x for x in wait_letters(recorder, group, 3) if x.envelope is not None}
        listeners.close_all()

        assert sorted(got.ids()) == sorted(goods), "a good message was lost, or handled twice after success"
        assert all(c.attempt >= 2 for c in got.calls if len(c.events) > 1)
        assert sorted(letters) == sorted([bad[0].id, bad[1].id, poison.id])
        assert (letters[poison.id].reason, letters[poison.id].attempts) == ("poison", 1)
        assert letters[bad[0].id].reason == "failed"
        assert "seven is refused" in letters[bad[0].id].error
        assert letters[bad[0].id].attempts == FAST_RETRY.attempts + 1  # every call that included it
        assert letters[bad[1].id].reason == "fatal"
        assert "eight is fatal" in letters[bad[1].id].error
        for i in goods:
            assert recorder.outcomes_of(group, i)[-1] == "ok"
        if broker.capabilities.dead_letter_store:
            stored = stored_letters(broker, group, 3)
            assert sorted(x.reason for x in stored) == ["failed", "fatal", "poison"]

    def test_34_batch_inbox(
        self, broker: Broker, kit: EventKit, listeners: Listeners, recorder: HookRecorder, store: Store
    ) -> None:
        """A batch writing through ``batch.unit_of_work()`` has one effect per message: a message delivered twice
        adds nothing the second time, and a batch that failed before its commit wrote nothing."""
        ping = kit.event_type()
        group = kit.name("g")
        tallies = store.collection(kit.name("tallies"), _Tally)
        tallies.insert(_Tally("all"))

        def write(events: list[Any], batch: Batch) -> None:
            with batch.unit_of_work() as uow:
                uow.update(tallies, "all", inc={"n": len(events)})
            if batch.attempt == 1 and len(events) > 1:
                raise Boom("after the commit: the retry must find the batch in the inbox")

        got = BatchCollector(write)
        listeners.start(broker, group, [], batches=[(ping, got, MAX_SIZE, MAX_WAIT)], store=store, concurrency=2)
        emitter = broker.emitter()
        envs = [emitter.envelope(ping(n=i), key=f"k{i % 3}") for i in range(40)]
        for i in range(0, len(envs), 10):
            emitter.publish(envs[i : i + 10])
            emitter.publish(envs[i : i + 10])  # every message twice
        wait_until(
            lambda: (
                all(set(recorder.outcomes_of(group, e.id)) & {"ok", "duplicate"} for e in envs)
                and tallies.get("all").n >= len(envs)
            ),
            what="every message to be handled",
        )
        settled = ("ok", "duplicate")
        wait_until(
            lambda: all(sum(o in settled for o in recorder.outcomes_of(group, e.id)) >= 2 for e in envs),
            what="both copies of every message to be settled",
        )
        listeners.close_all()
        assert tallies.get("all").n == len(envs), "a message had more or less than one effect"
        for env in envs:
            assert store.inbox_contains(group, env.id)
            assert "failed" not in recorder.outcomes_of(group, env.id)
