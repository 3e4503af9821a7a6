"""The SQLite broker: a message log in the file, with a committed offset and leased claims per consumer group."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pubsubkit.backends.sqlite.consumer import SqliteConsumer
from pubsubkit.backends.sqlite.options import CAPABILITIES, parse
from pubsubkit.backends.sqlite.wire import Database, env_row, row_env
from pubsubkit.envelope import Envelope
from pubsubkit.errors import ConnectionLost, NotFound
from pubsubkit.transport import Consumer, DeadLetter, Transport

__all__ = ["SqliteTransport"]

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


def _letter(r: Sequence[Any]) -> DeadLetter:
    """A dead letter of a row of ``pk_dead_letters``."""
    return DeadLetter(
        id=r[0],
        group=r[1],
        reason=r[2],
        error=r[3],
        attempts=r[4],
        original_name=r[5],
        envelope=row_env(r[6:12]) if r[6] is not None else None,
        raw=bytes(r[12]) if r[12] is not None else None,
        dead_at=datetime.fromisoformat(r[13]),
    )


class SqliteTransport(Transport):
    capabilities = CAPABILITIES

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = parse(url, options)
        self.db = Database(url, self.options)
        self.lease = self.options.lease
        self.poll = self.options.poll
        self.waker = _waker(self.db.path)
        self.db.read(lambda c: c.executescript(_BROKER_SCHEMA))

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        try:
            with self.db.tx() as c:
                c.executemany(
                    "INSERT INTO pk_messages(id, name, key, occurred_at, headers, payload) VALUES (?,?,?,?,?,?)",
                    [env_row(e) for e in envelopes],
                )
        except sqlite3.Error as exc:
            raise ConnectionLost(f"sqlite broker {self.db.path}: {exc}") from exc
        with self.waker:
            self.waker.notify_all()

    def consumer(self, group: str, names: Collection[str] | None) -> Consumer:
        return SqliteConsumer(self.db, self.waker, group, lease=self.lease, poll=self.poll)

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
        return [_letter(r) for r in rows]

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
