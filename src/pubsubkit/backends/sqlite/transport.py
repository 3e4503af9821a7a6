"""The SQLite broker: a message log in the file, with a committed offset and leased claims per consumer group."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pubsubkit.backends.sqlite.consumer import SqliteConsumer
from pubsubkit.backends.sqlite.options import CAPABILITIES, parse
from pubsubkit.backends.sqlite.wire import Database, env_row, row_env
from pubsubkit.envelope import Envelope, utcnow
from pubsubkit.errors import ConnectionLost, NotFound
from pubsubkit.transport import Consumer, DeadLetter, Transport

__all__ = ["TRIM_INTERVAL", "SqliteTransport"]

log = logging.getLogger("pubsubkit.sqlite")

#: Seconds between two trims of the log with the ``retention`` option.
TRIM_INTERVAL = 60.0

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
        self._next_trim = 0.0

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
        self._trim_now_and_then()

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        return SqliteConsumer(self.db, self.waker, group, lease=self.lease, poll=self.poll, history=history)

    # --- retention ----------------------------------------------------------------------------------

    def trim(self, older_than: float = 0.0) -> int:
        """Delete the messages every consumer group has settled that were published more than ``older_than``
        seconds ago; returns how many. A group that joins later starts at the first message kept.

        Only what every group that ever joined has settled goes: a group nobody runs any more holds the log at
        its offset until it is removed with :meth:`forget_group`. The file keeps its size (SQLite reuses the
        pages); ``VACUUM`` gives them back to the disk.
        """
        cutoff = (utcnow() - timedelta(seconds=older_than)).isoformat()
        with self.db.tx() as c:
            (settled,) = c.execute("SELECT MIN(committed) FROM pk_groups").fetchone()
            if settled is None:
                return 0
            return int(
                c.execute("DELETE FROM pk_messages WHERE seq <= ? AND occurred_at < ?", (settled, cutoff)).rowcount
            )

    def forget_group(self, group: str) -> bool:
        """Remove ``group``'s offset and claims (its dead letters stay): it no longer holds the log back, and if
        it joins again it starts at the first message kept. Returns whether the group existed."""
        with self.db.tx() as c:
            c.execute("DELETE FROM pk_claims WHERE grp = ?", (group,))
            return bool(c.execute("DELETE FROM pk_groups WHERE grp = ?", (group,)).rowcount)

    def reset_group(self, group: str, since: datetime | None = None) -> int:
        """Move ``group``'s offset back to the first message kept (``since`` None) or to the first that occurred
        at or after ``since``, and drop its claims: its members receive those messages again."""
        with self.db.tx() as c:
            if c.execute("SELECT 1 FROM pk_groups WHERE grp = ?", (group,)).fetchone() is None:
                raise NotFound(f"no consumer group {group} in {self.db.path} (pubsubkit groups lists them)")
            if since is None:
                (first,) = c.execute("SELECT MIN(seq) FROM pk_messages").fetchone()
            else:
                at = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
                (first,) = c.execute("SELECT MIN(seq) FROM pk_messages WHERE occurred_at >= ?", (at,)).fetchone()
            if first is None:
                (last,) = c.execute("SELECT COALESCE(MAX(seq), 0) FROM pk_messages").fetchone()
                first = last + 1
            c.execute("UPDATE pk_groups SET committed = ? WHERE grp = ?", (first - 1, group))
            c.execute("DELETE FROM pk_claims WHERE grp = ?", (group,))
            (count,) = c.execute("SELECT COUNT(*) FROM pk_messages WHERE seq >= ?", (first,)).fetchone()
        with self.waker:
            self.waker.notify_all()
        return int(count)

    def lag(self, group: str) -> dict[str, int] | None:
        """The messages ``group`` has not settled yet, as ``{"log": n}``; ``None`` for a group that never joined."""
        row = self.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM pk_messages m WHERE m.seq > g.committed)"
                " - (SELECT COUNT(*) FROM pk_claims k WHERE k.grp = g.grp AND k.done = 1) FROM pk_groups g"
                " WHERE g.grp = ?",
                (group,),
            ).fetchone()
        )
        return None if row is None else {"log": int(row[0])}

    def groups(self) -> dict[str, int]:
        """Every consumer group that joined, and how many messages it has not settled yet."""
        rows = self.db.read(
            lambda c: c.execute(
                "SELECT g.grp, (SELECT COUNT(*) FROM pk_messages m WHERE m.seq > g.committed)"
                " - (SELECT COUNT(*) FROM pk_claims k WHERE k.grp = g.grp AND k.done = 1) FROM pk_groups g"
            ).fetchall()
        )
        return {grp: int(n) for grp, n in rows}

    def _trim_now_and_then(self) -> None:
        """With the ``retention`` option, trim at most once a minute, after a publish."""
        retention = self.options.retention
        if retention is None:
            return
        now = time.monotonic()
        if now < self._next_trim:
            return
        self._next_trim = now + TRIM_INTERVAL
        try:
            removed = self.trim(retention)
        except (sqlite3.Error, ConnectionLost) as exc:  # the publish succeeded; the next one tries again
            log.warning("sqlite broker %s: trimming the log failed: %s", self.db.path, exc)
            return
        if removed:
            log.info("sqlite broker %s: trimmed %d messages older than %gs", self.db.path, removed, retention)

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
