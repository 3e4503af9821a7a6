"""The in-memory backend, ``memory://[name]``: broker and store inside one process.

For unit tests and examples. Everything opened with the same ``memory://name`` in one process shares one log
and one store; nothing survives the process. Same semantics as the durable backends: consumer groups, per-key
order, redelivery of unsettled messages, dead letters, outbox and inbox.

Options (keyword arguments or URL query): ``lease`` (seconds a consumer holds a message before it is handed to
another member of its group, default 30); an unknown option is a :class:`~pubsubkit.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import attrs

from pubsubkit.backends._log import Claim, GroupState
from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope, new_id, utcnow
from pubsubkit.errors import AlreadyProcessed, Closed, DuplicateError, NotFound
from pubsubkit.options import option, read_options, real
from pubsubkit.plugin import BrokerSpec, StoreCapabilities, StoreSpec, hookimpl
from pubsubkit.store import (
    Delete,
    Doc,
    Emit,
    Insert,
    MarkProcessed,
    Operation,
    OutboxEntry,
    Put,
    Store,
    Update,
    apply_update,
)
from pubsubkit.transport import BrokerCapabilities, Consumer, DeadLetter, Delivery, Transport

CAPABILITIES = BrokerCapabilities(
    ordered=True,
    persistent=False,
    consumer_groups=True,
    replay=True,
    multi_process=False,
    dead_letter_store=True,
)

LEASE_SECONDS = 30.0


@attrs.frozen
class MemoryOptions:
    """What a ``memory://name`` URL and the keyword options say.

    :ivar name: the hub the URL names (``default`` when it names none): one log and one store per name.
    :ivar lease: seconds a consumer holds a message before it is handed to another member of its group.
    """

    name: str
    lease: float = option(LEASE_SECONDS, parse=real(0.0))


def _name(url: str) -> str:
    return url.split("://", 1)[1].split("?", 1)[0].strip("/") or "default"


def parse(url: str, options: Mapping[str, Any]) -> MemoryOptions:
    """The options of ``url`` merged with keyword ``options`` (a keyword wins); an unknown one is a ConfigError."""
    return read_options("memory", MemoryOptions, urlsplit(url).query, options, fields={"name": _name(url)})


class _Hub:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.log: list[Envelope] = []
        self.groups: dict[str, GroupState] = {}
        self.dead: list[DeadLetter] = []


_hubs: dict[str, _Hub] = {}
_hubs_lock = threading.Lock()


def _hub(name: str) -> _Hub:
    with _hubs_lock:
        return _hubs.setdefault(name, _Hub())


class MemoryTransport(Transport):
    capabilities = CAPABILITIES

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = parse(url, options)
        self.hub = _hub(self.options.name)
        self._closed = False

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self._closed:
            raise Closed("memory broker is closed")
        with self.hub.cond:
            self.hub.log.extend(envelopes)
            self.hub.cond.notify_all()

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        return MemoryConsumer(self.hub, group, lease=self.options.lease, history=history)

    def close(self) -> None:
        self._closed = True

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self.hub.cond:
            return [d for d in self.hub.dead if group is None or d.group == group][:limit]

    def forget_group(self, group: str) -> bool:
        """Remove ``group``'s position and claims (its dead letters stay); returns whether it existed."""
        with self.hub.cond:
            return self.hub.groups.pop(group, None) is not None

    def reset_group(self, group: str, since: datetime | None = None) -> int:
        """Move ``group`` back to the first message (``since`` None) or the first that occurred at or after
        ``since``; its members receive those again."""
        with self.hub.cond:
            st = self.hub.groups.get(group)
            if st is None:
                raise NotFound(f"no consumer group {group} on this memory broker")
            first = next(
                (i for i, env in enumerate(self.hub.log) if since is None or env.occurred_at >= since),
                len(self.hub.log),
            )
            st.committed = first
            st.claims.clear()
            self.hub.cond.notify_all()
            return len(self.hub.log) - first

    def lag(self, group: str) -> dict[str, int]:
        """The group's :meth:`backlog`, as ``{"log": n}``."""
        return {"log": self.backlog(group)}

    def backlog(self, group: str) -> int:
        """Messages published so far that ``group`` has not settled (acknowledged or dead-lettered) yet: the
        whole log for a group no member has joined."""
        with self.hub.cond:
            st = self.hub.groups.get(group)
            if st is None:
                return len(self.hub.log)
            return sum(
                1
                for seq in range(st.committed + 1, len(self.hub.log) + 1)
                if (claim := st.claims.get(seq)) is None or not claim.done
            )

    def replay_dead_letter(self, letter_id: str) -> None:
        with self.hub.cond:
            for i, d in enumerate(self.hub.dead):
                if d.id == letter_id:
                    if d.envelope is None:
                        raise NotFound(f"dead letter {letter_id} has no decodable message to replay")
                    del self.hub.dead[i]
                    self.hub.log.append(d.envelope)
                    self.hub.cond.notify_all()
                    return
        raise NotFound(f"dead letter {letter_id} does not exist")


