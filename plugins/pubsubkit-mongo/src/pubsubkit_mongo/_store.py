"""The MongoDB store: a collection per document collection, and the outbox, inbox and relay lease beside them.

Layout in the store's database:

- each pubsubkit collection is a MongoDB collection of the same name; a document's ``id`` is its ``_id``;
  each indexed field gets an index ``pk_<field>`` on ``(field, _id)``, which also serves the paging order;
- ``pubsubkit.outbox``: one document per emitted event, ``_id`` the outbox sequence number;
- ``pubsubkit.inbox``: one document per processed message, ``_id`` ``{g: group, m: message id}``, ``at``
  the time it was recorded, with a TTL index on ``at``;
- ``pubsubkit.meta``: the outbox sequence counter and the relay lease.

A unit of work is one multi-document transaction. Its outbox entries take their numbers from the counter
document, incremented inside the transaction just before it commits: two transactions that both emit write
that one document, so the second waits for (retries after) the first one's commit. Sequence order is
therefore commit order, and no entry becomes visible after an entry with a higher number.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection as MongoCollection
from pymongo.database import Database
from pymongo.errors import (
    CollectionInvalid,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidName,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope
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
from pubsubkit.plugin import redact
from pubsubkit.store import Delete, Doc, Emit, Insert, MarkProcessed, Operation, OutboxEntry, Put, Store, Update
from pubsubkit.store import apply_update as check_update
from pubsubkit_mongo._options import parse
from pubsubkit_mongo._query import field_name, from_mongo, plan_update, to_mongo, where_filter

__all__ = ["INBOX", "META", "OUTBOX", "MongoStore"]

Raw = dict[str, Any]

OUTBOX = "pubsubkit.outbox"
INBOX = "pubsubkit.inbox"
META = "pubsubkit.meta"
_SEQ = "outbox_seq"
_LEASE = "outbox_lease"
_TYPE_MISMATCH = 14  # $inc on a value that is not a number
_ILLEGAL_OPERATION = 20  # e.g. a transaction on a standalone server
_INDEX_CONFLICTS = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict


def _ident(name: str) -> str:
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
        raise ConfigError(f"collection name {name!r}: use letters, digits and _ (starting with a letter)")
    if len(name) > 120 or not name.isascii():
        raise ConfigError(f"collection name {name!r}: use at most 120 ASCII letters, digits and _")
    return name


def _outbox_doc(seq: int, env: Envelope) -> Raw:
    return {
        "_id": seq,
        "id": env.id,
        "name": env.name,
        "key": env.key,
        "occurred_at": env.occurred_at.isoformat(),
        "headers": [[k, v] for k, v in env.headers.items()],  # header names may hold '.' or start with '$'
        "payload": env.payload,
    }


def _outbox_entry(raw: Mapping[str, Any]) -> OutboxEntry:
    env = Envelope(
        id=raw["id"],
        name=raw["name"],
        payload=bytes(raw["payload"]),
        key=raw.get("key"),
        occurred_at=datetime.fromisoformat(raw["occurred_at"]),
        headers=dict(raw.get("headers", [])),
    )
    return OutboxEntry(int(raw["_id"]), env)


class _Attempts:
    """What the attempts at one transaction met so far."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.last: PyMongoError | None = None
        self.lost = 0


