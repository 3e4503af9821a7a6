"""The envelope every message travels in, and its time-ordered ids."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

import attrs

__all__ = [
    "Envelope",
    "Header",
    "add_header_stamp",
    "header_stamps",
    "new_id",
    "new_ids",
    "parse_time",
    "remove_header_stamp",
    "time_fields",
    "utcnow",
]


class Header:
    """Names of the headers pubsubkit itself reads and writes."""

    CORRELATION_ID: Final = "correlation-id"
    CAUSATION_ID: Final = "causation-id"
    TRACEPARENT: Final = "traceparent"
    ATTEMPT: Final = "attempt"
    SCHEMA_VERSION: Final = "schema-version"


#: Functions called each time envelopes are made (by an emitter or a unit of work; once for the envelopes of
#: one ``emit_many``, made together), in the caller's thread and context; the headers they return are added to
#: them unless the caller gave the same header. A tracing plugin stamps the current trace context
#: (``traceparent``) this way. Empty unless a plugin added one.
_stamps: list[Callable[[], Mapping[str, str] | None]] = []


def add_header_stamp(stamp: Callable[[], Mapping[str, str] | None]) -> None:
    """Add headers from ``stamp()`` to every envelope made from now on, in this process (once per function).

    ``stamp`` is called once per envelope, or once for envelopes made together (:meth:`Codec.envelopes`)."""
    if stamp not in _stamps:
        _stamps.append(stamp)


def remove_header_stamp(stamp: Callable[[], Mapping[str, str] | None]) -> None:
    """Undo :func:`add_header_stamp`."""
    if stamp in _stamps:
        _stamps.remove(stamp)


def header_stamps() -> list[Callable[[], Mapping[str, str] | None]]:
    """The stamps added so far (a copy)."""
    return list(_stamps)


_lock = threading.Lock()
_last_ms = 0
_seq = 0
#: The first 15 characters of the ids of millisecond ``_last_ms`` (time and version).
_prefix = ""
#: Random hex digits, from the OS 2 KiB at a time (one system call per 256 ids), and how many are used.
_random = ""
_taken = 0
#: The first digit of the variant group: the bits ``10`` and two random bits.
_VARIANT = "89ab" * 4


def _forget_random() -> None:
    """A forked child must not hand out the random digits its parent goes on using (nor wait for a lock that
    a thread of its parent held)."""
    global _lock, _random, _taken
    _lock = threading.Lock()
    _random, _taken = "", 0


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """Return a new UUIDv7 string: unique, and sorting in creation order within one process.

    48 bits of Unix milliseconds, the version, a 12-bit counter that keeps ids made in the same millisecond
    ordered, the variant and 62 random bits.
    """
    global _last_ms, _seq, _prefix, _random, _taken
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
                h = f"{_last_ms:012x}"
                _prefix = f"{h[:8]}-{h[8:]}-7"
        else:
            _last_ms = ms
            _seq = 0
            h = f"{ms:012x}"
            _prefix = f"{h[:8]}-{h[8:]}-7"
        seq = _seq
        prefix = _prefix
        if _taken >= len(_random):
            _random, _taken = os.urandom(2048).hex(), 0
        r = _random[_taken : _taken + 16]
        _taken += 16
    return f"{prefix}{seq:03x}-{_VARIANT[int(r[0], 16)]}{r[1:4]}-{r[4:]}"


def new_ids(count: int) -> list[str]:
    """``count`` new ids (see :func:`new_id`), in creation order, drawn together: one lock and one clock reading
    for all of them (the counter orders those of one millisecond, as it does for ids drawn one by one).

    The same steps as :func:`new_id`, which keeps its own copy: for one id, it is faster by a third.
    """
    global _last_ms, _seq, _prefix, _random, _taken
    out = []
    with _lock:
        ms = time.time_ns() // 1_000_000
        last, seq, prefix, rand, taken = _last_ms, _seq, _prefix, _random, _taken
        for _ in range(count):
            if ms <= last:
                seq += 1
                if seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                    last += 1
                    seq = 0
                    h = f"{last:012x}"
                    prefix = f"{h[:8]}-{h[8:]}-7"
            else:
                last = ms
                seq = 0
                h = f"{ms:012x}"
                prefix = f"{h[:8]}-{h[8:]}-7"
            if taken >= len(rand):
                rand, taken = os.urandom(2048).hex(), 0
            r = rand[taken : taken + 16]
            taken += 16
            out.append(f"{prefix}{seq:03x}-{_VARIANT[int(r[0], 16)]}{r[1:4]}-{r[4:]}")
        _last_ms, _seq, _prefix, _random, _taken = last, seq, prefix, rand, taken
    return out


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


#: The time :func:`time_fields` formatted last, and the time :func:`parse_time` parsed last, with their results:
#: the envelopes made together share one time object, and a batch received shares its time text.
_formatted: tuple[datetime | None, str, float] = (None, "", 0.0)
_parsed: tuple[str, datetime | None] = ("", None)


def time_fields(at: datetime) -> tuple[str, float]:
    """``(at.isoformat(), at.timestamp())``, the wire forms of an envelope's time, computed once for envelopes
    that share their time object (those of one ``emit_many``)."""
    global _formatted
    last, text, ts = _formatted
    if at is not last:
        text, ts = at.isoformat(), at.timestamp()
        _formatted = (at, text, ts)
    return text, ts


def parse_time(text: str) -> datetime:
    """``datetime.fromisoformat(text)``, parsed once for the messages of a batch that carry the same text."""
    global _parsed
    last, at = _parsed
    if text != last or at is None:
        at = datetime.fromisoformat(text)
        _parsed = (text, at)
    return at


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
        """The conversation this event belongs to (header ``correlation-id``), if any."""
        return self.headers.get(Header.CORRELATION_ID)

    @property
    def attempt(self) -> int:
        """The attempt header some brokers carry (1 when absent)."""
        try:
            return int(self.headers.get(Header.ATTEMPT, "1"))
        except ValueError:
            return 1

    @property
    def schema_version(self) -> int:
        """The schema version of the payload (header ``schema-version``, 1 when absent)."""
        text = self.headers.get(Header.SCHEMA_VERSION)
        if text is None:
            return 1
        try:
            return int(text)
        except ValueError:
            return 1

    def with_headers(self, **extra: str) -> Envelope:
        """A copy with headers added or replaced (keyword names use ``_`` for ``-``)."""
        merged = dict(self.headers)
        merged.update({k.replace("_", "-"): v for k, v in extra.items()})
        return attrs.evolve(self, headers=merged)
