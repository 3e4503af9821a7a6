"""The embedded SQLite backend, ``sqlite:///path/to/file.db``: a durable broker and store, no server.

Several processes on one machine may share the file (WAL mode). The broker is a message log with a committed
offset and leased claims per consumer group: members of a group share the messages, every group gets every
message (and a new group reads the log from the start), messages of one key are handed out in order, and a
message whose consumer died comes back when its lease runs out. The store keeps each collection in a table of
JSON documents with expression indexes on the queried fields; a unit of work is one transaction holding the
documents, the outbox entries and the inbox records.

Options (keyword arguments or URL query): ``lease`` (seconds a consumer holds a message, default 30),
``poll`` (seconds between looks for messages from other processes, default 0.01), ``synchronous``
(``NORMAL`` default: a committed message survives a process crash; ``FULL``: also a power cut).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope, new_id, utcnow
from pubsubkit.errors import AlreadyProcessed, Closed, ConfigError, ConnectionLost, DuplicateError, NotFound
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
    persistent=True,
    consumer_groups=True,
    replay=True,
    multi_process=True,
    dead_letter_store=True,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
R = TypeVar("R")


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///rel/path.db`` or ``sqlite:////abs/path.db`` -> (path, query options)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"{url!r}: not a sqlite URL")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        raise ConfigError(f"{url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db (three slashes)")
    if not path:
        raise ConfigError(f"{url!r}: no file path; e.g. sqlite:///data/myevents.db")
    if path == ":memory:":
        raise ConfigError("sqlite:///:memory: cannot be shared between connections; use memory:// instead")
    return path, dict(parse_qsl(parts.query))


def _wal(c: sqlite3.Connection, patience: float = 30.0) -> None:
    """Put the database in WAL mode. The pragma answers "database is locked" at once, without the busy
    timeout, while another process opens or recovers the same file: try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            c.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _Db:
    """Thread-local connections to one file, with retrying write transactions."""

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        path, query = parse_url(url)
        opts = {**query, **options}
        self.path = os.path.abspath(path)
        self.synchronous = str(opts.get("synchronous", "NORMAL")).upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError(f"sqlite option synchronous={self.synchronous!r}: use NORMAL or FULL")
        self.opts = opts
        parent = os.path.dirname(self.path)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the directory {parent} for {url}: {exc}") from exc
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self.closed = False

    def conn(self) -> sqlite3.Connection:
        if self.closed:  # before the cached connection, which would only say "closed database"
            raise Closed(f"sqlite database {self.path} is closed")
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
                _wal(c)
                c.execute(f"PRAGMA synchronous={self.synchronous}")
                c.execute("PRAGMA busy_timeout=60000")
            except sqlite3.Error as exc:
                raise ConnectionLost(f"cannot open sqlite database {self.path}: {exc}") from exc
            self._local.conn = c
            with self._lock:
                # Threads come and go (listener lanes, request threads); close what the finished ones left.
                for thread, old in self._all:
                    if not thread.is_alive():
                        with contextlib.suppress(sqlite3.Error):
                            old.close()
                self._all = [(t, x) for t, x in self._all if t.is_alive()]
                self._all.append((threading.current_thread(), c))
        return c

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: takes the write lock up front, so no deadlock on upgrade).

        Ends with COMMIT, or with ROLLBACK on any error (a failed COMMIT included), so the connection never
        stays inside a transaction. SQLite's operational errors (busy, locked, I/O) become ConnectionLost.
        """
        c = self.conn()
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ConnectionLost(f"sqlite database {self.path} is busy or unavailable: {exc}") from exc
        try:
            yield c
            c.execute("COMMIT")
        except BaseException as exc:
            if c.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise ConnectionLost(f"sqlite database {self.path}: {exc}") from exc
            raise

    def read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        try:
            return fn(self.conn())
        except sqlite3.OperationalError as exc:
            raise ConnectionLost(f"sqlite database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.closed = True
        with self._lock:
            for _, c in self._all:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._all.clear()


def _env_row(env: Envelope) -> tuple[str, str, str | None, str, bytes, bytes]:
    return (
        env.id,
        env.name,
        env.key,
        env.occurred_at.isoformat(),
        orjson.dumps(dict(env.headers)),
        env.payload,
    )


def _row_env(row: Sequence[Any]) -> Envelope:
    id, name, key, occurred_at, headers, payload = row
    return Envelope(
        id=id,
        name=name,
        payload=bytes(payload),
        key=key,
        occurred_at=datetime.fromisoformat(occurred_at),
        headers=orjson.loads(headers),
    )


_BROKER_SCHEMA = """
CREATE TABLE IF NOT EXISTS pk_messages(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, name TEXT NOT NULL, key TEXT,
  occurred_at TEXT NOT NULL, headers BLOB NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pk_groups(grp TEXT PRIMARY KEY, committed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pk_claims(
  grp TEXT NOT NULL, seq INTEGER NOT NULL, owner TEXT, lease_until REAL NOT NULL, attempts INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(grp, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pk_dead_letters(
  id TEXT PRIMARY KEY, grp TEXT NOT NULL, reason TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL,
  original_name TEXT, message_id TEXT, name TEXT, key TEXT, occurred_at TEXT, headers BLOB, payload BLOB,
  raw BLOB, dead_at TEXT NOT NULL);
"""

# In-process wake-ups, so a consumer in the publishing process does not wait for its next poll.
_wakers: dict[str, threading.Condition] = {}
_wakers_lock = threading.Lock()


def _waker(path: str) -> threading.Condition:
    with _wakers_lock:
        return _wakers.setdefault(path, threading.Condition())


class SqliteTransport(Transport):
    capabilities = CAPABILITIES

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.db = _Db(url, options)
        self.lease = float(self.db.opts.get("lease", 30.0))
        self.poll = float(self.db.opts.get("poll", 0.01))
        self.waker = _waker(self.db.path)
        self.db.read(lambda c: c.executescript(_BROKER_SCHEMA))

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        try:
            with self.db.tx() as c:
                c.executemany(
                    "INSERT INTO pk_messages(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
                    [_env_row(e) for e in envelopes],
                )
        except sqlite3.Error as exc:
            raise ConnectionLost(f"sqlite broker {self.db.path}: {exc}") from exc
        with self.waker:
            self.waker.notify_all()

    def consumer(self, group: str, names: Collection[str] | None) -> Consumer:
        return SqliteConsumer(self, group)

    def ping(self) -> None:
        self.db.read(lambda c: c.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self.db.close()

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        sql = (
            "SELECT id, grp, reason, error, attempts, original_name, message_id, name, key, occurred_at, headers,"
            " payload, raw, dead_at FROM pk_dead_letters"
        )
        args: tuple[Any, ...] = ()
        if group is not None:
            sql += " WHERE grp = ?"
            args = (group,)
        rows = self.db.read(lambda c: c.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall())
        out = []
        for r in rows:
            env = _row_env(r[6:12]) if r[6] is not None else None
            out.append(
                DeadLetter(
                    id=r[0],
                    group=r[1],
                    reason=r[2],
                    error=r[3],
                    attempts=r[4],
                    original_name=r[5],
                    envelope=env,
                    raw=bytes(r[12]) if r[12] is not None else None,
                    dead_at=datetime.fromisoformat(r[13]),
                )
            )
        return out

    def replay_dead_letter(self, letter_id: str) -> None:
        with self.db.tx() as c:
            row = c.execute(
                "SELECT message_id, name, key, occurred_at, headers, payload FROM pk_dead_letters WHERE id = ?",
                (letter_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"dead letter {letter_id} does not exist")
            if row[0] is None:
                raise NotFound(f"dead letter {letter_id} has no decodable message to replay")
            c.execute(
                "INSERT INTO pk_messages(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
                row,
            )
            c.execute("DELETE FROM pk_dead_letters WHERE id = ?", (letter_id,))
        with self.waker:
            self.waker.notify_all()


class SqliteConsumer(Consumer):
    def __init__(self, transport: SqliteTransport, group: str) -> None:
        self.t = transport
        self.db = transport.db
        self.group = group
        self.owner = new_id()
        self.lease_seconds: float = transport.lease
        self._closed = False
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO pk_groups(grp, committed) VALUES (?, 0)", (group,))

    def _take(self, max_messages: int) -> list[Delivery]:
        now = time.time()
        g = self.group
        with self.db.tx() as c:
            (committed,) = c.execute("SELECT committed FROM pk_groups WHERE grp = ?", (g,)).fetchone()
            claims = {
                r[0]: r[1:]
                for r in c.execute("SELECT seq, owner, lease_until, attempts, done FROM pk_claims WHERE grp = ?", (g,))
            }
            rows = c.execute(
                "SELECT seq, id, name, key, occurred_at, headers, payload FROM pk_messages"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (committed, max_messages * 4 + len(claims) + 64),
            ).fetchall()
            blocked: set[str] = set()
            out: list[Delivery] = []
            updates = []
            for row in rows:
                seq, key = row[0], row[3]
                claim = claims.get(seq)
                if claim is not None and claim[3]:
                    continue
                live = claim is not None and claim[0] is not None and claim[1] > now
                if live and claim is not None and claim[0] == self.owner:
                    continue
                if live or (key is not None and key in blocked):
                    if key is not None:
                        blocked.add(key)
                    continue
                attempts = (claim[2] if claim is not None else 0) + 1
                updates.append((g, seq, self.owner, now + self.lease_seconds, attempts))
                try:
                    env: Envelope | None = _row_env(row[1:])
                    out.append(Delivery(env, attempt=attempts, token=seq))
                except (ValueError, orjson.JSONDecodeError) as exc:
                    out.append(Delivery(None, attempt=attempts, token=seq, raw=bytes(row[6]), error=str(exc)))
                if len(out) >= max_messages:
                    break
            if updates:
                c.executemany(
                    "INSERT OR REPLACE INTO pk_claims(grp, seq, owner, lease_until, attempts, done)"
                    " VALUES (?,?,?,?,?,0)",
                    updates,
                )
        return out

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise Closed("consumer is closed")
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._take(max_messages)
            except sqlite3.Error as exc:
                raise ConnectionLost(f"sqlite broker {self.db.path}: {exc}") from exc
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            with self.t.waker:
                self.t.waker.wait(min(remaining, self.t.poll))

    def _settle(self, c: sqlite3.Connection, seqs: Sequence[int]) -> None:
        g = self.group
        c.executemany("UPDATE pk_claims SET done = 1 WHERE grp = ? AND seq = ?", [(g, s) for s in seqs])
        (committed,) = c.execute("SELECT committed FROM pk_groups WHERE grp = ?", (g,)).fetchone()
        new = committed
        for seq, done in c.execute(
            "SELECT seq, done FROM pk_claims WHERE grp = ? AND seq > ? ORDER BY seq", (g, committed)
        ).fetchall():
            if not done:
                break
            if (
                seq != new + 1
                and c.execute("SELECT 1 FROM pk_messages WHERE seq > ? AND seq < ? LIMIT 1", (new, seq)).fetchone()
            ):
                break
            new = seq
        if new != committed:
            c.execute("UPDATE pk_groups SET committed = ? WHERE grp = ?", (new, g))
            c.execute("DELETE FROM pk_claims WHERE grp = ? AND seq <= ?", (g, new))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            with self.db.tx() as c:
                self._settle(c, [d.token for d in deliveries])
        except sqlite3.Error as exc:
            raise ConnectionLost(f"sqlite broker {self.db.path}: {exc}") from exc

    def release(self, deliveries: Sequence[Delivery]) -> None:
        with self.db.tx() as c:
            c.executemany(
                "UPDATE pk_claims SET owner = NULL, lease_until = 0 WHERE grp = ? AND seq = ? AND owner = ?"
                " AND done = 0",
                [(self.group, d.token, self.owner) for d in deliveries],
            )
        with self.t.waker:
            self.t.waker.notify_all()

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        env = delivery.envelope
        row: tuple[Any, ...] = _env_row(env) if env is not None else (None,) * 6
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO pk_dead_letters(id, grp, reason, error, attempts, original_name, message_id, name, key,"
                " occurred_at, headers, payload, raw, dead_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    new_id(),
                    letter.group,
                    letter.reason,
                    letter.error,
                    letter.attempts,
                    letter.original_name,
                    *row,
                    delivery.raw,
                    utcnow().isoformat(),
                ),
            )
            self._settle(c, [delivery.token])

    def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        until = time.time() + seconds
        with self.db.tx() as c:
            c.executemany(
                "UPDATE pk_claims SET lease_until = ? WHERE grp = ? AND seq = ? AND owner = ?",
                [(until, self.group, d.token, self.owner) for d in deliveries],
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with self.db.tx() as c:
                c.execute(
                    "UPDATE pk_claims SET owner = NULL, lease_until = 0 WHERE grp = ? AND owner = ? AND done = 0",
                    (self.group, self.owner),
                )
        except (sqlite3.Error, Closed, ConnectionLost):
            pass  # the leases run out by themselves
        with self.t.waker:
            self.t.waker.notify_all()


_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS pk_outbox(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, name TEXT NOT NULL, key TEXT,
  occurred_at TEXT NOT NULL, headers BLOB NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pk_inbox(grp TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY(grp, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pk_inbox_at ON pk_inbox(at);
CREATE TABLE IF NOT EXISTS pk_leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
"""


def _ident(kind: str, name: str) -> str:
    if not _IDENT.match(name):
        raise ConfigError(f"{kind} name {name!r}: use letters, digits and _ (starting with a letter)")
    return name


def _table(collection: str) -> str:
    return "pk_doc_" + _ident("collection", collection)


class SqliteStore(Store):
    def __init__(self, url: str, codec: Codec | None = None, **options: Any) -> None:
        super().__init__(codec)
        self.url = url
        self.db = _Db(url, options)
        self._known: set[str] = set()
        self.db.read(lambda c: c.executescript(_STORE_SCHEMA))

    def ensure_collection(self, name: str, indexes: Sequence[str]) -> None:
        t = _table(name)
        with self.db.tx() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {t}(id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID")
            for f in indexes:
                _ident("field", f)
                c.execute(f"CREATE INDEX IF NOT EXISTS ix_{t}_{f} ON {t}(json_extract(body, '$.{f}'), id)")
        self._known.add(name)

    def _need(self, name: str) -> str:
        if name not in self._known:
            self.ensure_collection(name, ())
        return _table(name)

    def get_raw(self, collection: str, id: str) -> Doc | None:
        t = self._need(collection)
        row = self.db.read(lambda c: c.execute(f"SELECT body FROM {t} WHERE id = ?", (id,)).fetchone())
        return orjson.loads(row[0]) if row else None

    def find_raw(self, collection: str, where: Mapping[str, Any], limit: int, after: str | None) -> list[Doc]:
        t = self._need(collection)
        clauses: list[str] = []
        args: list[Any] = []
        for f, v in where.items():
            _ident("field", f)
            if v is None:
                clauses.append(f"json_extract(body, '$.{f}') IS NULL")
            elif isinstance(v, dict | list):
                clauses.append(f"json_extract(body, '$.{f}') = json(?)")
                args.append(orjson.dumps(v).decode())
            else:
                clauses.append(f"json_extract(body, '$.{f}') = ?")
                args.append(int(v) if isinstance(v, bool) else v)
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        sql = f"SELECT body FROM {t}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [orjson.loads(r[0]) for r in self.db.read(lambda c: c.execute(sql, args).fetchall())]

    def apply(self, ops: Sequence[Operation]) -> list[Doc | None]:
        for op in ops:
            if isinstance(op, Insert | Put | Delete | Update):
                self._need(op.collection)
        results: list[Doc | None] = []
        now = time.time()
        try:
            with self.db.tx() as c:
                for op in ops:
                    result: Doc | None = None
                    if isinstance(op, Insert):
                        try:
                            c.execute(
                                f"INSERT INTO {_table(op.collection)}(id, body) VALUES (?, ?)",
                                (op.doc["id"], orjson.dumps(op.doc).decode()),
                            )
                        except sqlite3.IntegrityError:
                            raise DuplicateError(f"{op.collection}/{op.doc['id']} already exists") from None
                    elif isinstance(op, Put):
                        c.execute(
                            f"INSERT OR REPLACE INTO {_table(op.collection)}(id, body) VALUES (?, ?)",
                            (op.doc["id"], orjson.dumps(op.doc).decode()),
                        )
                    elif isinstance(op, Delete):
                        cur = c.execute(f"DELETE FROM {_table(op.collection)} WHERE id = ?", (op.id,))
                        if op.must_exist and cur.rowcount == 0:
                            raise NotFound(f"{op.collection}/{op.id} does not exist")
                    elif isinstance(op, Update):
                        t = _table(op.collection)
                        row = c.execute(f"SELECT body FROM {t} WHERE id = ?", (op.id,)).fetchone()
                        if row is None:
                            raise NotFound(f"{op.collection}/{op.id} does not exist")
                        result = apply_update(orjson.loads(row[0]), op)
                        c.execute(f"UPDATE {t} SET body = ? WHERE id = ?", (orjson.dumps(result).decode(), op.id))
                    elif isinstance(op, Emit):
                        c.execute(
                            "INSERT INTO pk_outbox(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
                            _env_row(op.envelope),
                        )
                    elif isinstance(op, MarkProcessed):
                        try:
                            c.execute(
                                "INSERT INTO pk_inbox(grp, id, at) VALUES (?,?,?)",
                                (op.group, op.message_id, now),
                            )
                        except sqlite3.IntegrityError:
                            raise AlreadyProcessed(
                                f"message {op.message_id} was processed by {op.group} before"
                            ) from None
                    results.append(result)
        except sqlite3.OperationalError as exc:
            raise ConnectionLost(f"sqlite store {self.db.path}: {exc}") from exc
        return results

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT seq, id, name, key, occurred_at, headers, payload FROM pk_outbox ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [OutboxEntry(r[0], _row_env(r[1:])) for r in rows]

    def outbox_mark_sent(self, seqs: Sequence[int]) -> None:
        with self.db.tx() as c:
            c.executemany("DELETE FROM pk_outbox WHERE seq = ?", [(s,) for s in seqs])

    def outbox_count(self) -> int:
        row = self.db.read(lambda c: c.execute("SELECT COUNT(*) FROM pk_outbox").fetchone())
        return int(row[0])

    def outbox_claim(self, owner: str, seconds: float) -> bool:
        now = time.time()
        with self.db.tx() as c:
            row = c.execute("SELECT owner, until FROM pk_leases WHERE name = 'outbox'").fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            c.execute(
                "INSERT OR REPLACE INTO pk_leases(name, owner, until) VALUES ('outbox', ?, ?)",
                (owner, now + seconds),
            )
            return True

    def inbox_contains(self, group: str, message_id: str) -> bool:
        row = self.db.read(
            lambda c: c.execute("SELECT 1 FROM pk_inbox WHERE grp = ? AND id = ?", (group, message_id)).fetchone()
        )
        return row is not None

    def prune_inbox(self, older_than_seconds: float) -> int:
        with self.db.tx() as c:
            return c.execute("DELETE FROM pk_inbox WHERE at < ?", (time.time() - older_than_seconds,)).rowcount

    def ping(self) -> None:
        self.db.read(lambda c: c.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._closed = True
        self.db.close()


@hookimpl
def pubsubkit_register_brokers(register: Any) -> None:
    register(
        BrokerSpec(
            schemes=("sqlite",),
            factory=SqliteTransport,
            capabilities=CAPABILITIES,
            distribution="pubsubkit",
            description="embedded durable log in a SQLite file, shared by the processes of one machine",
        )
    )


@hookimpl
def pubsubkit_register_stores(register: Any) -> None:
    register(
        StoreSpec(
            schemes=("sqlite",),
            factory=SqliteStore,
            distribution="pubsubkit",
            description="embedded document store in a SQLite file, with outbox and inbox",
            capabilities=StoreCapabilities(transactions=True, persistent=True, multi_process=True),
        )
    )
