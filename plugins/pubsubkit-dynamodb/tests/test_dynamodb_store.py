"""The DynamoDB store beyond the conformance suite: tables, indexes, transaction limits, outbox counter, inbox TTL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import boto3
import pytest
from pubsubkit_dynamodb import MAX_TRANSACTION_ITEMS, DynamoStore, TransactionTooLarge, UnsupportedUnitOfWork
from pubsubkit_dynamodb.__main__ import main as cli_main

import pubsubkit
from pubsubkit.errors import ConditionFailed, ConfigError, ConnectionLost
from pubsubkit.testing import EventKit, unique_name
from pubsubkit.testing.helpers import run_threads


@attrs.frozen
class Doc:
    id: str
    city: str | None = None
    rank: int = 0
    at: datetime = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def prefix() -> str:
    return unique_name("ddb")


@pytest.fixture
def url(dynamodb_endpoint_url: str, prefix: str) -> str:
    return f"dynamodb://?region=us-east-1&endpoint_url={dynamodb_endpoint_url}&prefix={prefix}"


@pytest.fixture
def raw(dynamodb_endpoint_url: str) -> Iterator[Any]:
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_endpoint_url)
    yield client
    client.close()


@pytest.fixture
def kit() -> EventKit:
    return EventKit()


@pytest.fixture
def open_store(url: str, kit: EventKit) -> Iterator[Callable[..., DynamoStore]]:
    opened: list[DynamoStore] = []

    def make(**options: Any) -> DynamoStore:
        store = pubsubkit.open_store(url, codec=kit.codec, **options)
        assert isinstance(store, DynamoStore)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_dynamodb_url_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options come from the query or keywords; wrong ones are named; opening does not connect."""
    store = pubsubkit.open_store("dynamodb://?region=eu-west-1&endpoint_url=http://127.0.0.1:9&prefix=app")
    assert isinstance(store, DynamoStore)
    assert (store.settings.region, store.settings.prefix) == ("eu-west-1", "app")
    assert store.settings.table("events") == "app.events"
    store.close()
    store = pubsubkit.open_store("dynamodb://eu-central-2?prefix=me_")  # myevents' dbconnection form
    assert (store.settings.region, store.settings.prefix) == ("eu-central-2", "me_")
    store.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = pubsubkit.open_store("dynamodb://", inbox_ttl=60)
    assert (store.settings.endpoint_url, store.settings.inbox_ttl) == ("http://127.0.0.1:9", 60)
    with pytest.raises(ConnectionLost):
        store.ping()
    store.close()
    for bad, fragment in [
        ("dynamodb://?colour=blue", "colour"),
        ("dynamodb://?prefix=no/slash", "prefix"),
        ("dynamodb://myapp", "region"),
        ("dynamodb://eu-west-1/path", "region"),
        ("dynamodb://eu-west-1?region=us-east-1", "two regions"),
        ("dynamodb://?create_tables=maybe", "create_tables"),
    ]:
        with pytest.raises(ConfigError, match=fragment):
            pubsubkit.open_store(bad)


def test_dynamodb_tables_and_shadow_attributes(
    open_store: Callable[..., DynamoStore], raw: Any, prefix: str, url: str
) -> None:
    """A table per collection with a GSI per indexed field; documents are native attributes plus shadows."""
    store = open_store()
    docs = store.collection("places", Doc, indexes=["city"])
    docs.insert(Doc("a", city="Bonn", rank=3))
    table = raw.describe_table(TableName=f"{prefix}.places")["Table"]
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "city-index"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["ix#city", "id"]
    item = raw.get_item(TableName=f"{prefix}.places", Key={"id": {"S": "a"}})["Item"]
    assert item["city"] == {"S": "Bonn"}
    assert item["rank"] == {"N": "3"}
    assert item["ix#city"] == {"S": '"Bonn"'}
    assert docs.get("a") == Doc("a", city="Bonn", rank=3)

    assert cli_main(["create-tables", url, "places:city,rank", "other"]) == 0  # idempotent, adds an index
    for name in (f"{prefix}.places", f"{prefix}.other", f"{prefix}-outbox", f"{prefix}-inbox", f"{prefix}-meta"):
        assert raw.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    ttl = raw.describe_time_to_live(TableName=f"{prefix}-inbox")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires")
    indexes = {
        g["IndexName"] for g in raw.describe_table(TableName=f"{prefix}.places")["Table"]["GlobalSecondaryIndexes"]
    }
    assert indexes == {"city-index", "rank-index"}


