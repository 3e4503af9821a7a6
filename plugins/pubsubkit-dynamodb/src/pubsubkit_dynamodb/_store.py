"""The DynamoDB store: documents, units of work in TransactWriteItems, the outbox and the inbox."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pubsubkit.envelope import new_id
from pubsubkit.errors import (
    AlreadyProcessed,
    Closed,
    ConditionFailed,
    ConfigError,
    ConnectionLost,
    DuplicateError,
    NotFound,
    PubsubkitError,
)
from pubsubkit.store import Delete, Doc, Emit, Insert, MarkProcessed, Operation, Put, Update
from pubsubkit.store import apply_update as _apply_update
from pubsubkit_dynamodb import _writes as w
from pubsubkit_dynamodb._boxes import BoxesStore
from pubsubkit_dynamodb._errors import (
    RETRYABLE,
    TransactionTooLarge,
    UnsupportedUnitOfWork,
    code_of,
    reasons,
)
from pubsubkit_dynamodb._options import index_name
from pubsubkit_dynamodb._tables import TableInfo
from pubsubkit_dynamodb._values import SHADOW_PREFIX, Expr, index_key, item_to_doc, shadow

MAX_TRANSACTION_ITEMS = 100
_ATTEMPTS = 200  # rounds of a write lost to a race (a concurrent change, a moved outbox counter)
#: An attribute holding the id of the last lone write of an item: when botocore resends a write whose response
#: was lost, the failed condition of the second attempt shows whether the first one applied (it is left out
#: of documents, like the shadow attributes).
WRITE_TOKEN = SHADOW_PREFIX + "#write"
_RETRY_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "None", ""})
R = TypeVar("R")


def _with_token(write: w.Write, token: dict[str, str]) -> dict[str, Any]:
    """A lone write's request, marking the item with a token of this write (see :data:`WRITE_TOKEN`)."""
    request = dict(write.request)
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if write.kind == "Put":
        request["Item"] = {**request["Item"], WRITE_TOKEN: token}
    elif write.kind == "Update":
        request["UpdateExpression"] += ", #wtoken = :wtoken"
        request["ExpressionAttributeNames"] = {**request.get("ExpressionAttributeNames", {}), "#wtoken": WRITE_TOKEN}
        request["ExpressionAttributeValues"] = {**request.get("ExpressionAttributeValues", {}), ":wtoken": token}
        request["ReturnValues"] = "ALL_NEW"
    return request


class _Retry(Exception):
    """A write lost a race; build it again and resend."""