class MemoryConsumer(Consumer):
    def __init__(self, hub: _Hub, group: str, *, lease: float = LEASE_SECONDS, history: bool = True) -> None:
        self.hub = hub
        self.group = group
        self.owner = new_id()
        self.lease_seconds: float = lease
        with hub.cond:
            if group not in hub.groups:  # a new group: from the first message, or (without history) from now
                hub.groups[group] = GroupState(committed=0 if history else len(hub.log))
            self.state = hub.groups[group]
        self._closed = False

    def _take(self, max_messages: int) -> list[Delivery]:
        now = time.monotonic()
        st = self.state
        blocked: set[str] = set()
        out: list[Delivery] = []
        for seq in range(st.committed + 1, len(self.hub.log) + 1):
            env = self.hub.log[seq - 1]
            claim = st.claims.get(seq)
            if claim is not None and claim.done:
                continue
            key = env.key
            live = claim is not None and claim.owner is not None and claim.lease_until > now
            if live and claim is not None and claim.owner == self.owner:
                continue  # ours already: the runtime keeps its key in order
            if live or (key is not None and key in blocked):
                if key is not None:
                    blocked.add(key)
                continue
            attempts = (claim.attempts if claim is not None else 0) + 1
            st.claims[seq] = Claim(self.owner, now + self.lease_seconds, attempts)
            out.append(Delivery(env, attempt=attempts, token=seq))
            if len(out) >= max_messages:
                break
        return out

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise Closed("consumer is closed")
        deadline = time.monotonic() + timeout
        with self.hub.cond:
            while True:
                got = self._take(max_messages)
                remaining = deadline - time.monotonic()
                if got or remaining <= 0:
                    return got
                self.hub.cond.wait(min(remaining, 0.05))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self.hub.cond:
            for d in deliveries:
                claim = self.state.claims.get(d.token)
                if claim is not None:
                    claim.done = True
            self.state.advance()
            self.hub.cond.notify_all()

    def release(self, deliveries: Sequence[Delivery]) -> None:
        with self.hub.cond:
            for d in deliveries:
                claim = self.state.claims.get(d.token)
                if claim is not None and not claim.done and claim.owner == self.owner:
                    claim.owner = None
            self.hub.cond.notify_all()

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        import attrs

        with self.hub.cond:
            self.hub.dead.append(attrs.evolve(letter, id=new_id(), dead_at=utcnow()))
        self.ack([delivery])

    def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        until = time.monotonic() + seconds
        with self.hub.cond:
            for d in deliveries:
                claim = self.state.claims.get(d.token)
                if claim is not None and claim.owner == self.owner:
                    claim.lease_until = until

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.hub.cond:
            for claim in self.state.claims.values():
                if claim.owner == self.owner and not claim.done:
                    claim.owner = None
            self.hub.cond.notify_all()


class _Data:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.collections: dict[str, dict[str, Doc]] = {}
        self.outbox: list[OutboxEntry] = []
        self.outbox_seq = 0
        self.inbox: dict[tuple[str, str], float] = {}


_stores: dict[str, _Data] = {}