def test_dynamodb_index_added_later_and_kept_in_step(open_store: Callable[..., DynamoStore]) -> None:
    """An index added to a filled collection covers its documents; increments keep the shadow attribute right."""
    store = open_store()
    plain = store.collection("late", Doc)
    for i in range(5):
        plain.insert(Doc(f"d{i}", city="X" if i % 2 else None, rank=i))
    indexed = store.collection("late", Doc, indexes=["city", "rank"])
    assert [d.id for d in indexed.find(city="X")] == ["d1", "d3"]
    assert [d.id for d in indexed.find(city=None)] == ["d0", "d2", "d4"]
    assert indexed.update("d1", inc={"rank": 10}).rank == 11
    assert [d.id for d in indexed.find(rank=11)] == ["d1"]
    assert indexed.find(rank=1) == []
    with store.unit_of_work() as uow:
        uow.update(indexed, "d2", inc={"rank": 1}, set={"city": "Y"})
        uow.update(indexed, "d3", set={"rank": 7})
    assert [d["rank"] for d in uow.results if d is not None] == [3, 7]
    assert [d.id for d in indexed.find(rank=3)] == ["d2"]
    assert [d.id for d in indexed.find(city="Y", rank=3)] == ["d2"]
    assert [d.id for d in indexed.page(limit=2, city=None).items] == ["d0", "d4"]


def test_dynamodb_transaction_limit(open_store: Callable[..., DynamoStore], kit: EventKit) -> None:
    """Past 100 writes a unit of work is refused before anything is sent; a document is written once per unit."""
    store = open_store()
    docs = store.collection("big", Doc)
    ping = kit.event_type("ping")
    uow = store.unit_of_work()
    for i in range(MAX_TRANSACTION_ITEMS):
        uow.insert(docs, Doc(f"d{i:03}"))
    uow.emit(ping(n=1))  # 100 documents + 1 outbox entry + the counter
    with pytest.raises(TransactionTooLarge, match="at most 100"):
        uow.commit()
    assert docs.find() == []
    assert store.outbox_count() == 0
    with store.unit_of_work() as uow:
        for i in range(MAX_TRANSACTION_ITEMS):
            uow.insert(docs, Doc(f"d{i:03}"))
    assert len(docs.find()) == MAX_TRANSACTION_ITEMS
    uow = store.unit_of_work()
    uow.update(docs, "d000", set={"rank": 1})
    uow.update(docs, "d000", inc={"rank": 1})
    with pytest.raises(UnsupportedUnitOfWork):
        uow.commit()
    assert docs.get("d000").rank == 0


def test_dynamodb_outbox_counter_orders_processes(open_store: Callable[..., DynamoStore], kit: EventKit) -> None:
    """Two stores (as two processes) emitting in turn: sequence numbers follow commit order, without gaps."""
    one, two = open_store(), open_store()
    ping = kit.event_type("ping")
    sent = []
    for i in range(6):
        store = (one, two)[i % 3 == 0]
        with store.unit_of_work() as uow:
            sent.append(uow.emit(ping(n=i)))
            if i % 2:
                sent.append(uow.emit(ping(n=100 + i)))
    pending = one.outbox_pending(100)
    assert [e.envelope for e in pending] == sent
    assert [e.seq for e in pending] == list(range(1, len(sent) + 1))
    assert [e.seq for e in two.outbox_pending(3)] == [1, 2, 3]
    one.outbox_mark_sent([1, 2, 3])
    assert [e.seq for e in two.outbox_pending(100)] == list(range(4, len(sent) + 1))
    assert two.outbox_count() == len(sent) - 3

    assert one.outbox_claim("relay-a", 60)
    assert not two.outbox_claim("relay-b", 60)
    assert one.outbox_claim("relay-a", 0.05)  # renewed by its owner, for a moment
    time.sleep(0.2)
    assert two.outbox_claim("relay-b", 10)  # expired: taken over
    assert not one.outbox_claim("relay-a", 60)


def test_dynamodb_inbox_ttl_and_prune(open_store: Callable[..., DynamoStore], raw: Any, prefix: str) -> None:
    """Inbox records carry the TTL attribute (epoch seconds); prune_inbox deletes old ones at once."""
    store = open_store(inbox_ttl=3600)
    group = unique_name("g")
    with store.unit_of_work() as uow:
        uow.mark_processed(group, "m1")
    item = raw.get_item(TableName=f"{prefix}-inbox", Key={"g": {"S": group}, "m": {"S": "m1"}})["Item"]
    assert abs(int(item["expires"]["N"]) - (time.time() + 3600)) < 120
    no_ttl = open_store(inbox_ttl=0)
    with no_ttl.unit_of_work() as uow:
        uow.mark_processed(group, "m2")
    item = raw.get_item(TableName=f"{prefix}-inbox", Key={"g": {"S": group}, "m": {"S": "m2"}})["Item"]
    assert "expires" not in item
    assert store.prune_inbox(3600) == 0
    assert store.prune_inbox(0) == 2
    assert not store.inbox_contains(group, "m1")