class DynamoStore(BoxesStore):
    """``dynamodb://?region=...&endpoint_url=...&prefix=...``: one table per collection, plus outbox, inbox, meta."""

    # --- documents ----------------------------------------------------------------------------------------

    def ensure_collection(self, name: str, indexes: Sequence[str]) -> None:
        if self._closed:
            raise Closed(f"store {self.url} is closed")
        self.tables.ensure_collection(name, indexes)

    def _get(self, info: TableInfo, id: str) -> Doc | None:
        if not id:
            return None
        found = self._call(
            f"reading {info.name}/{id}",
            self.client.get_item,
            TableName=info.name,
            Key=w.doc_key(id),
            ConsistentRead=True,
        )
        item = found.get("Item")
        return item_to_doc(item) if item else None

    def get_raw(self, collection: str, id: str) -> Doc | None:
        return self._get(self._info(collection), id)

    def find_raw(self, collection: str, where: Mapping[str, Any], limit: int, after: str | None) -> list[Doc]:
        info = self._info(collection)
        indexed = next((f for f in where if f in info.indexes), None)
        e = Expr()
        filters = [e.equals(f, v) for f, v in where.items() if f != indexed]
        request: dict[str, Any] = {"TableName": info.name}
        if indexed is None:
            if after:
                filters.append(f"{e.name('id')} > {e.value({'S': after})}")
            # A scan returns items in hash order: take the matching ids, sort them, fetch the page's documents.
            request.update(
                e.request(
                    FilterExpression=" AND ".join(filters), ProjectionExpression=e.name("id"), ConsistentRead=True
                )
            )
            ids = sorted(i["id"]["S"] for i in self._pages("scan", f"scanning {info.name}", request))
            return self._get_many(info, ids[:limit])
        keys = [f"{e.name(shadow(indexed))} = {e.value({'S': index_key(where[indexed])})}"]
        if after:
            keys.append(f"{e.name('id')} > {e.value({'S': after})}")
        request.update(
            e.request(
                IndexName=index_name(indexed),
                KeyConditionExpression=" AND ".join(keys),
                FilterExpression=" AND ".join(filters),
            )
        )
        request["Limit"] = max(limit, 100) if filters else limit
        out: list[Doc] = []
        for item in self._pages("query", f"querying {info.name}", request):
            out.append(item_to_doc(item))
            if len(out) >= limit:
                break
        return out

    def _get_many(self, info: TableInfo, ids: list[str]) -> list[Doc]:
        """The documents with these ids, in this order (consistent reads, 100 per BatchGetItem)."""
        found: dict[str, Doc] = {}
        for start in range(0, len(ids), 100):
            keys: list[dict[str, Any]] = [w.doc_key(i) for i in ids[start : start + 100]]
            attempt = 0
            while keys:
                page = self._call(
                    f"reading {info.name}",
                    self.client.batch_get_item,
                    RequestItems={info.name: {"Keys": keys, "ConsistentRead": True}},
                )
                for item in page.get("Responses", {}).get(info.name, []):
                    doc = item_to_doc(item)
                    found[str(doc["id"])] = doc
                keys = page.get("UnprocessedKeys", {}).get(info.name, {}).get("Keys", [])
                if keys:
                    self._pause(attempt)
                    attempt += 1
        return [found[i] for i in ids if i in found]  # a document deleted since the scan is left out

    # --- units of work ------------------------------------------------------------------------------------

    def apply(self, ops: Sequence[Operation]) -> list[Doc | None]:
        ops = list(ops)
        if not ops:
            return []
        infos = {
            op.collection: self._info(op.collection) for op in ops if isinstance(op, Insert | Put | Delete | Update)
        }
        emits = sum(isinstance(op, Emit) for op in ops)
        if emits or any(isinstance(op, MarkProcessed) for op in ops):
            self._system()
        self._validate(ops, infos, emits)
        if len(ops) == 1 and not emits:
            return [self._retrying(lambda: self._single(ops[0], infos))]
        # No lock around other writes: DynamoDB applies each conditional write atomically and serializes
        # transactions, and a conflict comes back as TransactionConflict, which is retried (_cancelled).
        with self._seq_lock if emits else contextlib.nullcontext():
            self._retrying(lambda: self._transact(ops, infos))
        results: list[Doc | None] = []
        for op in ops:  # TransactWriteItems returns no values: read the updated documents back
            results.append(self._get(infos[op.collection], op.id) if isinstance(op, Update) else None)
        return results

    def _validate(self, ops: list[Operation], infos: Mapping[str, TableInfo], emits: int) -> None:
        size = len(ops) + (1 if emits else 0)
        if size > MAX_TRANSACTION_ITEMS:
            raise TransactionTooLarge(
                f"a unit of work on DynamoDB holds at most {MAX_TRANSACTION_ITEMS} writes, the outbox counter"
                f" included when it emits; this one has {size}: split it into several units of work"
            )
        seen: set[tuple[str, str]] = set()
        for op in ops:
            t = w.target(op, infos)
            if t is None:
                continue
            if t in seen:
                if isinstance(op, MarkProcessed):
                    raise AlreadyProcessed(f"message {op.message_id} is marked processed twice by {op.group}")
                raise UnsupportedUnitOfWork(
                    f"a unit of work on DynamoDB writes each document once; {t[0]}/{t[1]} is written twice"
                )
            seen.add(t)

    def _retrying(self, fn: Callable[[], R]) -> R:
        for attempt in range(_ATTEMPTS):
            try:
                return fn()
            except _Retry:
                self._pause(attempt)
        raise ConnectionLost(f"{self.url}: gave up after {_ATTEMPTS} rounds of contention on the same items")

    def _currents(self, ops: list[Operation], infos: Mapping[str, TableInfo]) -> dict[int, Doc]:
        """The documents that updates computed by the client need, read first."""
        out: dict[int, Doc] = {}
        for i, op in enumerate(ops):
            if isinstance(op, Update) and w.needs_read(op, infos[op.collection]):
                doc = self._get(infos[op.collection], op.id)
                if doc is None:
                    raise NotFound(f"{op.collection}/{op.id} does not exist")
                out[i] = doc
        return out

    def _single(self, op: Operation, infos: Mapping[str, TableInfo]) -> Doc | None:
        """One write without a transaction (half the cost); an Update returns its new document."""
        currents = self._currents([op], infos)
        if isinstance(op, Update) and currents and not (op.set or op.inc):
            return _apply_update(currents[0], op)  # a pure check: nothing to write
        [write] = w.build([op], infos, currents, **self._names(), seq=0, now=time.time(), inbox_ttl=self._ttl)
        fn = {"Put": self.client.put_item, "Delete": self.client.delete_item, "Update": self.client.update_item}
        token = {"S": new_id()}
        request = _with_token(write, token)
        try:
            response = fn[write.kind](**request)
        except Exception as exc:
            code = code_of(exc)
            if code == "ConditionalCheckFailedException":
                found = getattr(exc, "response", {})
                item = found.get("Item")
                if found.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0:
                    # botocore sent it again after a lost response: is what failed our own first attempt?
                    if item is not None and item.get(WRITE_TOKEN) == token:
                        return item_to_doc(item) if write.kind == "Update" else None
                    if write.kind == "Delete" and item is None:
                        return None
                raise self._failure(op, infos, item) from None
            if code in RETRYABLE:
                raise _Retry from exc
            raise self._error(exc, f"writing to {write.request['TableName']}") from exc
        if write.kind == "Update":
            return item_to_doc(response["Attributes"])
        return None

    @property
    def _ttl(self) -> float:
        return self.settings.inbox_ttl

    def _names(self) -> dict[str, str]:
        s = self.settings
        return {"outbox": s.outbox_table, "inbox": s.inbox_table, "meta": s.meta_table}

    def _transact(self, ops: list[Operation], infos: Mapping[str, TableInfo]) -> None:
        emits = any(isinstance(op, Emit) for op in ops)
        seq = self._counter() if emits else 0
        currents = self._currents(ops, infos)
        writes = w.build(ops, infos, currents, **self._names(), seq=seq, now=time.time(), inbox_ttl=self._ttl)
        try:
            self.client.transact_write_items(
                TransactItems=[x.transact_item() for x in writes], ClientRequestToken=new_id()
            )
        except Exception as exc:
            code = code_of(exc)
            if code == "TransactionCanceledException":
                raise self._cancelled(exc, writes, infos) from None
            if code in RETRYABLE:
                raise _Retry from exc
            raise self._error(exc, "committing a unit of work") from exc
        if emits:
            self._seq = seq + sum(isinstance(op, Emit) for op in ops)

    def _cancelled(self, exc: Exception, writes: list[w.Write], infos: Mapping[str, TableInfo]) -> Exception:
        """The error a cancelled transaction stands for, or :class:`_Retry`."""
        found = reasons(exc)
        if len(found) != len(writes):
            return self._error(exc, "committing a unit of work")
        stale_counter = behind = False
        seen: int | None = None
        for write, reason in zip(writes, found, strict=True):
            code = str(reason.get("Code") or "")
            if code == "ConditionalCheckFailed":
                if write.op is None:  # the counter moved: its current value came back with the failure
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        seen = int(reason["Item"]["n"]["N"])
                    stale_counter = True
                    continue
                if isinstance(write.op, Emit):  # an entry with our seq exists: the counter is behind the outbox
                    stale_counter = behind = True
                    continue
                return self._failure(write.op, infos, reason.get("Item"))
            if code == "ValidationError":
                return ConfigError(f"DynamoDB refused a unit of work: {reason.get('Message', '')}")
            if code not in _RETRY_REASONS:
                return PubsubkitError(f"DynamoDB cancelled a unit of work: {code}: {reason.get('Message', '')}")
        if stale_counter:
            # Another process emitted meanwhile; None: read the counter and the outbox's last entry again.
            self._seq = None if behind else seen
        return _Retry()

    def _failure(self, op: Operation, infos: Mapping[str, TableInfo], item: Mapping[str, Any] | None) -> Exception:
        """What a failed condition of ``op`` means: a pubsubkit error, or a lost race to retry.

        ``item`` is the item as the failed condition saw it (``ReturnValuesOnConditionCheckFailure``).
        """
        if isinstance(op, Insert):
            return DuplicateError(f"{op.collection}/{op.doc.get('id')} already exists")
        if isinstance(op, Delete):
            return NotFound(f"{op.collection}/{op.id} does not exist")
        if isinstance(op, MarkProcessed):
            return AlreadyProcessed(f"message {op.message_id} was processed by {op.group} before")
        if isinstance(op, Update):
            current = item_to_doc(item) if item else None
            if current is None:
                return NotFound(f"{op.collection}/{op.id} does not exist")
            try:
                _apply_update(current, op)
            except ConditionFailed as exc:
                return exc
            return _Retry()  # changed between our read and the write: try again
        return PubsubkitError(f"unexpected condition failure of {op!r}")

    # --- lifecycle ----------------------------------------------------------------------------------------

    def create_tables(self, collections: Mapping[str, Sequence[str]] | None = None) -> None:
        """Create the outbox, inbox and meta tables, and these collections' tables with their indexes."""
        self._system()
        for name, indexes in (collections or {}).items():
            self.ensure_collection(name, indexes)
