"""Envelopes on the Kafka wire, compatible with the Go MyEvents.

The message value is the Go original's JSON, ``{"eventName": <name>, "payload": <payload object>}``; the message
key is the envelope's key (which picks the partition); pubsubkit's own metadata rides in headers: ``pubsubkit-id``
and ``pubsubkit-time``, beside the envelope's headers (correlation id, causation id, traceparent...) under their
own names. A message without ``pubsubkit-id`` (from a Go service or any other producer) gets an id derived from
its topic, partition and offset, and its broker timestamp as the time it occurred.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from pubsubkit.envelope import Envelope, parse_time, time_fields
from pubsubkit.transport import DeadLetter, Delivery

__all__ = [
    "ID_HEADER",
    "TIME_HEADER",
    "Record",
    "decode",
    "derived_id",
    "encode_value",
    "letter_headers",
    "message_headers",
    "records",
]

#: (value, key, headers, timestamp in ms) of one message to produce.
Record = tuple[bytes, str | None, list[tuple[str, str | bytes | None]], int]

ID_HEADER = "pubsubkit-id"
TIME_HEADER = "pubsubkit-time"
#: Headers of a dead letter, beside the original message's.
DL_PREFIX = "pubsubkit-dl-"

_HEAD = b'{"eventName":'
_MID = b',"payload":'
_NAMESPACE = uuid.UUID("0b8e3a4c-5f1d-4d0e-9b7a-6f2c1e0a9d31")


_heads: dict[str, bytes] = {}


def encode_value(envelope: Envelope) -> bytes:
    """The Go MyEvents value: ``{"eventName": name, "payload": payload}``, the payload bytes kept as they are."""
    head = _heads.get(envelope.name)
    if head is None:
        head = b"".join((_HEAD, orjson.dumps(envelope.name), _MID))
        if len(_heads) < 4096:  # event names are few: remember their encoded start
            _heads[envelope.name] = head
    return b"".join((head, envelope.payload, b"}"))


def message_headers(envelope: Envelope) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers of ``envelope``: its id and time, then its own headers (text: the client encodes it as
    UTF-8)."""
    out: list[tuple[str, str | bytes | None]] = [
        (ID_HEADER, envelope.id),
        (TIME_HEADER, time_fields(envelope.occurred_at)[0]),
    ]
    out.extend(envelope.headers.items())
    return out


def records(envelopes: Sequence[Envelope]) -> list[Record]:
    """The records of ``envelopes``, as :func:`encode_value` and :func:`message_headers` make them; the time of
    envelopes made together (one object) is formatted once."""
    out: list[Record] = []
    for e in envelopes:
        text, ts = time_fields(e.occurred_at)
        headers: list[tuple[str, str | bytes | None]] = [(ID_HEADER, e.id), (TIME_HEADER, text)]
        headers.extend(e.headers.items())
        out.append((encode_value(e), e.key, headers, int(ts * 1000)))
    return out


def letter_headers(letter: DeadLetter, letter_id: str, dead_at: datetime) -> list[tuple[str, str | bytes | None]]:
    """Headers saying why a message was dead-lettered."""
    fields = {
        "id": letter_id,
        "group": letter.group,
        "reason": letter.reason,
        "error": letter.error,
        "attempts": str(letter.attempts),
        "original-name": letter.original_name or "",
        "dead-at": dead_at.isoformat(),
    }
    return [(DL_PREFIX + k, v.encode()) for k, v in fields.items()]


def derived_id(topic: str, partition: int, offset: int) -> str:
    """The id of a message that came without one: the same for every consumer of that record."""
    return str(uuid.uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}"))


_names: dict[bytes, str] = {}


def _split_value(value: bytes) -> tuple[str, bytes] | None:
    """``(name, payload bytes)`` of a value pubsubkit wrote, without parsing the payload; ``None`` if not one."""
    if not value.startswith(_HEAD) or not value.endswith(b"}"):
        return None
    mid = value.find(_MID, len(_HEAD))
    if mid < 0:
        return None
    quoted = value[len(_HEAD) : mid]
    name = _names.get(quoted)
    if name is None:
        try:
            parsed = orjson.loads(quoted)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, str):
            return None
        name = parsed
        if len(_names) < 4096:  # event names are few: remember their decoded form
            _names[quoted] = name
    return name, value[mid + len(_MID) : -1]


def _parse_value(value: bytes) -> tuple[str, bytes]:
    """``(name, payload bytes)`` of any value in the Go format; raises ``ValueError`` when it is not one."""
    data: Any = orjson.loads(value)
    if not isinstance(data, dict):
        raise ValueError(f"the message value is a JSON {type(data).__name__}, not an object")
    name = data.get("eventName")
    if not isinstance(name, str) or not name:
        raise ValueError("the message value has no eventName")
    if "payload" not in data:
        raise ValueError("the message value has no payload")
    return name, orjson.dumps(data["payload"])


def decode(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, str | bytes | None]] | None,
    timestamp_ms: int,
    attempt: int,
    token: Any,
    revoked: threading.Event | None = None,
) -> Delivery:
    """The delivery of one Kafka record; an undecodable record becomes a poison delivery with its raw bytes."""
    raw = value or b""
    try:
        # The header values are text (bytes on the wire); pubsubkit's id and time come out of them, the rest is
        # the envelope's. A name given twice keeps its last value.
        own = {name: hv.decode() if isinstance(hv, bytes) else (hv or "") for name, hv in headers or ()}
        message_id = own.pop(ID_HEADER, None)
        occurred = own.pop(TIME_HEADER, None)
        parsed = _split_value(raw) if message_id is not None else None
        event_name, payload = parsed if parsed is not None else _parse_value(raw)
        at = parse_time(occurred) if occurred is not None else datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)
        envelope = Envelope(
            message_id or derived_id(topic, partition, offset),
            event_name,
            payload,
            key.decode() if key is not None else None,
            at,
            own,
        )
    except (ValueError, UnicodeDecodeError) as exc:  # orjson.JSONDecodeError is a ValueError
        error = f"undecodable Kafka record: {exc}"
        return Delivery(None, attempt=attempt, token=token, raw=raw, error=error, revoked=revoked)
    return Delivery(envelope, attempt, token, None, None, revoked)
