"""What a repository backend implements, and the typed collections built on top of it.

A backend implements a handful of operations on plain JSON-like dicts (:class:`Store`); this module turns
them into typed :class:`Collection`\\ s of attrs documents and a :class:`UnitOfWork` that commits documents,
outgoing events (the outbox) and processed-message records (the inbox) together or not at all.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Generic, Self, TypeVar

import attrs
import orjson

from pubsubkit.codec import Codec, default_codec
from pubsubkit.envelope import Envelope
from pubsubkit.errors import Closed, ConditionFailed, ConfigError
from pubsubkit.events import WIRE_NAME

__all__ = [
    "Collection",
    "Delete",
    "Emit",
    "Insert",
    "MarkProcessed",
    "Operation",
    "OutboxEntry",
    "Page",
    "Put",
    "Store",
    "StoreCapabilities",
    "UnitOfWork",
    "Update",
    "apply_update",
]

T = TypeVar("T")
Doc = dict[str, Any]


# --- operations a store applies atomically ---------------------------------------------------------------


@attrs.frozen
class Insert:
    collection: str
    doc: Doc


@attrs.frozen
class Put:
    collection: str
    doc: Doc


@attrs.frozen
class Delete:
    collection: str
    id: str
    must_exist: bool = True


@attrs.frozen
class Update:
    """Change fields of one document if its conditions hold.

    :ivar set: fields to replace.
    :ivar inc: numeric fields to add to.
    :ivar expect: fields that must equal these values before the change (compare-and-set).
    :ivar at_least: numeric fields that must be at least these values after the change (bounded increment).
    """

    collection: str
    id: str
    set: Mapping[str, Any] = attrs.field(factory=dict)
    inc: Mapping[str, int | float] = attrs.field(factory=dict)
    expect: Mapping[str, Any] = attrs.field(factory=dict)
    at_least: Mapping[str, int | float] = attrs.field(factory=dict)


@attrs.frozen
class Emit:
    envelope: Envelope


@attrs.frozen
class MarkProcessed:
    group: str
    message_id: str


Operation = Insert | Put | Delete | Update | Emit | MarkProcessed


@attrs.frozen
class OutboxEntry:
    """An event committed with a unit of work and not yet confirmed by the broker."""

    seq: int
    envelope: Envelope


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing; pass ``next`` as ``after`` to get the following page (``None``: no more)."""

    items: list[T]
    next: str | None


def apply_update(doc: Doc, op: Update) -> Doc:
    """Return ``doc`` changed by ``op``, or raise :class:`ConditionFailed`. For stores that read-modify-write."""
    for field, value in op.expect.items():
        if doc.get(field) != value:
            raise ConditionFailed(f"{op.collection}/{op.id}: expected {field}={value!r}, found {doc.get(field)!r}")
    new = dict(doc)
    new.update(op.set)
    for field, delta in op.inc.items():
        current = new.get(field, 0)
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise ConditionFailed(f"{op.collection}/{op.id}: field {field} is not a number")
        new[field] = current + delta
    for field, bound in op.at_least.items():
        if new.get(field, 0) < bound:
            raise ConditionFailed(
                f"{op.collection}/{op.id}: {field} would be {new.get(field)!r}, below its bound {bound!r}"
            )
    return new


# --- the backend contract --------------------------------------------------------------------------------


@attrs.frozen
class StoreCapabilities:
    """What a repository backend honestly can do. Docs and the CLI read these flags.

    :ivar transactions: a unit of work commits documents, outbox and inbox together or not at all.
    :ivar persistent: what was committed survives a restart of the process and the server.
    :ivar multi_process: several processes may share the store (and each run an outbox relay).
    """

    transactions: bool = True
    persistent: bool = True
    multi_process: bool = True

    def as_dict(self) -> dict[str, bool]:
        """The flags by name."""
        return attrs.asdict(self)


