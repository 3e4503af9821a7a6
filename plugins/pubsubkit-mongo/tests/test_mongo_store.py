"""What the MongoDB store adds to the conformance suite: its URL and options, its indexes, its update semantics,
the outbox sequence under concurrent commits, the relay lease, the inbox TTL, and its errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from mongo_support import Databases
from pubsubkit_mongo import DEFAULT_INBOX_TTL, MongoStore
from pubsubkit_mongo._store import INBOX, META, OUTBOX

import pubsubkit
from pubsubkit.events import WIRE_NAME
from pubsubkit.testing import EventKit


@attrs.frozen
class Room:
    id: str
    city: str | None = None
    seats: int = 0
    label: str = ""
    tags: list[str] = attrs.field(factory=list)
    nights: int | None = None


@pytest.fixture
def open_stores(databases: Databases, kit: EventKit) -> Iterator[Callable[..., MongoStore]]:
    opened: list[MongoStore] = []

    def make(url: str | None = None, **options: Any) -> MongoStore:
        store = pubsubkit.open_store(url or databases.url(), codec=kit.codec, **options)
        assert isinstance(store, MongoStore)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


@pytest.fixture
def store(open_stores: Callable[..., MongoStore]) -> MongoStore:
    return open_stores()


@pytest.fixture
def rooms(store: MongoStore) -> pubsubkit.Collection[Room]:
    return store.collection("rooms", Room, indexes=["city"])


# --- URL and options (no server needed) -------------------------------------------------------------------


def test_url_and_options_without_connecting() -> None:
    """The database comes from the path (default pubsubkit); own options leave pymongo's query untouched."""
    store = pubsubkit.open_store("mongodb://127.0.0.1:1/app?retryWrites=false&inbox_ttl=60")
    assert isinstance(store, MongoStore)
    assert (store.options.database, store.options.inbox_ttl) == ("app", 60)
    assert store.options.client_url == "mongodb://127.0.0.1:1/app?retryWrites=false"
    # pymongo's 30 s for a server is long to wait, and without a socket timeout a hung server is waited for forever
    assert store.options.client_options == {"serverSelectionTimeoutMS": 5000, "socketTimeoutMS": 30_000}
    store.close()
    store.close()  # idempotent
    with pytest.raises(pubsubkit.Closed):
        store.collection("rooms", Room)

    store = pubsubkit.open_store("mongodb+srv://cluster.example.invalid", database="other", inbox_ttl="3600")
    assert isinstance(store, MongoStore)
    assert (store.options.database, store.options.inbox_ttl) == ("other", 3600)
    store.close()
    store = pubsubkit.open_store("mongodb://127.0.0.1:1", serverSelectionTimeoutMS=100)
    assert isinstance(store, MongoStore)
    assert (store.options.database, store.options.inbox_ttl) == ("pubsubkit", DEFAULT_INBOX_TTL)
    assert store.options.client_options == {"serverSelectionTimeoutMS": 100, "socketTimeoutMS": 30_000}
    store.close()
    store = pubsubkit.open_store("mongodb://127.0.0.1:1/?serverselectiontimeoutms=200&socketTimeoutMS=9000")
    assert isinstance(store, MongoStore)
    assert store.options.client_options == {}
    store.close()
    store = pubsubkit.open_store("mongodb://127.0.0.1:1/", timeoutMS=8000)  # pymongo's bound on a whole operation
    assert isinstance(store, MongoStore)
    assert store.options.client_options == {"serverSelectionTimeoutMS": 5000, "timeoutMS": 8000}
    store.close()


def test_config_errors_name_the_problem() -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("mongodb://127.0.0.1/bad.name", {}, "database name"),
        ("mongodb://127.0.0.1/app?inbox_ttl=soon", {}, "inbox_ttl"),
        ("mongodb://127.0.0.1/app", {"inbox_ttl": 0}, "inbox_ttl"),
        ("mongodb://127.0.0.1/app", {"no_such_option": 1}, "no_such_option"),
        ("mongodb://127.0.0.1/app?noSuchOption=1", {}, "Unknown option"),
        ("mongodb:///app", {}, "no host"),
    ]
    for url, options, words in cases:
        with pytest.raises(pubsubkit.ConfigError, match=words):
            pubsubkit.open_store(url, **options)