def test_dynamodb_vanished_table_is_recreated(open_store: Callable[..., DynamoStore], raw: Any, prefix: str) -> None:
    """A table deleted under a running store (an emulator restart) fails one call, then is created again."""
    store = open_store()
    docs = store.collection("gone", Doc, indexes=["city"])
    docs.insert(Doc("a", city="Z"))
    raw.delete_table(TableName=f"{prefix}.gone")
    with pytest.raises(ConnectionLost):
        docs.find_one("a")
    assert docs.find_one("a") is None
    docs.insert(Doc("b", city="Z"))
    assert [d.id for d in docs.find(city="Z")] == ["b"]


def test_dynamodb_create_tables_off(url: str, kit: EventKit) -> None:
    """With create_tables=false a missing table is a ConfigError naming the command that creates it."""
    store = pubsubkit.open_store(url + "&create_tables=false", codec=kit.codec)
    try:
        with pytest.raises(ConfigError, match="create-tables"):
            store.collection("missing", Doc)
    finally:
        store.close()


def test_dynamodb_concurrent_bookings_in_units_of_work(open_store: Callable[..., DynamoStore], kit: EventKit) -> None:
    """Bounded decrements inside transactions with an insert and an event: exactly the bound is booked."""
    store = open_store()
    seats = store.collection("shows", Doc)
    bookings = store.collection("bookings", Doc, indexes=["city"])
    booked = kit.event_type("booked")
    seats.insert(Doc("show", rank=10))
    outcomes: list[bool] = []

    def book(i: int) -> None:
        try:
            with store.unit_of_work() as uow:
                uow.update(seats, "show", inc={"rank": -2}, at_least={"rank": 0})
                uow.insert(bookings, Doc(f"b{i:02}", city="show"))
                uow.emit(booked(n=i))
        except ConditionFailed:
            outcomes.append(False)
        else:
            outcomes.append(True)

    run_threads(12, book)
    assert sorted(outcomes) == [False] * 7 + [True] * 5
    assert seats.get("show").rank == 0
    assert len(bookings.find(city="show")) == 5
    pending = store.outbox_pending(100)
    assert [e.seq for e in pending] == [1, 2, 3, 4, 5]
    assert sorted(f"b{kit.codec.decode(e.envelope).n:02}" for e in pending) == sorted(d.id for d in bookings.find())


def test_dynamodb_lone_write_sent_twice_applies_once(open_store: Callable[..., DynamoStore]) -> None:
    """A lone write that botocore sends again after its response was lost reports success, not a failed condition."""
    store = open_store()
    docs = store.collection("twice", Doc)
    resent: list[str] = []

    def resend_once(attempts: int, caught_exception: Any, operation: Any, **kwargs: Any) -> float | None:
        writes = ("PutItem", "UpdateItem", "DeleteItem")
        if attempts == 1 and caught_exception is None and operation.name in writes:  # act as if the reply was lost
            resent.append(operation.name)
            return 0.0
        return None

    store.client.meta.events.register("needs-retry.dynamodb", resend_once)
    docs.insert(Doc("a", rank=1))
    assert docs.update("a", set={"rank": 2}, expect={"rank": 1}).rank == 2
    with store.unit_of_work() as uow:
        uow.mark_processed("g", "m")
    docs.delete("a")
    assert resent == ["PutItem", "UpdateItem", "PutItem", "DeleteItem"]
    assert docs.find_one("a") is None
    assert store.inbox_contains("g", "m")


@attrs.frozen
class _Http:
    """The HTTP side of an answer made up by a before-call hook (botocore reads only these)."""

    status_code: int = 400
    headers: dict[str, str] = attrs.field(factory=dict)


def test_dynamodb_conflicts_are_sent_again(open_store: Callable[..., DynamoStore], kit: EventKit) -> None:
    """A transaction cancelled by TransactionConflict and a lone write refused by TransactionConflictException
    (what DynamoDB answers when another transaction holds the item) are sent again and applied once."""
    store = open_store()
    docs = store.collection("conflicts", Doc)
    ping = kit.event_type("ping")
    docs.insert(Doc("a", rank=1))
    refused: list[str] = []

    def conflict_once(model: Any, params: dict[str, Any], **kwargs: Any) -> tuple[_Http, dict[str, Any]] | None:
        if model.name in refused:
            return None
        refused.append(model.name)
        if model.name == "TransactWriteItems":
            items = json.loads(params["body"])["TransactItems"]  # params: the request as it would be sent
            codes = ["TransactionConflict"] + ["None"] * (len(items) - 1)
            error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
            return _Http(), {"Error": error, "CancellationReasons": [{"Code": c} for c in codes]}
        return _Http(), {"Error": {"Code": "TransactionConflictException", "Message": "in a transaction"}}

    for operation in ("TransactWriteItems", "UpdateItem"):
        store.client.meta.events.register(f"before-call.dynamodb.{operation}", conflict_once)
    with store.unit_of_work() as uow:
        uow.update(docs, "a", inc={"rank": 1})
        uow.emit(ping(n=1))
    assert docs.update("a", inc={"rank": 1}).rank == 3
    assert refused == ["TransactWriteItems", "UpdateItem"]
    assert [e.seq for e in store.outbox_pending(10)] == [1]
