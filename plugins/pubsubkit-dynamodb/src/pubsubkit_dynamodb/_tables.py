"""Creating the tables on demand: idempotent, waiting until they (and their indexes) are ACTIVE.

Every table is on-demand capacity (``PAY_PER_REQUEST``). A collection's table is keyed by ``id``; each indexed
field adds a global secondary index ``<field>-index`` on its shadow attribute, with ``id`` as sort key so that
a query returns documents in id order. The outbox table is keyed by a constant partition ``p`` and the
sequence number ``seq``; the inbox table by consumer group ``g`` and message id ``m``, with the TTL attribute
``expires``; the meta table holds the outbox sequence counter and the relay lease.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs

from pubsubkit.errors import ConfigError, ConnectionLost
from pubsubkit.retry import Backoff, Retrier
from pubsubkit_dynamodb._errors import is_client_error, translate
from pubsubkit_dynamodb._options import Settings, index_name
from pubsubkit_dynamodb._values import SHADOW_PREFIX, Expr, from_av, index_key, shadow

_WAIT = 300.0  # seconds to wait for a table or an index to become ACTIVE
_ACTIVE_BACKOFF = Backoff(initial=0.05, multiplier=2.0, max_delay=2.0)  # between looks at its status


@attrs.frozen
class TableInfo:
    name: str
    indexes: frozenset[str]  # the indexed fields


def _key(name: str, kind: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": kind}


def _gsi(field: str) -> dict[str, Any]:
    return {
        "IndexName": index_name(field),
        "KeySchema": [_key(shadow(field), "HASH"), _key("id", "RANGE")],
        "Projection": {"ProjectionType": "ALL"},
    }


class Tables:
    """The tables of one store: what exists, with which indexes, created when missing."""

    def __init__(self, client: Any, settings: Settings, closing: threading.Event | None = None) -> None:
        self.client = client
        self.settings = settings
        self.closing = closing or threading.Event()  # the store's: closing it ends the wait for a table
        self._lock = threading.Lock()
        self._known: dict[str, TableInfo] = {}
        self._wanted: dict[str, set[str]] = {}  # indexes asked for, kept when the tables are forgotten
        self._system = False

    def forget(self) -> None:
        """Drop what is known (a table vanished): the next use looks again and creates what is missing."""
        with self._lock:
            self._known.clear()
            self._system = False

    # --- waiting and describing ----------------------------------------------------------------------------

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            table: dict[str, Any] = self.client.describe_table(TableName=name)["Table"]
            return table
        except Exception as exc:
            if is_client_error(exc, "ResourceNotFoundException"):
                return None
            raise translate(exc, f"describing DynamoDB table {name}") from exc

    def _wait_active(self, name: str) -> dict[str, Any]:
        waits = Retrier(_ACTIVE_BACKOFF, self.closing, deadline=time.monotonic() + _WAIT)
        while True:
            table = self._describe(name)
            if table is not None:
                statuses = [table.get("TableStatus")]
                statuses += [g.get("IndexStatus") for g in table.get("GlobalSecondaryIndexes", [])]
                if all(s == "ACTIVE" for s in statuses):
                    return table
            if not waits.wait():
                raise ConnectionLost(
                    f"DynamoDB table {name} did not become ACTIVE in {_WAIT:.0f}s (or the store closed)"
                )

    def _create(self, name: str, keys: Sequence[tuple[str, str, str]], gsis: Sequence[str] = ()) -> bool:
        """Create a table (keys: attribute, type, HASH/RANGE); False if it existed already."""
        if not self.settings.create_tables:
            raise ConfigError(
                f"DynamoDB table {name} does not exist and create_tables is off: "
                "create it with 'python -m pubsubkit_dynamodb create-tables URL'"
            )
        attributes = {a: t for a, t, _ in keys}
        attributes.update({shadow(f): "S" for f in gsis})
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in attributes.items()],
            "KeySchema": [_key(a, kind) for a, _, kind in keys],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if gsis:
            request["GlobalSecondaryIndexes"] = [_gsi(f) for f in gsis]
        try:
            self.client.create_table(**request)
            return True
        except Exception as exc:
            if is_client_error(exc, "ResourceInUseException"):
                return False  # created meanwhile by another process: wait for it like for ours
            raise translate(exc, f"creating DynamoDB table {name}") from exc

    # --- the system tables ---------------------------------------------------------------------------------

    def ensure_system(self) -> None:
        """The outbox, inbox and meta tables of the store, created if missing."""
        if self._system:
            return
        with self._lock:
            if self._system:
                return
            s = self.settings
            specs: list[tuple[str, list[tuple[str, str, str]]]] = [
                (s.outbox_table, [("p", "S", "HASH"), ("seq", "N", "RANGE")]),
                (s.inbox_table, [("g", "S", "HASH"), ("m", "S", "RANGE")]),
                (s.meta_table, [("name", "S", "HASH")]),
            ]
            for name, keys in specs:
                if self._describe(name) is None:
                    self._create(name, keys)
                self._wait_active(name)
            self._enable_ttl(s.inbox_table)
            self._system = True

    def _enable_ttl(self, name: str) -> None:
        try:
            current = self.client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                return
            self.client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
            )
        except Exception as exc:
            if is_client_error(exc, "ValidationException"):
                return  # already enabled, or being changed by another process
            raise translate(exc, f"enabling the TTL of DynamoDB table {name}") from exc

    # --- collections ---------------------------------------------------------------------------------------

    def known(self, collection: str) -> TableInfo | None:
        return self._known.get(collection)

    def ensure_collection(self, collection: str, indexes: Sequence[str]) -> TableInfo:
        """The collection's table with (at least) these indexes, created or extended if missing."""
        name = self.settings.table(collection)
        for field in indexes:
            index_name(field)
        info = self._known.get(collection)
        if info is not None and info.indexes.issuperset(indexes):
            return info
        with self._lock:
            wanted = self._wanted.setdefault(collection, set())
            wanted.update(indexes)
            indexes = sorted(wanted)
            table = self._describe(name)
            if table is None:
                self._create(name, [("id", "S", "HASH")], sorted(set(indexes)))
            table = self._wait_active(name)
            present = {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])}
            for field in sorted(set(indexes)):
                if index_name(field) not in present:
                    self._add_index(name, field)
            table = self._wait_active(name)
            fields = {
                g["KeySchema"][0]["AttributeName"][len(SHADOW_PREFIX) :]
                for g in table.get("GlobalSecondaryIndexes", [])
                if g["KeySchema"][0]["AttributeName"].startswith(SHADOW_PREFIX)
            }
            info = TableInfo(name, frozenset(fields))
            self._known[collection] = info
            return info

    def _add_index(self, name: str, field: str) -> None:
        """Add the index of ``field`` to an existing table, then give existing documents its shadow attribute."""
        if not self.settings.create_tables:
            raise ConfigError(f"DynamoDB table {name} has no index {index_name(field)} and create_tables is off")
        try:
            self.client.update_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": shadow(field), "AttributeType": "S"}],
                GlobalSecondaryIndexUpdates=[{"Create": _gsi(field)}],
            )
        except Exception as exc:
            if not is_client_error(exc, "ResourceInUseException", "ValidationException", "LimitExceededException"):
                raise translate(exc, f"adding index {index_name(field)} to DynamoDB table {name}") from exc
            # Being added by another process (or another index is being built): wait, then look again.
        self._wait_active(name)
        self._backfill(name, field)

    def _backfill(self, name: str, field: str) -> None:
        e = Expr()
        ident, f, sh = e.name("id"), e.name(field), e.name(shadow(field))
        request = e.request(
            TableName=name,
            ConsistentRead=True,
            FilterExpression=f"attribute_not_exists({sh})",
            ProjectionExpression=f"{ident}, {f}",
        )
        try:
            for page in self.client.get_paginator("scan").paginate(**request):
                for item in page.get("Items", []):
                    value = from_av(item[field]) if field in item else None
                    u = Expr()
                    update = u.request(
                        UpdateExpression=f"SET {u.name(shadow(field))} = {u.value({'S': index_key(value)})}",
                        ConditionExpression=f"attribute_exists({u.name('id')})",
                    )
                    try:
                        self.client.update_item(TableName=name, Key={"id": item["id"]}, **update)
                    except Exception as exc:
                        if not is_client_error(exc, "ConditionalCheckFailedException"):
                            raise  # deleted meanwhile: nothing to index
        except Exception as exc:
            raise translate(exc, f"indexing the documents of DynamoDB table {name}") from exc