def test_unreachable_server_is_connection_lost() -> None:
    store = pubsubkit.open_store("mongodb://127.0.0.1:1/app", serverSelectionTimeoutMS=100)
    try:
        with pytest.raises(pubsubkit.ConnectionLost):
            store.ping()
        with pytest.raises(pubsubkit.ConnectionLost):
            store.collection("rooms", Room)
    finally:
        store.close()


# --- against the server -----------------------------------------------------------------------------------


def test_layout_and_indexes(store: MongoStore, rooms: pubsubkit.Collection[Room], databases: Databases) -> None:
    """Documents are keyed by _id; indexed fields get (field, _id) indexes; the inbox has a TTL index."""
    rooms.insert(Room("r1", city="Bonn", tags=["a"]))
    with store.unit_of_work() as uow:
        uow.mark_processed("g", "m1")
    store.collection("rooms", Room, indexes=["city", "seats"])  # one more index, the old one kept
    client = databases.raw_client()
    try:
        db = client[store.options.database]
        assert db["rooms"].find_one({"_id": "r1"}) == {
            "_id": "r1",
            "city": "Bonn",
            "seats": 0,
            "label": "",
            "tags": ["a"],
            "nights": None,
        }
        indexes = db["rooms"].index_information()
        assert indexes["pk_city"]["key"] == [("city", 1), ("_id", 1)]
        assert indexes["pk_seats"]["key"] == [("seats", 1), ("_id", 1)]
        assert db[INBOX].index_information()["pk_at"]["expireAfterSeconds"] == DEFAULT_INBOX_TTL
        assert {OUTBOX, INBOX, META} <= set(db.list_collection_names())
    finally:
        client.close()


def test_inbox_ttl_follows_the_last_store_opened(open_stores: Callable[..., MongoStore], databases: Databases) -> None:
    url = databases.url()
    open_stores(url).inbox_contains("g", "m")
    again = open_stores(url, inbox_ttl=120)
    again.inbox_contains("g", "m")
    client = databases.raw_client()
    try:
        assert client[again.options.database][INBOX].index_information()["pk_at"]["expireAfterSeconds"] == 120
    finally:
        client.close()


def test_update_semantics(rooms: pubsubkit.Collection[Room]) -> None:
    """Those of apply_update: missing counts as 0, set then inc, non-numbers refuse, NotFound before conditions."""
    rooms.insert(Room("r1", seats=5, label="x"))
    assert rooms.update("r1", set={"seats": 10}, inc={"seats": -3}).seats == 7
    with pytest.raises(pubsubkit.ConditionFailed, match="nights"):
        rooms.update("r1", inc={"nights": 2})  # null is not a number
    assert rooms.update("r1", set={"nights": 1}, inc={"nights": 1}, at_least={"nights": 2}).nights == 2
    with pytest.raises(pubsubkit.ConditionFailed, match="label"):
        rooms.update("r1", inc={"label": 1})
    with pytest.raises(pubsubkit.ConditionFailed, match="seats"):
        rooms.update("r1", set={"seats": 1}, at_least={"seats": 2})
    with pytest.raises(pubsubkit.NotFound):
        rooms.update("nope", set={"seats": 1}, at_least={"seats": 2})
    with pytest.raises(pubsubkit.ConditionFailed, match="city"):
        rooms.update("r1", set={"seats": 0}, expect={"city": "Bonn"})
    assert rooms.update("r1", expect={"city": None, "label": "x"}) == rooms.get("r1")  # a pure check
    assert rooms.get("r1") == Room("r1", seats=7, label="x", nights=2)