class MemoryStore(Store):
    """Documents, outbox and inbox in dicts guarded by one lock."""

    def __init__(self, url: str, codec: Codec | None = None, **options: Any) -> None:
        super().__init__(codec)
        self.url = url
        self.options = parse(url, options)
        with _hubs_lock:
            self.data = _stores.setdefault(self.options.name, _Data())

    def ensure_collection(self, name: str, indexes: Sequence[str]) -> None:
        with self.data.lock:
            self.data.collections.setdefault(name, {})

    def get_raw(self, collection: str, id: str) -> Doc | None:
        with self.data.lock:
            doc = self.data.collections.get(collection, {}).get(id)
            return copy.deepcopy(doc) if doc is not None else None

    def find_raw(self, collection: str, where: Mapping[str, Any], limit: int, after: str | None) -> list[Doc]:
        with self.data.lock:
            docs = self.data.collections.get(collection, {})
            ids = sorted(i for i in docs if after is None or i > after)
            out = []
            for i in ids:
                d = docs[i]
                if all(d.get(k) == v for k, v in where.items()):
                    out.append(copy.deepcopy(d))
                    if len(out) >= limit:
                        break
            return out

    def apply(self, ops: Sequence[Operation]) -> list[Doc | None]:
        d = self.data
        with d.lock:
            staged: dict[tuple[str, str], Doc | None] = {}
            marks: list[tuple[str, str]] = []
            emits: list[Envelope] = []
            results: list[Doc | None] = []

            def current(coll: str, id: str) -> Doc | None:
                if (coll, id) in staged:
                    return staged[(coll, id)]
                return d.collections.get(coll, {}).get(id)

            for op in ops:
                result: Doc | None = None
                if isinstance(op, Insert):
                    if current(op.collection, op.doc["id"]) is not None:
                        raise DuplicateError(f"{op.collection}/{op.doc['id']} already exists")
                    staged[(op.collection, op.doc["id"])] = copy.deepcopy(op.doc)
                elif isinstance(op, Put):
                    staged[(op.collection, op.doc["id"])] = copy.deepcopy(op.doc)
                elif isinstance(op, Delete):
                    if op.must_exist and current(op.collection, op.id) is None:
                        raise NotFound(f"{op.collection}/{op.id} does not exist")
                    staged[(op.collection, op.id)] = None
                elif isinstance(op, Update):
                    doc = current(op.collection, op.id)
                    if doc is None:
                        raise NotFound(f"{op.collection}/{op.id} does not exist")
                    result = apply_update(doc, op)
                    staged[(op.collection, op.id)] = result
                    result = copy.deepcopy(result)
                elif isinstance(op, Emit):
                    emits.append(op.envelope)
                elif isinstance(op, MarkProcessed):
                    k = (op.group, op.message_id)
                    if k in d.inbox or k in marks:
                        raise AlreadyProcessed(f"message {op.message_id} was processed by {op.group} before")
                    marks.append(k)
                results.append(result)
            for (coll, id), doc in staged.items():
                c = d.collections.setdefault(coll, {})
                if doc is None:
                    c.pop(id, None)
                else:
                    c[id] = doc
            now = time.time()
            for k in marks:
                d.inbox[k] = now
            for env in emits:
                d.outbox_seq += 1
                d.outbox.append(OutboxEntry(d.outbox_seq, env))
            return results

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        with self.data.lock:
            return self.data.outbox[:limit]

    def outbox_mark_sent(self, seqs: Sequence[int]) -> None:
        done = set(seqs)
        with self.data.lock:
            self.data.outbox = [e for e in self.data.outbox if e.seq not in done]

    def outbox_count(self) -> int:
        with self.data.lock:
            return len(self.data.outbox)

    def inbox_contains(self, group: str, message_id: str) -> bool:
        with self.data.lock:
            return (group, message_id) in self.data.inbox

    def prune_inbox(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        with self.data.lock:
            old = [k for k, t in self.data.inbox.items() if t < cutoff]
            for k in old:
                del self.data.inbox[k]
            return len(old)

    def close(self) -> None:
        self._closed = True


@hookimpl
def pubsubkit_register_brokers(register: Any) -> None:
    register(
        BrokerSpec(
            schemes=("memory",),
            factory=MemoryTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit",
            description="in-process broker for tests and examples",
        )
    )


@hookimpl
def pubsubkit_register_stores(register: Any) -> None:
    register(
        StoreSpec(
            schemes=("memory",),
            factory=MemoryStore,
            distribution="pubsubkit",
            description="in-process store for tests and examples",
            capabilities=StoreCapabilities(transactions=True, persistent=False, multi_process=False),
        )
    )
