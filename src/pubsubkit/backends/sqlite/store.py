"""The SQLite store: a table of JSON documents per collection, the outbox and the inbox in the same file."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from pubsubkit.backends.sqlite.options import parse
from pubsubkit.backends.sqlite.wire import Database, env_row, row_env
from pubsubkit.codec import Codec
from pubsubkit.errors import AlreadyProcessed, ConfigError, ConnectionLost, DuplicateError, NotFound
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

__all__ = ["SqliteStore"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

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


def _apply_one(c: sqlite3.Connection, op: Operation, now: float) -> Doc | None:
    """Carry out one operation of a unit of work inside its transaction; the document an update made, or None."""
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
        result: Doc = apply_update(orjson.loads(row[0]), op)
        c.execute(f"UPDATE {t} SET body = ? WHERE id = ?", (orjson.dumps(result).decode(), op.id))
        return result
    elif isinstance(op, Emit):
        c.execute(
            "INSERT INTO pk_outbox(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
            env_row(op.envelope),
        )
    elif isinstance(op, MarkProcessed):
        try:
            c.execute("INSERT INTO pk_inbox(grp, id, at) VALUES (?,?,?)", (op.group, op.message_id, now))
        except sqlite3.IntegrityError:
            raise AlreadyProcessed(f"message {op.message_id} was processed by {op.group} before") from None
    return None


class SqliteStore(Store):
    """Documents, outbox and inbox in one SQLite file; a unit of work is one transaction."""

    def __init__(self, url: str, codec: Codec | None = None, **options: Any) -> None:
        super().__init__(codec)
        self.url = url
        self.options = parse(url, options)
        self.db = Database(url, self.options)
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
        now = time.time()
        try:
            with self.db.tx() as c:
                return [_apply_one(c, op, now) for op in ops]
        except sqlite3.OperationalError as exc:
            raise ConnectionLost(f"sqlite store {self.db.path}: {exc}") from exc

    def outbox_pending(self, limit: int) -> list[OutboxEntry]:
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT seq, id, name, key, occurred_at, headers, payload FROM pk_outbox ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [OutboxEntry(r[0], row_env(r[1:])) for r in rows]

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
