"""A member of a consumer group of the SQLite broker: claims, settles and dead-letters messages of the log."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import orjson

from pubsubkit.backends.sqlite.wire import Database, env_row, row_env
from pubsubkit.envelope import Envelope, new_id, utcnow
from pubsubkit.errors import Closed, ConnectionLost
from pubsubkit.transport import Consumer, DeadLetter, Delivery

__all__ = ["BUSY_POLL", "BUSY_SECONDS", "SqliteConsumer"]

#: Seconds between looks for messages of other processes while messages flow (the ``poll`` option when idle).
BUSY_POLL = 0.001
#: How long after the last message received the consumer counts as busy, in seconds.
BUSY_SECONDS = 2.0


class SqliteConsumer(Consumer):
    """One member of consumer group ``group``: claims messages of the log for ``lease`` seconds at a time."""

    def __init__(
        self, db: Database, waker: threading.Condition, group: str, *, lease: float, poll: float, history: bool = True
    ) -> None:
        self.db = db
        self.waker = waker
        self.poll = poll
        self.group = group
        self.owner = new_id()
        self.lease_seconds: float = lease
        self._closed = False
        self._busy_until = 0.0
        with self.db.tx() as c:
            # A new group starts before the first message kept, or (without history) after the last one so far.
            start = "0" if history else "(SELECT COALESCE(MAX(seq), 0) FROM pk_messages)"
            c.execute(f"INSERT OR IGNORE INTO pk_groups(grp, committed) VALUES (?, {start})", (group,))

    def _take(self, max_messages: int) -> list[Delivery]:
        now = time.time()
        g = self.group
        with self.db.tx() as c:
            (committed,) = c.execute("SELECT committed FROM pk_groups WHERE grp = ?", (g,)).fetchone()
            claims = {
                r[0]: r[1:]
                for r in c.execute("SELECT seq, owner, lease_until, attempts, done FROM pk_claims WHERE grp = ?", (g,))
            }
            # Read row by row: the scan stops once enough are taken, without fetching the rest of the window.
            rows = c.execute(
                "SELECT seq, id, name, key, occurred_at, headers, payload FROM pk_messages"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (committed, max_messages * 4 + len(claims) + 64),
            )
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
                    env: Envelope | None = row_env(row[1:])
                    out.append(Delivery(env, attempt=attempts, token=seq))
                except (ValueError, orjson.JSONDecodeError) as exc:
                    out.append(Delivery(None, attempt=attempts, token=seq, raw=bytes(row[6]), error=str(exc)))
                if len(out) >= max_messages:
                    break
            rows.close()
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
            now = time.monotonic()
            if got:
                self._busy_until = now + BUSY_SECONDS
                return got
            if now >= deadline:
                return got
            self._wait_for_change(deadline)

    def _wait_for_change(self, deadline: float) -> None:
        """Until something may have been published: by this process (the waker), by another process (a commit
        of another connection changes ``PRAGMA data_version``, a cheap read that takes no lock), or the
        deadline. While messages flow it looks every :data:`BUSY_POLL` seconds, else every ``poll``."""
        conn = self.db.conn()
        try:
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                tick = BUSY_POLL if now < self._busy_until else self.poll
                with self.waker:
                    if self.waker.wait(min(deadline - now, max(tick, 1e-4))):
                        return
                if conn.execute("PRAGMA data_version").fetchone()[0] != version:
                    return
        except sqlite3.Error as exc:
            raise ConnectionLost(f"sqlite broker {self.db.path}: {exc}") from exc

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
        with self.waker:
            self.waker.notify_all()

    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        env = delivery.envelope
        row: tuple[Any, ...] = env_row(env) if env is not None else (None,) * 6
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
        with self.waker:
            self.waker.notify_all()