def test_find_is_exact_equality(rooms: pubsubkit.Collection[Room]) -> None:
    """A scalar does not match an array holding it, nor an array a longer one; id is a field like others."""
    for room in [Room("a", tags=["x"]), Room("b", tags=["x", "y"]), Room("c", label="x"), Room("d", tags=[])]:
        rooms.insert(room)
    assert [r.id for r in rooms.find(tags=["x"])] == ["a"]
    assert [r.id for r in rooms.find(tags=[])] == ["c", "d"]
    assert [r.id for r in rooms.find(label="x")] == ["c"]
    assert [r.id for r in rooms.find(id="b")] == ["b"]
    assert [r.id for r in rooms.page(limit=2, after="a").items] == ["b", "c"]


def test_concurrent_commits_number_the_outbox_in_commit_order(store: MongoStore, kit: EventKit) -> None:
    """Each thread's events keep their order; the numbers are 1..n without gaps (the counter serialises them)."""
    ping = kit.event_type("ping")
    rooms = store.collection("rooms", Room)
    threads, rounds = 6, 4

    def commit(t: int) -> None:
        for r in range(rounds):
            with store.unit_of_work() as uow:
                uow.put(rooms, Room(f"r{t}", seats=r))
                uow.emit(ping(n=10 * t + r), key=str(t))
                uow.emit(ping(n=10 * t + r), key=str(t))

    workers = [threading.Thread(target=commit, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    pending = store.outbox_pending(1000)
    assert [e.seq for e in pending] == list(range(1, 2 * threads * rounds + 1))
    for t in range(threads):
        mine = [e.envelope for e in pending if e.envelope.key == str(t)]
        assert [kit.codec.decode(env).n for env in mine] == [10 * t + r for r in range(rounds) for _ in (1, 2)]
    assert store.outbox_count() == 2 * threads * rounds
    store.outbox_mark_sent([e.seq for e in pending[:5]])
    assert [e.seq for e in store.outbox_pending(3)] == [6, 7, 8]


def test_relay_lease(store: MongoStore, open_stores: Callable[..., MongoStore]) -> None:
    other = open_stores(store.url)
    assert store.outbox_claim("a", 30)
    assert not other.outbox_claim("b", 30)
    assert store.outbox_claim("a", 0.0)  # renewed by its holder, this time already expired
    assert other.outbox_claim("b", 30)
    assert not store.outbox_claim("a", 30)


def test_inbox_prune(store: MongoStore) -> None:
    with store.unit_of_work() as uow:
        uow.mark_processed("g", "m1")
        uow.mark_processed("g", "m2")
    assert store.prune_inbox(3600) == 0
    assert store.prune_inbox(0) == 2
    assert not store.inbox_contains("g", "m1")


def test_closed_store(store: MongoStore, rooms: pubsubkit.Collection[Room]) -> None:
    rooms.insert(Room("r1"))
    store.close()
    with pytest.raises(pubsubkit.Closed):
        rooms.get("r1")
    with pytest.raises(pubsubkit.Closed):
        rooms.insert(Room("r2"))
    with pytest.raises(pubsubkit.Closed):
        store.outbox_pending(1)


def test_bad_collection_and_field_names(store: MongoStore) -> None:
    with pytest.raises(pubsubkit.ConfigError, match="collection name"):
        store.collection("pubsubkit.outbox", Room)

    @attrs.frozen
    class Dotted:
        id: str
        odd: int = attrs.field(default=0, metadata={WIRE_NAME: "a.b"})

    with pytest.raises(pubsubkit.ConfigError):
        store.collection("dotted", Dotted, indexes=["odd"])


def test_a_missing_field_counts_as_zero(
    store: MongoStore, rooms: pubsubkit.Collection[Room], databases: Databases
) -> None:
    """A document written before a field existed: increments and bounds treat the field as 0."""
    rooms.insert(Room("r1"))
    client = databases.raw_client()
    try:
        client[store.options.database]["rooms"].update_one({"_id": "r1"}, {"$unset": {"nights": ""}})
    finally:
        client.close()
    with pytest.raises(pubsubkit.ConditionFailed):
        rooms.update("r1", inc={"nights": 2}, at_least={"nights": 3})
    assert rooms.update("r1", inc={"nights": 2}, at_least={"nights": 2}).nights == 2
    assert rooms.update("r1", inc={"nights": -2}, at_least={"nights": 0}).nights == 0