class Store(abc.ABC):
    """A connection to one document store. Thread-safe; shared by a process."""

    url: str = ""

    def __init__(self, codec: Codec | None = None) -> None:
        self.codec = codec or default_codec()
        self._outbox_cond = threading.Condition()
        self._outbox_version = 0
        #: Set when the store is closed: a backend's retry waits on it (:func:`pubsubkit.retry.retry_call`),
        #: so that closing ends them at once.
        self.closing = threading.Event()

    @property
    def _closed(self) -> bool:
        """Whether :meth:`close` was called (backends set it there)."""
        return self.closing.is_set()

    @_closed.setter
    def _closed(self, value: bool) -> None:
        if value:
            self.closing.set()
        else:
            self.closing.clear()

    # Backends implement these.

    @abc.abstractmethod
    def ensure_collection(self, name: str, indexes: Sequence[str]) -> None:
        """Create the collection (table) and an index on each of ``indexes`` if missing."""

    @abc.abstractmethod
    def get_raw(self, collection: str, id: str) -> Doc | None:
        """The stored dict with ``id``, or ``None``."""

    @abc.abstractmethod
    def find_raw(self, collection: str, where: Mapping[str, Any], limit: int, after: str | None) -> list[Doc]:
        """Documents whose fields equal ``where``, in id order, ids greater than ``after``, at most ``limit``."""

    @abc.abstractmethod
    def apply(self, ops: Sequence[Operation]) -> list[Doc | None]:
        """Apply every operation atomically, or none. Returns the new document of each Update (else None).

        Documents and field values are plain JSON data (dicts, lists, strings, numbers, booleans, None);
        datetimes arrive as ISO 8601 strings.

        Raises DuplicateError (Insert of an existing id), NotFound (Update / Delete of a missing id),
        ConditionFailed, AlreadyProcessed (MarkProcessed seen before).
        """

    @abc.abstractmethod
    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        """The oldest unsent outbox entries, in commit order."""

    @abc.abstractmethod
    def outbox_mark_sent(self, seqs: Sequence[int]) -> None:
        """Remove (or flag) entries the broker confirmed."""

    @abc.abstractmethod
    def inbox_contains(self, group: str, message_id: str) -> bool:
        """Whether ``message_id`` was recorded as processed by ``group``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~pubsubkit.errors.ConnectionLost` when the store cannot be reached."""

    def outbox_claim(self, owner: str, seconds: float) -> bool:
        """Take or renew the right to relay the outbox for ``seconds``; one relay per store at a time."""
        return True

    def outbox_count(self) -> int:
        """How many outbox entries are waiting to be published."""
        return len(self.outbox_pending(1_000_000))

    def prune_inbox(self, older_than_seconds: float) -> int:
        """Forget processed-message records older than this; returns how many. Optional."""
        return 0

    # Shared behaviour.

    def collection(self, name: str, cls: type[T], *, indexes: Sequence[str] = ()) -> Collection[T]:
        """A typed collection of ``cls`` documents (attrs classes with an ``id: str`` field)."""
        return Collection(self, name, cls, indexes)

    def unit_of_work(self) -> UnitOfWork:
        """Collect writes and events; commit them together when the ``with`` block ends without error."""
        return UnitOfWork(self)

    def commit(self, ops: Sequence[Operation]) -> list[Doc | None]:
        """Apply ``ops`` atomically (all or none) and wake the relays when they emitted events."""
        if self._closed:
            raise Closed(f"store {self.url} is closed")
        result = self.apply(ops)
        if any(isinstance(op, Emit) for op in ops):
            self.notify_outbox()
        return result

    def notify_outbox(self) -> None:
        """Wake relays of this process waiting for outbox entries."""
        with self._outbox_cond:
            self._outbox_version += 1
            self._outbox_cond.notify_all()

    def wait_outbox(self, seen: int, timeout: float) -> int:
        """Block until a commit in this process adds outbox entries after version ``seen``, or timeout."""
        with self._outbox_cond:
            if self._outbox_version == seen:
                self._outbox_cond.wait(timeout)
            return self._outbox_version


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back: stores see the same strings for datetimes, lists for tuples, whatever
    they keep natively, so documents and the values they are queried by compare alike on every backend."""
    return orjson.loads(orjson.dumps(value))


def _fields_of(cls: type[Any]) -> dict[str, str]:
    """Attribute name -> stored name, for an attrs class ({} for anything else)."""
    if not attrs.has(cls):
        return {}
    return {a.name: str(a.metadata.get(WIRE_NAME, a.name)) for a in attrs.fields(cls)}


class Collection(Generic[T]):
    """Typed access to one collection of attrs documents keyed by their ``id`` field."""

    def __init__(self, store: Store, name: str, cls: type[T], indexes: Sequence[str]) -> None:
        self.store = store
        self.name = name
        self.cls = cls
        self._conv = store.codec.converter
        fields = _fields_of(cls)
        if "id" not in fields:
            raise ConfigError(f"collection {name!r}: {cls.__qualname__} must be an attrs class with an 'id' field")
        self._stored_name = fields
        for field in indexes:
            self._field(field)
        self.indexes = tuple(self._stored_name[f] for f in indexes)
        store.ensure_collection(name, self.indexes)

    def _field(self, name: str) -> str:
        try:
            return self._stored_name[name]
        except KeyError:
            raise ConfigError(f"{self.cls.__qualname__} has no field {name!r}") from None

    def _fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {self._field(k): _plain(self._conv.unstructure(v)) for k, v in values.items()}

    def to_doc(self, obj: T) -> Doc:
        """``obj`` as the plain document stored (wire names of its fields)."""
        doc: Doc = _plain(self._conv.unstructure(obj))
        return doc

    def from_doc(self, doc: Doc) -> T:
        """The object of a stored document; DecodeError when it does not fit the class."""
        obj: T = self.store.codec.structure(doc, self.cls, f"{self.name}/{doc.get('id')}")
        return obj

    # operations (each a unit of work of its own), and their counterparts for a UnitOfWork

    def insert_op(self, obj: T) -> Insert:
        """An operation inserting ``obj`` (DuplicateError at commit when its id exists)."""
        return Insert(self.name, self.to_doc(obj))

    def put_op(self, obj: T) -> Put:
        """An operation inserting or replacing ``obj``."""
        return Put(self.name, self.to_doc(obj))

    def delete_op(self, id: str, *, must_exist: bool = True) -> Delete:
        """An operation deleting document ``id`` (NotFound at commit when it is missing and ``must_exist``)."""
        return Delete(self.name, id, must_exist)

    def update_op(
        self,
        id: str,
        *,
        set: Mapping[str, Any] | None = None,
        inc: Mapping[str, int | float] | None = None,
        expect: Mapping[str, Any] | None = None,
        at_least: Mapping[str, int | float] | None = None,
    ) -> Update:
        """An operation changing document ``id`` in place: ``set`` fields, ``inc`` numbers by an amount,
        applied only if the ``expect`` fields have those values and the ``at_least`` fields stay at or above
        those bounds after the increments (ConditionFailed at commit otherwise, and nothing changes)."""
        return Update(
            self.name,
            id,
            set=self._fields(set or {}),
            inc={self._field(k): v for k, v in (inc or {}).items()},
            expect=self._fields(expect or {}),
            at_least={self._field(k): v for k, v in (at_least or {}).items()},
        )

    def insert(self, obj: T) -> T:
        """Store a new document; :class:`DuplicateError` if its id exists."""
        self.store.commit([self.insert_op(obj)])
        return obj

    def put(self, obj: T) -> T:
        """Store a document, replacing any with its id."""
        self.store.commit([self.put_op(obj)])
        return obj

    def delete(self, id: str, *, must_exist: bool = True) -> None:
        """Remove a document; :class:`NotFound` if missing and ``must_exist``."""
        self.store.commit([self.delete_op(id, must_exist=must_exist)])

    def update(
        self,
        id: str,
        *,
        set: Mapping[str, Any] | None = None,
        inc: Mapping[str, int | float] | None = None,
        expect: Mapping[str, Any] | None = None,
        at_least: Mapping[str, int | float] | None = None,
    ) -> T:
        """Atomically change one document if its conditions hold; returns the new document.

        ``expect={"version": 3}`` is compare-and-set; ``inc={"seats_left": -2}, at_least={"seats_left": 0}`` is
        a bounded increment. Raises :class:`ConditionFailed` (nothing changed) or :class:`NotFound`.
        """
        [doc] = self.store.commit([self.update_op(id, set=set, inc=inc, expect=expect, at_least=at_least)])
        assert doc is not None
        return self.from_doc(doc)

    def get(self, id: str) -> T:
        """The document with ``id``; :class:`NotFound` if missing."""
        from pubsubkit.errors import NotFound

        doc = self.store.get_raw(self.name, id)
        if doc is None:
            raise NotFound(f"{self.name}/{id} does not exist")
        return self.from_doc(doc)

    def find_one(self, id: str) -> T | None:
        """The object with ``id``, or None."""
        doc = self.store.get_raw(self.name, id)
        return None if doc is None else self.from_doc(doc)

    def page(self, *, limit: int = 100, after: str | None = None, **where: Any) -> Page[T]:
        """One page of documents (in id order) whose fields equal ``where``."""
        if limit < 1:
            raise ConfigError(f"limit must be >= 1, got {limit}")
        docs = self.store.find_raw(self.name, self._fields(where), limit + 1, after)
        items = [self.from_doc(d) for d in docs[:limit]]
        nxt = docs[limit - 1]["id"] if len(docs) > limit else None
        return Page(items, nxt)

    def find(self, **where: Any) -> list[T]:
        """Every document whose fields equal ``where`` (all documents when empty), in id order."""
        return list(self.iter(**where))

    def iter(self, page_size: int = 500, **where: Any) -> Iterator[T]:
        """Every object whose fields equal ``where`` (indexed fields), in id order, read ``page_size`` at a time."""
        after: str | None = None
        while True:
            page = self.page(limit=page_size, after=after, **where)
            yield from page.items
            if page.next is None:
                return
            after = page.next


class UnitOfWork:
    """Writes and events committed together: ``with store.unit_of_work() as uow: ...``.

    Nothing reaches the store until the block ends without an exception; then every operation is applied
    in one transaction, and the events land in the outbox for the relay to publish.
    """

    def __init__(self, store: Store, headers: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.ops: list[Operation] = []
        self.headers = dict(headers or {})
        self.envelopes: list[Envelope] = []
        self.results: list[Doc | None] = []
        self.committed = False

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        """``async with ... as uow``: the commit runs in a thread, so that the event loop goes on meanwhile."""
        if exc_type is None:
            await self.commit_async()

    async def commit_async(self) -> None:
        """:meth:`commit` in a thread of the default executor (the store's drivers are blocking)."""
        import asyncio  # here: asyncio is loaded only by those who use it

        await asyncio.to_thread(self.commit)

    def insert(self, coll: Collection[T], obj: T) -> None:
        """Insert ``obj`` into ``coll`` at commit (DuplicateError if its id exists)."""
        self.ops.append(coll.insert_op(obj))

    def put(self, coll: Collection[T], obj: T) -> None:
        """Insert or replace ``obj`` in ``coll`` at commit."""
        self.ops.append(coll.put_op(obj))

    def delete(self, coll: Collection[Any], id: str, *, must_exist: bool = True) -> None:
        """Delete document ``id`` of ``coll`` at commit (NotFound if missing and ``must_exist``)."""
        self.ops.append(coll.delete_op(id, must_exist=must_exist))

    def update(self, coll: Collection[Any], id: str, **kwargs: Any) -> None:
        """Change document ``id`` of ``coll`` at commit: the keywords of :meth:`Collection.update_op`."""
        self.ops.append(coll.update_op(id, **kwargs))

    def emit(self, event: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None) -> Envelope:
        """Queue ``event`` in the outbox; it is published after (and only if) the commit succeeds."""
        hdrs = {**self.headers, **(headers or {})}
        env = self.store.codec.envelope(event, key=key, headers=hdrs)
        self.ops.append(Emit(env))
        self.envelopes.append(env)
        return env

    def mark_processed(self, group: str, message_id: str) -> None:
        """Record ``message_id`` in the inbox; the commit raises AlreadyProcessed if it was there already."""
        self.ops.append(MarkProcessed(group, message_id))

    def commit(self) -> None:
        """Apply what was added, writes, events and inbox record together, or nothing (leaving the ``with``
        block does this; an exception in it abandons the unit of work instead)."""
        if self.ops:
            self.results = self.store.commit(self.ops)
            self.ops = []
        self.committed = True
