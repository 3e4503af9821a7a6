"""How an envelope travels as an AMQP message, compatible with the Go MyEvents services.

- routing key and header ``x-event-name``: the event name; body: the JSON payload, content type
  ``application/json``; persistent (delivery mode 2). That is all a Go MyEvents consumer reads.
- ``message_id`` property: the envelope id; ``timestamp`` property: when it occurred (whole seconds), with the
  exact time in header ``x-pubsubkit-occurred-at``; ``correlation_id`` property and header ``correlation-id``:
  the correlation id; header ``x-pubsubkit-key``: the ordering key. Every other envelope header is an AMQP
  header of the same name.

A message without pubsubkit's headers (a Go MyEvents publisher's) still reads as an envelope: its name comes
from ``x-event-name`` or the routing key, its time from the ``timestamp`` property or the time it was read, and
its id, when ``message_id`` is missing, is made new for each delivery (``missing_id=fresh``, the default: two
byte-identical messages are two messages) or derived from its name, headers and body (``missing_id=hash``:
a redelivery gets the same id, and so does an identical message).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pika

from pubsubkit.envelope import Envelope, Header, new_id, parse_time, time_fields, utcnow
from pubsubkit.transport import DeadLetter

__all__ = [
    "EVENT_NAME",
    "dead_letter_headers",
    "envelope_of",
    "letter_of",
    "properties_of",
    "strip_dead_letter_headers",
]

EVENT_NAME = "x-event-name"
KEY = "x-pubsubkit-key"
OCCURRED_AT = "x-pubsubkit-occurred-at"
CONTENT_TYPE = "application/json"
PERSISTENT = 2

_DL = "x-pubsubkit-dl-"
DL_ID = _DL + "id"
DL_GROUP = _DL + "group"
DL_REASON = _DL + "reason"
DL_ERROR = _DL + "error"
DL_ATTEMPTS = _DL + "attempts"
DL_ORIGINAL_NAME = _DL + "original-name"
DL_AT = _DL + "at"
DL_UNDECODABLE = _DL + "undecodable"

#: Headers the broker or this backend sets, never part of an envelope's headers.
STREAM_OFFSET = "x-stream-offset"  # set by the broker on a message read from a stream (the archive)
_RESERVED = {EVENT_NAME, KEY, OCCURRED_AT, STREAM_OFFSET, "x-delivery-count", "x-death"}
_RESERVED_PREFIXES = ("x-first-death-", "x-last-death-", _DL)
_BROKER_DL_PREFIXES = (_DL, "x-death", "x-first-death-", "x-last-death-")
_ID_NAMESPACE = uuid.UUID("4f6b1c36-58a3-4f1e-9d0c-2b2a8f6c1e55")


def properties_of(env: Envelope) -> pika.BasicProperties:
    """The AMQP properties (and headers) that carry ``env`` besides its body."""
    headers: dict[str, Any] = dict(env.headers)
    headers[EVENT_NAME] = env.name
    text, ts = time_fields(env.occurred_at)
    headers[OCCURRED_AT] = text
    if env.key is not None:
        headers[KEY] = env.key
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        message_id=env.id,
        timestamp=int(ts),
        correlation_id=env.headers.get(Header.CORRELATION_ID),
        headers=headers,
    )


def _text(value: Any) -> str | None:
    """A header value as a string, or None for values with no string form (tables, arrays)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def _reserved(name: str) -> bool:
    return name in _RESERVED or name.startswith(_RESERVED_PREFIXES)


