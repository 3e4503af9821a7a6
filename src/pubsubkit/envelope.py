"""The envelope every message travels in, and its time-ordered ids."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import attrs

__all__ = ["Envelope", "Header", "new_id", "utcnow"]


class Header:
    """Names of the headers pubsubkit itself reads and writes."""

    CORRELATION_ID: Final = "correlation-id"
    CAUSATION_ID: Final = "causation-id"
    TRACEPARENT: Final = "traceparent"
    ATTEMPT: Final = "attempt"
    SCHEMA_VERSION: Final = "schema-version"


_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_id() -> str:
    """Return a new UUIDv7 string: unique, and sorting in creation order within one process.

    The 12-bit counter after the millisecond timestamp keeps ids made in the same millisecond ordered.
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _seq = 0
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@attrs.frozen(slots=True)
class Envelope:
    """One message: identity, routing and metadata around an encoded payload.

    :ivar id: unique, time-ordered message id (UUIDv7); consumers de-duplicate on it.
    :ivar name: the registered event name (``eventCreated``), also the routing key on brokers that route.
    :ivar payload: the event encoded as JSON bytes.
    :ivar key: ordering key, usually the aggregate id; messages with one key are handled in order.
    :ivar occurred_at: when the event happened (UTC).
    :ivar headers: string headers: correlation id, causation id, traceparent, attempt, schema version, and any
        of the caller's own.
    """

    id: str
    name: str
    payload: bytes
    key: str | None = None
    occurred_at: datetime = attrs.field(factory=utcnow)
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def correlation_id(self) -> str | None:
        return self.headers.get(Header.CORRELATION_ID)

    @property
    def attempt(self) -> int:
        try:
            return int(self.headers.get(Header.ATTEMPT, "1"))
        except ValueError:
            return 1

    @property
    def schema_version(self) -> int:
        try:
            return int(self.headers.get(Header.SCHEMA_VERSION, "1"))
        except ValueError:
            return 1

    def with_headers(self, **extra: str) -> Envelope:
        """A copy with headers added or replaced (keyword names use ``_`` for ``-``)."""
        merged = dict(self.headers)
        merged.update({k.replace("_", "-"): v for k, v in extra.items()})
        return attrs.evolve(self, headers=merged)
