"""The SQLite file: thread-local connections, write transactions, and envelopes as table rows."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson

from pubsubkit.backends.sqlite.options import SqliteOptions
from pubsubkit.envelope import Envelope, parse_time, time_fields
from pubsubkit.errors import Closed, ConfigError, ConnectionLost
from pubsubkit.retry import Backoff, retry_call

__all__ = ["Database", "env_row", "row_env"]

R = TypeVar("R")


#: Waits between tries of the WAL pragma while another process holds the file.
_WAL_BACKOFF = Backoff(initial=0.05, multiplier=1.0, max_delay=0.05)


def _wal(c: sqlite3.Connection, stop: threading.Event, patience: float = 30.0) -> None:
    """Put the database in WAL mode. The pragma answers "database is locked" at once, without the busy
    timeout, while another process opens or recovers the same file: try again for a while (or until
    ``stop``)."""
    retry_call(
        lambda: c.execute("PRAGMA journal_mode=WAL"),
        retry_on=(sqlite3.OperationalError,),
        retryable=lambda exc: "locked" in str(exc),
        stop=stop,
        backoff=_WAL_BACKOFF,
        deadline=time.monotonic() + patience,
    )


#: SQLite's result codes that no retry cures when opening a file: not a database, corrupt, cannot be opened,
#: no permission, read-only.
_PERMANENT = {
    26: "it is not a SQLite database",
    11: "it is corrupt",
    14: "it cannot be opened (does its directory exist?)",
    3: "permission denied",
    8: "it is read-only",
}


def opening_error(path: str, exc: sqlite3.Error) -> ConfigError | ConnectionLost:
    """``exc`` from opening ``path``: a ConfigError naming the fix when no retry can cure it, else ConnectionLost."""
    why = _PERMANENT.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
    if why is not None:
        return ConfigError(
            f"sqlite database {path}: {why} ({exc}); point the URL at a SQLite database file, or at a new file in a"
            " writable directory"
        )
    return ConnectionLost(f"cannot open sqlite database {path}: {exc}")


class Database:
    """Thread-local connections to one file, with retrying write transactions."""

    def __init__(self, url: str, options: SqliteOptions) -> None:
        self.options = options
        self.path = os.path.abspath(options.path)
        self.synchronous = options.synchronous
        parent = os.path.dirname(self.path)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the directory {parent} for {url}: {exc}") from exc
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self.closing = threading.Event()  # set by close(): ends the waits of retries

    @property
    def closed(self) -> bool:
        return self.closing.is_set()

    def conn(self) -> sqlite3.Connection:
        if self.closed:  # before the cached connection, which would only say "closed database"
            raise Closed(f"sqlite database {self.path} is closed")
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
                _wal(c, self.closing)
                c.execute(f"PRAGMA synchronous={self.synchronous}")
                c.execute("PRAGMA busy_timeout=60000")
            except sqlite3.Error as exc:
                raise opening_error(self.path, exc) from exc
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
        self.closing.set()
        with self._lock:
            for _, c in self._all:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._all.clear()


def env_row(env: Envelope) -> tuple[str, str, str | None, str, bytes, bytes]:
    """The columns ``id, name, key, occurred_at, headers, payload`` of an envelope."""
    return (
        env.id,
        env.name,
        env.key,
        time_fields(env.occurred_at)[0],
        orjson.dumps(dict(env.headers)),
        env.payload,
    )


def row_env(row: Sequence[Any]) -> Envelope:
    """The envelope of the columns ``id, name, key, occurred_at, headers, payload``."""
    id, name, key, occurred_at, headers, payload = row
    return Envelope(
        id=id,
        name=name,
        payload=bytes(payload),
        key=key,
        occurred_at=parse_time(occurred_at),
        headers=orjson.loads(headers),
    )