def _derived_id(name: str, headers: Mapping[str, Any], body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(name.encode())
    for k in sorted(headers):
        digest.update(b"\0" + k.encode() + b"\0" + repr(headers[k]).encode())
    digest.update(b"\0\0" + body)
    return str(uuid.uuid5(_ID_NAMESPACE, digest.hexdigest()))


def envelope_of(routing_key: str, props: pika.BasicProperties, body: bytes, missing_id: str = "fresh") -> Envelope:
    """The envelope an AMQP message carries; ValueError when it cannot carry one (a poison message)."""
    raw_headers: Mapping[str, Any] = props.headers or {}
    name = _text(raw_headers.get(EVENT_NAME)) or routing_key
    if not name:
        raise ValueError("no event name: neither an x-event-name header nor a routing key")
    headers: dict[str, str] = {}
    for k, v in raw_headers.items():
        if _reserved(k):
            continue
        text = _text(v)
        if text is not None:
            headers[k] = text
    if props.correlation_id and Header.CORRELATION_ID not in headers:
        headers[Header.CORRELATION_ID] = props.correlation_id
    occurred = raw_headers.get(OCCURRED_AT)
    if occurred is not None:
        text = _text(occurred)
        if text is None:
            raise ValueError(f"header {OCCURRED_AT} is not a time: {occurred!r}")
        occurred_at = parse_time(text)
        if occurred_at.tzinfo is None:
            raise ValueError(f"header {OCCURRED_AT} has no time zone: {text!r}")
        occurred_at = occurred_at.astimezone(UTC)
    elif isinstance(props.timestamp, int):
        occurred_at = datetime.fromtimestamp(props.timestamp, UTC)
    else:
        occurred_at = utcnow()
    key = raw_headers.get(KEY)
    key_text = _text(key) if key is not None else None
    if key is not None and key_text is None:
        raise ValueError(f"header {KEY} is not a string: {key!r}")
    message_id = props.message_id
    if not message_id:
        message_id = _derived_id(name, raw_headers, body) if missing_id == "hash" else new_id()
    return Envelope(id=message_id, name=name, payload=body, key=key_text, occurred_at=occurred_at, headers=headers)


def dead_letter_headers(letter: DeadLetter, letter_id: str, undecodable: bool) -> dict[str, Any]:
    """The headers that describe a dead letter, added to the original message's."""
    at = letter.dead_at or utcnow()
    headers: dict[str, Any] = {
        DL_ID: letter_id,
        DL_GROUP: letter.group,
        DL_REASON: letter.reason,
        DL_ERROR: letter.error,
        DL_ATTEMPTS: letter.attempts,
        DL_AT: at.isoformat(),
    }
    if letter.original_name is not None:
        headers[DL_ORIGINAL_NAME] = letter.original_name
    if undecodable:
        headers[DL_UNDECODABLE] = True
    return headers


def strip_dead_letter_headers(props: pika.BasicProperties) -> pika.BasicProperties:
    """A copy of ``props`` without the dead-letter headers (for replaying the original message)."""
    headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith(_BROKER_DL_PREFIXES)}
    return pika.BasicProperties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        delivery_mode=PERSISTENT,
        message_id=props.message_id,
        timestamp=props.timestamp,
        correlation_id=props.correlation_id,
        headers=headers,
    )


def letter_of(group: str, props: pika.BasicProperties, body: bytes, missing_id: str) -> DeadLetter:
    """The dead letter a message of ``group``'s dead-letter queue describes.

    Its id is ``<group>/<id>``; a message the broker dead-lettered by itself (no pubsubkit headers) gets the
    id of its envelope, or one derived from its bytes.
    """
    h: Mapping[str, Any] = props.headers or {}
    envelope: Envelope | None = None
    raw: bytes | None = None
    if h.get(DL_UNDECODABLE):
        raw = body
    else:
        try:
            envelope = envelope_of("", strip_dead_letter_headers(props), body, missing_id)
        except ValueError:
            raw = body
    dead_at_text = _text(h.get(DL_AT))
    letter_id = _text(h.get(DL_ID))
    if letter_id is None:
        letter_id = f"{group}/{envelope.id if envelope is not None else _derived_id(group, h, body)}"
    return DeadLetter(
        group=_text(h.get(DL_GROUP)) or group,
        reason=_text(h.get(DL_REASON)) or "rejected",
        error=_text(h.get(DL_ERROR)) or "dead-lettered by the broker",
        attempts=int(h.get(DL_ATTEMPTS) or h.get("x-delivery-count") or 1),
        original_name=_text(h.get(DL_ORIGINAL_NAME)) or (envelope.name if envelope is not None else None),
        envelope=envelope,
        raw=raw,
        dead_at=datetime.fromisoformat(dead_at_text) if dead_at_text else None,
        id=letter_id,
    )
