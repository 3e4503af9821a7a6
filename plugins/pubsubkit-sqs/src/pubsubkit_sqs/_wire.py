"""The wire format: an envelope as an SQS message, compatible with the Go MyEvents.

The body is the event's JSON payload and the message attribute ``event_name`` (String) names the event, as
the original wrote them. pubsubkit adds its own metadata in further String attributes (``event_id``,
``event_time``, ``event_key``, ``correlation_id``, ``headers``). A message carrying only ``event_name`` is a
valid envelope: its id is the SQS MessageId and its time the SentTimestamp.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from pubsubkit.envelope import Envelope, Header, parse_time, time_fields

__all__ = [
    "ATTR_EVENT_NAME",
    "decode",
    "encode_attributes",
    "encode_body",
]

ATTR_EVENT_NAME = "event_name"
ATTR_ID = "event_id"
ATTR_TIME = "event_time"
ATTR_KEY = "event_key"
ATTR_CORRELATION = "correlation_id"
ATTR_HEADERS = "headers"
ATTR_ENCODING = "body_encoding"  # "base64" when the payload is not text SQS accepts
ATTR_DEAD_LETTER = "dead_letter"  # JSON with the DeadLetter fields, on messages in a dead-letter queue

# The characters SQS accepts in a message body; anything else is sent base64-encoded.
_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def encode_body(payload: bytes) -> tuple[str, bool]:
    """The message body for ``payload`` and whether it had to be base64-encoded."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text and not _INVALID.search(text):
        return text, False
    return base64.b64encode(payload).decode("ascii"), True


def encode_attributes(env: Envelope, base64_body: bool = False) -> dict[str, dict[str, str]]:
    """The message attributes of ``env``: ``event_name`` first, then pubsubkit's metadata (at most 7)."""
    attrs = {
        ATTR_EVENT_NAME: _string(env.name),
        ATTR_ID: _string(env.id),
        ATTR_TIME: _string(time_fields(env.occurred_at)[0]),
    }
    if env.key:  # SQS refuses empty attribute values
        attrs[ATTR_KEY] = _string(env.key)
    if env.correlation_id:
        attrs[ATTR_CORRELATION] = _string(env.correlation_id)
    if env.headers:
        attrs[ATTR_HEADERS] = _string(orjson.dumps(dict(env.headers)).decode("utf-8"))
    if base64_body:
        attrs[ATTR_ENCODING] = _string("base64")
    return attrs


def attribute(attrs: Mapping[str, Any], name: str) -> str | None:
    """The string value of message attribute ``name``, or ``None``."""
    value = attrs.get(name)
    if not isinstance(value, Mapping):
        return None
    got = value.get("StringValue")
    return got if isinstance(got, str) else None


def raw_body(body: str, attrs: Mapping[str, Any]) -> bytes:
    """The payload bytes of a message body (base64-decoded when the message says so)."""
    if attribute(attrs, ATTR_ENCODING) == "base64":
        return base64.b64decode(body, validate=True)
    return body.encode("utf-8")


def decode(message: Mapping[str, Any]) -> Envelope:
    """The envelope of a received SQS message; raises ``ValueError`` when it cannot be built."""
    attrs: Mapping[str, Any] = message.get("MessageAttributes") or {}
    name = attribute(attrs, ATTR_EVENT_NAME)
    if not name:
        raise ValueError("the message has no event_name attribute")
    payload = raw_body(message.get("Body", ""), attrs)
    headers: dict[str, str] = {}
    encoded = attribute(attrs, ATTR_HEADERS)
    if encoded is not None:
        loaded = orjson.loads(encoded)
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise ValueError(f"the headers attribute is not an object of strings: {encoded[:100]!r}")
        headers = loaded
    correlation = attribute(attrs, ATTR_CORRELATION)
    if correlation is not None:
        headers.setdefault(Header.CORRELATION_ID, correlation)
    when = attribute(attrs, ATTR_TIME)
    if when is not None:
        occurred_at = parse_time(when)
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
    else:
        sent = (message.get("Attributes") or {}).get("SentTimestamp")
        occurred_at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else datetime.now(UTC)
    return Envelope(
        id=attribute(attrs, ATTR_ID) or str(message["MessageId"]),
        name=name,
        payload=payload,
        key=attribute(attrs, ATTR_KEY),
        occurred_at=occurred_at,
        headers=headers,
    )
