"""The repository cases (docs/conformance.md), for every store backend.

>>> class TestSqliteRepository(RepositorySuite):
...     @pytest.fixture
...     def store_url(self, tmp_path):
...         return f"sqlite:///{tmp_path}/state.db"

Optional fixtures: ``other_store_url`` (a second, separate store, for the isolation case) and
``relay_broker_url`` (where the outbox relay publishes; an in-process broker by default).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pluggy
import pytest
from prometheus_client import CollectorRegistry

from pubsubkit.api import Broker, open_broker, open_store
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.errors import AlreadyProcessed, ConditionFailed, DuplicateError, NotFound
from pubsubkit.outbox import OutboxRelay
from pubsubkit.plugin import get_plugin_manager
from pubsubkit.store import Collection, Store
from pubsubkit.testing._base import CommonFixtures, Listeners
from pubsubkit.testing.helpers import Collector, EventKit, Sizes, run_threads, unique_name

__all__ = ["RepositorySuite", "Seat", "Venue"]


@attrs.frozen
class Seat:
    row: str
    number: int


@attrs.frozen
class Venue:
    """A document with the shapes stores must keep: datetimes, nested lists, optional and boolean fields."""

    id: str
    name: str
    opens_at: datetime
    city: str | None = None
    capacity: int = 0
    seats_left: int = 0
    version: int = 1
    vip: bool = False
    tags: list[str] = attrs.field(factory=list)
    seats: list[Seat] = attrs.field(factory=list)
    grid: list[list[int]] = attrs.field(factory=list)
    closes_at: datetime | None = None


class Crash(Exception):
    """Raised inside a unit of work to abandon it."""


def venue(**fields: Any) -> Venue:
    values: dict[str, Any] = {"id": new_id(), "name": "Halle ü", "opens_at": datetime(2026, 5, 1, 20, tzinfo=UTC)}
    values.update(fields)
    return Venue(**values)


def _failed_units_change_nothing(
    store: Store, venues: Collection[Venue], booked: type[Any], v: Venue, sent: list[Envelope]
) -> None:
    """A unit of work that fails on commit (a duplicate, a condition) or raises inside changes nothing."""

    def nothing_changed() -> None:
        assert [e.envelope for e in store.outbox_pending(100)] == sent
        assert venues.find() == [v]

    uow = store.unit_of_work()
    uow.insert(venues, venue())
    uow.emit(booked(n=-1), key="venue")
    uow.insert(venues, v)
    with pytest.raises(DuplicateError):
        uow.commit()
    nothing_changed()
    uow = store.unit_of_work()
    uow.emit(booked(n=-2), key="venue")
    uow.update(venues, v.id, set={"name": "x"}, expect={"version": 99})
    with pytest.raises(ConditionFailed):
        uow.commit()
    nothing_changed()

    def crash_inside() -> None:
        with store.unit_of_work() as uow:
            uow.insert(venues, venue())
            uow.emit(booked(n=-3), key="venue")
            raise Crash

    with pytest.raises(Crash):
        crash_inside()
    nothing_changed()


def _relay_what_is_pending(
    broker: Broker, store: Store, metrics_registry: CollectorRegistry, got: Collector, sent: list[Envelope]
) -> OutboxRelay:
    """A relay of ``store`` publishes its outbox (two at a time), with its metrics; returns the relay."""
    relay = broker.relay(store, batch_size=2)

    def sample(name: str) -> float | None:
        return metrics_registry.get_sample_value(name)

    assert relay.relay_once() == 2
    assert (sample("pubsubkit_outbox_relayed_total"), sample("pubsubkit_outbox_pending")) == (2, len(sent) - 2)
    relay.drain()
    got.wait_for(e.id for e in sent)
    assert store.outbox_count() == 0
    assert relay.relay_once() == 0
    assert (sample("pubsubkit_outbox_relayed_total"), sample("pubsubkit_outbox_pending")) == (len(sent), 0)
    return relay


class RepositorySuite(CommonFixtures):
    """Subclass with a ``store_url`` fixture; the cases run against that store."""

    @pytest.fixture
    def store_url(self) -> str:
        pytest.fail("the test class must define a store_url fixture returning the URL of the store under test")

    @pytest.fixture
    def other_store_url(self) -> str:
        """A second store that must not see the first one's data (another file, database or table prefix)."""
        pytest.skip("define an other_store_url fixture (a second, separate store) to run this case")

    @pytest.fixture
    def relay_broker_url(self) -> str:
        return f"memory://{unique_name('relay')}"

    @pytest.fixture
    def metrics_registry(self) -> CollectorRegistry:
        return CollectorRegistry()

    @pytest.fixture
    def pm(self, metrics_registry: CollectorRegistry) -> pluggy.PluginManager:
        return get_plugin_manager(metrics_registry=metrics_registry)

    @pytest.fixture
    def open_stores(self, pm: pluggy.PluginManager, kit: EventKit) -> Iterator[Callable[[str], Store]]:
        opened: list[Store] = []

        def make(url: str) -> Store:
            s = open_store(url, pm=pm, codec=kit.codec)
            opened.append(s)
            return s

        yield make
        for s in reversed(opened):
            s.close()

    @pytest.fixture
    def store(self, store_url: str, open_stores: Callable[[str], Store]) -> Store:
        return open_stores(store_url)

    @pytest.fixture
    def venues(self, store: Store, kit: EventKit) -> Collection[Venue]:
        return store.collection(kit.name("venues"), Venue, indexes=["city"])

    def test_r1_round_trip(self, venues: Collection[Venue]) -> None:
        """insert / get / put / delete keep every field: datetimes with offsets, nested lists, optionals."""
        v = venue(
            opens_at=datetime(2026, 5, 1, 20, 0, 0, 123456, tzinfo=UTC),
            closes_at=datetime(2026, 5, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            tags=["a", "ü"],
            seats=[Seat("A", 1), Seat("B", 2)],
            grid=[[1, 2], [], [3]],
            vip=True,
        )
        assert venues.insert(v) == v
        got = venues.get(v.id)
        assert got == v
        assert got.closes_at is not None
        assert got.closes_at.utcoffset() == timedelta(hours=2)
        assert got.opens_at.tzinfo is not None

        changed = attrs.evolve(v, name="renamed", city="Berlin", seats=[], closes_at=None, vip=False)
        assert venues.put(changed) == changed
        assert venues.get(v.id) == changed
        created = venue(name="new by put")
        venues.put(created)
        assert venues.get(created.id) == created

        venues.delete(v.id)
        with pytest.raises(NotFound):
            venues.get(v.id)
        assert venues.find_one(v.id) is None
        with pytest.raises(NotFound):
            venues.delete(v.id)
        venues.delete(v.id, must_exist=False)
        assert venues.get(created.id) == created

    def test_r2_duplicate_and_missing(self, venues: Collection[Venue]) -> None:
        """Inserting an existing id raises DuplicateError and changes nothing; missing ids raise NotFound."""
        v = venues.insert(venue())
        with pytest.raises(DuplicateError):
            venues.insert(attrs.evolve(v, name="impostor"))
        assert venues.get(v.id) == v
        missing = new_id()
        with pytest.raises(NotFound):
            venues.get(missing)
        with pytest.raises(NotFound):
            venues.update(missing, set={"name": "x"})
        assert venues.find_one(missing) is None

    def test_r3_find_and_page(self, store: Store, venues: Collection[Venue], sizes: Sizes) -> None:
        """Find by field equality (indexed or not) returns exactly the matches, in id order, page by page."""
        n = sizes.documents
        cities = ["Aachen", "Aachen", "Bonn", None]
        days = [datetime(2026, 5, d, 20, 0, 0, 5, tzinfo=UTC) for d in (1, 2, 3)]
        docs = [venue(city=cities[i % 4], capacity=i % 7, vip=i % 5 == 0, opens_at=days[i % 3]) for i in range(n)]
        for i in range(0, n, 100):  # 100 writes: the most one DynamoDB transaction takes
            with store.unit_of_work() as uow:
                for d in docs[i : i + 100]:
                    uow.insert(venues, d)

        def ids(pred: Callable[[Venue], bool]) -> list[str]:
            return sorted(d.id for d in docs if pred(d))

        assert [d.id for d in venues.find(city="Aachen")] == ids(lambda d: d.city == "Aachen")
        assert [d.id for d in venues.find(city=None)] == ids(lambda d: d.city is None)
        assert [d.id for d in venues.find(city="Köln")] == []
        assert [d.id for d in venues.find(capacity=3)] == ids(lambda d: d.capacity == 3)
        assert [d.id for d in venues.find(vip=True, city="Bonn")] == ids(lambda d: d.vip and d.city == "Bonn")
        assert [d.id for d in venues.find(opens_at=days[1])] == ids(lambda d: d.opens_at == days[1])
        assert [d.id for d in venues.iter(page_size=50)] == ids(lambda d: True)

        expected = ids(lambda d: d.city == "Aachen")
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            page = venues.page(limit=37, after=after, city="Aachen")
            pages.append([d.id for d in page.items])
            assert all(d.city == "Aachen" for d in page.items)
            if page.next is None:
                break
            assert page.next == page.items[-1].id
            assert len(pages) <= n, "paging does not advance"
            after = page.next
        assert [i for p in pages for i in p] == expected
        assert len(pages) == math.ceil(len(expected) / 37)
        assert all(len(p) == 37 for p in pages[:-1])

    def test_r4_conditional_update(self, venues: Collection[Venue], sizes: Sizes) -> None:
        """Compare-and-set on a version; a bounded decrement under concurrent writers never passes its bound."""
        v = venues.insert(venue(seats_left=30))
        updated = venues.update(v.id, set={"name": "b", "version": 2}, expect={"version": 1})
        assert (updated.name, updated.version) == ("b", 2)
        with pytest.raises(ConditionFailed):
            venues.update(v.id, set={"name": "c", "version": 2}, expect={"version": 1})
        assert venues.get(v.id) == updated
        with pytest.raises(ConditionFailed):
            venues.update(v.id, inc={"seats_left": -31}, at_least={"seats_left": 0})
        assert venues.get(v.id).seats_left == 30

        lock = threading.Lock()
        taken: list[int] = []
        refused: list[int] = []

        def book(i: int) -> None:
            for _ in range(2):
                try:
                    venues.update(v.id, inc={"seats_left": -1}, at_least={"seats_left": 0})
                except ConditionFailed:
                    with lock:
                        refused.append(i)
                else:
                    with lock:
                        taken.append(i)

        run_threads(sizes.writers, book)
        assert len(taken) == 30, f"{len(taken)} seats taken of 30"
        assert len(refused) == sizes.writers * 2 - 30
        assert venues.get(v.id).seats_left == 0

        def count_up(i: int) -> None:
            while True:
                cur = venues.get(v.id)
                try:
                    venues.update(
                        v.id,
                        set={"capacity": cur.capacity + 1, "version": cur.version + 1},
                        expect={"version": cur.version},
                    )
                    return
                except ConditionFailed:
                    continue

        run_threads(sizes.writers, count_up)
        final = venues.get(v.id)
        assert (final.capacity, final.version) == (sizes.writers, 2 + sizes.writers), "an update was lost"

    def test_r5_unit_of_work_and_outbox(
        self,
        store_url: str,
        store: Store,
        venues: Collection[Venue],
        open_stores: Callable[[str], Store],
        relay_broker_url: str,
        pm: pluggy.PluginManager,
        metrics_registry: CollectorRegistry,
        kit: EventKit,
    ) -> None:
        """Documents and events commit together or not at all; after a crash the relay publishes them in order."""
        booked = kit.event_type("booked")
        v = venue()
        with store.unit_of_work() as uow:
            uow.insert(venues, v)
            sent = [uow.emit(booked(n=i, key="venue"), key="venue", headers={"x-n": str(i)}) for i in range(2)]
        assert venues.get(v.id) == v
        pending = store.outbox_pending(100)
        assert [e.envelope for e in pending] == sent
        _failed_units_change_nothing(store, venues, booked, v, sent)

        for round_ in range(3):
            with store.unit_of_work() as uow:
                uow.update(venues, v.id, inc={"capacity": 1})
                sent += [uow.emit(booked(n=10 * round_ + i), key="venue") for i in range(3)]
        store.close()  # the process dies after committing, before any relay ran

        reopened = open_stores(store_url)
        assert reopened.outbox_count() == len(sent)
        broker = open_broker(relay_broker_url, pm=pm, codec=kit.codec)
        listeners = Listeners()
        try:
            got = Collector()
            listeners.start(broker, kit.name("g"), [(booked, got)])
            relay = _relay_what_is_pending(broker, reopened, metrics_registry, got, sent)
            relay.start()  # a running relay is woken by commits
            with reopened.unit_of_work() as uow:
                uow.update(reopened.collection(venues.name, Venue), v.id, inc={"capacity": 1})
                sent.append(uow.emit(booked(n=99), key="venue"))
            got.wait_for([sent[-1].id])
            relay.stop()
            listeners.close_all()
            assert got.ids() == [e.id for e in sent], "events were not published once each in commit order"
            assert [r.envelope.payload for r in got.snapshot()] == [e.payload for e in sent]
            assert got.snapshot()[1].envelope.headers.get("x-n") == "1"
            assert reopened.collection(venues.name, Venue).get(v.id).capacity == 4
        finally:
            listeners.close_all()
            broker.close()

    def test_r6_inbox(self, store: Store, venues: Collection[Venue], kit: EventKit) -> None:
        """Recording a processed message id twice is detected, atomically with the unit of work's writes."""
        group, other_group = kit.name("group"), kit.name("other")
        mid = new_id()
        assert not store.inbox_contains(group, mid)
        first = venue()
        with store.unit_of_work() as uow:
            uow.mark_processed(group, mid)
            uow.insert(venues, first)
        assert store.inbox_contains(group, mid)
        assert not store.inbox_contains(other_group, mid)

        second = venue()
        uow = store.unit_of_work()
        uow.mark_processed(group, mid)
        uow.insert(venues, second)
        with pytest.raises(AlreadyProcessed):
            uow.commit()
        assert venues.find_one(second.id) is None
        assert issubclass(AlreadyProcessed, DuplicateError)

        with store.unit_of_work() as uow:
            uow.mark_processed(other_group, mid)
        assert store.inbox_contains(other_group, mid)
        twice = new_id()
        uow = store.unit_of_work()
        uow.mark_processed(group, twice)
        uow.mark_processed(group, twice)
        with pytest.raises(AlreadyProcessed):
            uow.commit()
        assert not store.inbox_contains(group, twice)

    def test_r7_isolation(
        self,
        store: Store,
        other_store_url: str,
        open_stores: Callable[[str], Store],
        kit: EventKit,
    ) -> None:
        """Collections are isolated by name, stores by URL: documents, inbox and outbox."""
        one = store.collection(kit.name("one"), Venue)
        two = store.collection(kit.name("two"), Venue, indexes=["city"])
        shared_id = new_id()
        a = one.insert(venue(id=shared_id, name="in one", city="X"))
        b = two.insert(venue(id=shared_id, name="in two", city="X"))
        assert one.get(shared_id) == a
        assert two.get(shared_id) == b
        assert one.find(city="X") == [a]
        one.delete(shared_id)
        assert two.get(shared_id) == b

        other = open_stores(other_store_url)
        elsewhere = other.collection(kit.name("two"), Venue, indexes=["city"])
        assert elsewhere.find_one(shared_id) is None
        assert elsewhere.find(city="X") == []
        c = elsewhere.insert(venue(id=shared_id, name="elsewhere"))
        assert two.get(shared_id) == b
        assert elsewhere.get(shared_id) == c

        group, mid = kit.name("g"), new_id()
        booked = kit.event_type("booked")
        with store.unit_of_work() as uow:
            uow.mark_processed(group, mid)
            uow.emit(booked(n=1))
        assert not other.inbox_contains(group, mid)
        assert other.outbox_pending(10) == []