class MongoStore(Store):
    """A pubsubkit store in one MongoDB database (``mongodb://host/database``). Thread-safe."""

    def __init__(self, url: str, codec: Codec | None = None, **options: Any) -> None:
        super().__init__(codec)
        self.url = url
        self.options = parse(url, options)
        try:
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                self.client: pymongo.MongoClient[Raw] = pymongo.MongoClient(
                    self.options.client_url, connect=False, **self.options.client_options
                )
            unknown = [str(w.message) for w in warned if "Unknown option" in str(w.message)]
            if unknown:  # pymongo only warns about an unknown URL option
                self.client.close()
                raise ConfigError(f"mongodb store {redact(url)}: {unknown[0]}")
            for w in warned:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            self.db: Database[Raw] = self.client.get_database(self.options.database)
        except (ConfigurationError, InvalidName, TypeError, ValueError) as exc:
            raise ConfigError(f"mongodb store {redact(url)}: {exc}") from None
        self._lock = threading.Lock()
        self._indexed: dict[str, frozenset[str]] = {}  # collection -> fields known to be indexed
        self._internal_ready = False

    # --- plumbing -------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate pymongo's exceptions into pubsubkit's."""
        try:
            yield
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
            raise ConnectionLost(f"mongodb store {redact(self.url)}: {what}: {exc}") from exc
        except InvalidOperation as exc:
            if self._closed:
                raise Closed(f"store {redact(self.url)} is closed") from None
            raise PubsubkitError(f"mongodb store {redact(self.url)}: {what}: {exc}") from exc
        except PyMongoError as exc:
            if isinstance(exc, OperationFailure) and exc.code == _ILLEGAL_OPERATION and "replica set" in str(exc):
                raise ConfigError(
                    f"mongodb store {redact(self.url)}: units of work need transactions, which MongoDB offers on a"
                    " replica set (a single node will do: mongod --replSet rs0, then rs.initiate()) or a sharded"
                    " cluster, not on a standalone server"
                ) from exc
            if exc.timeout or exc.has_error_label("TransientTransactionError"):
                raise ConnectionLost(f"mongodb store {redact(self.url)}: {what}: {exc}") from exc
            raise PubsubkitError(f"mongodb store {redact(self.url)}: {what}: {exc}") from exc

    def _open(self) -> None:
        if self._closed:
            raise Closed(f"store {redact(self.url)} is closed")

    def _coll(self, name: str) -> MongoCollection[Raw]:
        return self.db.get_collection(name)

    def _create(self, name: str) -> None:
        try:
            self.db.create_collection(name)
        except CollectionInvalid:
            pass  # exists already
        except OperationFailure as exc:
            if exc.code != 48:  # NamespaceExists
                raise

    def _internal(self) -> None:
        """Create the outbox, inbox and meta collections, their indexes and the sequence counter, once."""
        if self._internal_ready:
            return
        self._open()
        with self._lock, self._errors("creating the outbox and inbox"):
            if self._internal_ready:
                return
            for name in (OUTBOX, INBOX, META):
                self._create(name)
            inbox = self._coll(INBOX)
            try:
                inbox.create_index("at", name="pk_at", expireAfterSeconds=self.options.inbox_ttl)
            except OperationFailure as exc:
                if exc.code not in _INDEX_CONFLICTS:
                    raise
                # Opened before with another inbox_ttl: the last one opened wins.
                self.db.command("collMod", INBOX, index={"name": "pk_at", "expireAfterSeconds": self.options.inbox_ttl})
            with contextlib.suppress(DuplicateKeyError):  # another process created it at the same moment
                self._coll(META).update_one({"_id": _SEQ}, {"$setOnInsert": {"seq": 0}}, upsert=True)
            self._internal_ready = True

    def _need(self, name: str) -> None:
        if name not in self._indexed:
            self.ensure_collection(name, ())

    # --- the Store contract ---------------------------------------------------------------------------

    def ensure_collection(self, name: str, indexes: Sequence[str]) -> None:
        _ident(name)
        wanted = frozenset(indexes)
        known = self._indexed.get(name)
        if known is not None and wanted <= known:
            return
        self._open()
        fields = [field_name(f) for f in sorted(wanted - (known or frozenset()))]
        with self._lock, self._errors(f"creating collection {name}"):
            if known is None:
                self._create(name)
            coll = self._coll(name)
            for f in fields:
                if f != "_id":
                    coll.create_index([(f, pymongo.ASCENDING), ("_id", pymongo.ASCENDING)], name=f"pk_{f}")
            self._indexed[name] = (self._indexed.get(name) or frozenset()) | wanted

    def get_raw(self, collection: str, id: str) -> Doc | None:
        self._open()
        self._need(collection)
        with self._errors(f"reading {collection}/{id}"):
            raw = self._coll(collection).find_one({"_id": id})
        return None if raw is None else from_mongo(raw)

    def find_raw(self, collection: str, where: Mapping[str, Any], limit: int, after: str | None) -> list[Doc]:
        self._open()
        self._need(collection)
        filter = where_filter(where, after)
        with self._errors(f"finding in {collection}"):
            cursor = self._coll(collection).find(filter).sort("_id", pymongo.ASCENDING).limit(limit)
            return [from_mongo(raw) for raw in cursor]

    def apply(self, ops: Sequence[Operation]) -> list[Doc | None]:
        self._open()
        if not ops:
            return []
        for op in ops:
            if isinstance(op, Insert | Put | Delete | Update):
                self._need(op.collection)
            else:
                self._internal()
        with self._errors("committing a unit of work"):
            if len(ops) == 1 and not isinstance(ops[0], Emit):
                return [self._apply_one(ops[0], None)]  # one document: atomic without a transaction
            with self.client.start_session() as session:
                attempts = _Attempts(time.monotonic() + self.options.transaction_timeout)
                return session.with_transaction(lambda s: self._apply_all_once(ops, s, attempts))

    def _apply_all_once(
        self, ops: Sequence[Operation], session: ClientSession, attempts: _Attempts
    ) -> list[Doc | None]:
        """One attempt at the transaction's body.

        pymongo's ``with_transaction`` runs it again after write conflicts and lost connections, for up to two
        minutes; this ends the retries at ``transaction_timeout``. A lost connection gets one more attempt
        (enough to find a new primary after a failover); a second one, or a server that cannot be selected at
        all, ends the unit of work with ConnectionLost.
        """
        what = f"mongodb store {redact(self.url)}: committing a unit of work"
        if attempts.last is not None and time.monotonic() > attempts.deadline:
            raise ConnectionLost(f"{what}: no success within {self.options.transaction_timeout}s: {attempts.last}")
        try:
            return self._apply_all(ops, session)
        except PyMongoError as exc:
            attempts.last = exc
            if isinstance(exc, ConnectionFailure):
                attempts.lost += 1
                if isinstance(exc, ServerSelectionTimeoutError) or attempts.lost > 1:
                    raise ConnectionLost(f"{what}: {exc}") from exc
            raise

    def _apply_all(self, ops: Sequence[Operation], session: ClientSession) -> list[Doc | None]:
        results = [None if isinstance(op, Emit) else self._apply_one(op, session) for op in ops]
        envelopes = [op.envelope for op in ops if isinstance(op, Emit)]
        if envelopes:
            # Last, so that the counter (which serialises every emitting transaction) is held briefly.
            counter = self._coll(META).find_one_and_update(
                {"_id": _SEQ},
                {"$inc": {"seq": len(envelopes)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            assert counter is not None
            first = int(counter["seq"]) - len(envelopes) + 1
            docs = [_outbox_doc(first + i, env) for i, env in enumerate(envelopes)]
            self._coll(OUTBOX).insert_many(docs, ordered=True, session=session)
        return results

    def _apply_one(self, op: Operation, session: ClientSession | None) -> Doc | None:
        if isinstance(op, Insert):
            try:
                self._coll(op.collection).insert_one(to_mongo(op.doc), session=session)
            except DuplicateKeyError:
                raise DuplicateError(f"{op.collection}/{op.doc['id']} already exists") from None
        elif isinstance(op, Put):
            doc = to_mongo(op.doc)
            coll = self._coll(op.collection)
            try:
                coll.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)
            except DuplicateKeyError:
                if session is not None:
                    raise
                coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)  # lost a race to insert it: now replace
        elif isinstance(op, Delete):
            gone = self._coll(op.collection).delete_one({"_id": op.id}, session=session)
            if op.must_exist and gone.deleted_count == 0:
                raise NotFound(f"{op.collection}/{op.id} does not exist")
        elif isinstance(op, Update):
            return self._update(op, session)
        elif isinstance(op, MarkProcessed):
            record = {"_id": {"g": op.group, "m": op.message_id}, "at": datetime.now(UTC)}
            try:
                self._coll(INBOX).insert_one(record, session=session)
            except DuplicateKeyError:
                raise AlreadyProcessed(f"message {op.message_id} was processed by {op.group} before") from None
        return None

    def _update(self, op: Update, session: ClientSession | None) -> Doc:
        """One ``find_one_and_update`` holding every condition; on no match, find out which error it is."""
        plan = plan_update(op)
        coll = self._coll(op.collection)
        raw: Raw | None = None
        if plan.refused is None:
            try:
                if plan.change:
                    raw = coll.find_one_and_update(
                        plan.filter, plan.change, return_document=ReturnDocument.AFTER, session=session
                    )
                else:
                    raw = coll.find_one(plan.filter, session=session)
            except OperationFailure as exc:
                if exc.code != _TYPE_MISMATCH:
                    raise
                raise ConditionFailed(f"{op.collection}/{op.id}: {exc.details and exc.details.get('errmsg')}") from None
        if raw is not None:
            return from_mongo(raw)
        current = coll.find_one({"_id": op.id}, session=session)
        if current is None:
            raise NotFound(f"{op.collection}/{op.id} does not exist")
        if plan.refused is not None:
            raise ConditionFailed(plan.refused)
        check_update(from_mongo(current), op)  # raises ConditionFailed naming the field
        raise ConditionFailed(f"{op.collection}/{op.id}: changed concurrently; its condition did not hold")

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        self._internal()
        with self._errors("reading the outbox"):
            cursor = self._coll(OUTBOX).find({}).sort("_id", pymongo.ASCENDING).limit(limit)
            return [_outbox_entry(raw) for raw in cursor]

    def outbox_mark_sent(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        self._internal()
        with self._errors("removing sent outbox entries"):
            self._coll(OUTBOX).delete_many({"_id": {"$in": list(seqs)}})

    def outbox_count(self) -> int:
        self._internal()
        with self._errors("counting the outbox"):
            return int(self._coll(OUTBOX).count_documents({}))

    def outbox_claim(self, owner: str, seconds: float) -> bool:
        """Take or renew the relay lease (times by this machine's clock)."""
        self._internal()
        now = time.time()
        with self._errors("claiming the outbox relay lease"):
            try:
                self._coll(META).find_one_and_update(
                    {"_id": _LEASE, "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
                    {"$set": {"owner": owner, "until": now + seconds}},
                    upsert=True,
                )
            except DuplicateKeyError:
                return False  # held by another relay: the upsert found no free lease and could not insert one
            return True

    def inbox_contains(self, group: str, message_id: str) -> bool:
        self._internal()
        with self._errors("reading the inbox"):
            return self._coll(INBOX).find_one({"_id": {"g": group, "m": message_id}}, {"_id": 1}) is not None

    def prune_inbox(self, older_than_seconds: float) -> int:
        self._internal()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        with self._errors("pruning the inbox"):
            return int(self._coll(INBOX).delete_many({"at": {"$lt": cutoff}}).deleted_count)

    def ping(self) -> None:
        self._open()
        with self._errors("ping"):
            self.client.admin.command("ping")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.close()
