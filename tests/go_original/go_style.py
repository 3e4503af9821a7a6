"""Stand-ins for the original Go services, written from their code: what they declare, send, accept and refuse.

:class:`GoBookingService` is the original booking service's AMQP part: its listener (``lib/msgqueue/amqp``:
a classic durable queue declared without arguments, bound to ``eventCreated``, manual acks, and a nack without
requeue, on a queue without a dead-letter exchange a drop, for what it cannot map), its event processor
(``bookingservice/listener``: an event id that is not a 24-hex ObjectId is logged and ignored) and its
create-booking handler (``bookingservice/rest``: 404 unless the event is in its database, 400 for seats <= 0,
201 otherwise).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pika

#: The names the original's static event mapper knows; any other is an error (nack without requeue).
GO_MAPPED = frozenset({"eventCreated", "locationCreated", "eventBooked"})

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def is_object_id_hex(value: str) -> bool:
    """mgo's ``bson.IsObjectIdHex``: 24 hexadecimal digits."""
    return len(value) == 24 and all(c in "0123456789abcdefABCDEF" for c in value)


def go_time(value: Any) -> datetime:
    """What Go's ``time.Time`` accepts from JSON: an RFC 3339 string, nothing else."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"parsing time {value!r} as RFC 3339")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def map_event(name: str, body: bytes) -> dict[str, Any]:
    """The original's ``StaticEventMapper.MapEvent`` for a message body (``json.Unmarshal`` into the contract).

    Only ``eventCreated`` is spelled out (the booking service's one subscription); Go's decoder takes a field by
    its JSON name case-insensitively, leaves a missing field at its zero value and refuses a wrong type.
    """
    if name not in GO_MAPPED:
        raise ValueError(f"unknown event type {name}")
    raw = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError(f"could not unmarshal event {name}")
    fields = {k.lower(): v for k, v in raw.items()}
    if name != "eventCreated":
        return fields
    out: dict[str, Any] = {}
    for key in ("id", "name", "location_id"):
        value = fields.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"could not unmarshal event {name}: {key} is not a string")
        out[key] = value
    for key in ("start_date", "end_date"):
        out[key] = go_time(fields[key]) if key in fields else None
    return out


class GoBookingService:
    """The original booking service over RabbitMQ: its queue, its database of events, its booking handler."""

    def __init__(self, amqp_url: str, exchange: str, queue: str, names: Collection[str] = ("eventCreated",)) -> None:
        self.events: dict[bytes, str] = {}  # ObjectId bytes -> name, as its MongoDB layer keeps them
        self.handled: list[str] = []  # ids of the eventCreated it stored
        self.ignored: list[str] = []  # ids it logged as "did not contain valid object ID"
        self.rejected: list[str] = []  # names it nacked without requeue (dropped)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = self._conn.channel()
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)  # ExchangeDeclare(..., true, ...)
        ch.queue_declare(queue, durable=True)  # QueueDeclare(queue, true, false, false, false, nil)
        for name in names:
            ch.queue_bind(queue, exchange, routing_key=name)
        ch.basic_consume(queue, on_message_callback=self._on_message, auto_ack=False)
        self._thread = threading.Thread(target=self._run, name="go-booking", daemon=True)
        self._thread.start()

    def _on_message(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        name = (props.headers or {}).get("x-event-name")
        try:
            if not isinstance(name, str):
                raise ValueError("message did not contain x-event-name header")
            event = map_event(name, body)
        except ValueError:
            with self._lock:
                self.rejected.append(str(name))
            ch.basic_nack(method.delivery_tag, multiple=False, requeue=False)
            return
        with self._lock:
            if name == "eventCreated":
                if is_object_id_hex(event["id"]):
                    self.events[bytes.fromhex(event["id"])] = event["name"]
                    self.handled.append(event["id"])
                else:
                    self.ignored.append(event["id"])
        ch.basic_ack(method.delivery_tag)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._conn.process_data_events(time_limit=0.05)
        self._conn.close()

    def book(self, event_id: str, body: bytes) -> tuple[int, str]:
        """``POST /events/{eventID}/bookings``: the status and body the original answers."""
        try:
            key = bytes.fromhex(event_id)  # hex.DecodeString, its error ignored
        except ValueError:
            key = b""
        with self._lock:
            name = self.events.get(key) if len(key) == 12 else None
        if name is None:
            return 404, f"event {event_id} could not be loaded: not found"
        try:
            seats = json.loads(body).get("seats", 0)
        except (ValueError, AttributeError):
            return 400, "could not decode JSON body"
        if not isinstance(seats, int) or seats <= 0:
            return 400, f"seat number must be positive (was {seats})"
        return 201, json.dumps({"EventID": event_id, "Seats": seats})

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def go_event_created(event_id: bytes, name: str, location_id: bytes, start: int, end: int) -> bytes:
    """The body of the original event service's ``eventCreated`` (``eventservice/rest``): the id in hex, times
    from Unix seconds, and ``LocationID: string(event.Location.ID)``, the ObjectId's bytes as characters (Go's
    JSON encoder writes each invalid UTF-8 byte as U+FFFD)."""

    def go_time_text(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")

    payload = {
        "id": event_id.hex(),
        "name": name,
        "location_id": location_id.decode("utf-8", "replace"),
        "start_date": go_time_text(start),
        "end_date": go_time_text(end),
    }
    return json.dumps(payload).encode()


def go_emit(amqp_url: str, exchange: str, name: str, body: bytes) -> None:
    """Publish as the original's AMQP emitter does: routing key and header x-event-name, JSON, no message id."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ch.exchange_declare(exchange, exchange_type="topic", durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(content_type="application/json", headers={"x-event-name": name})
        ch.basic_publish(exchange, name, body, props)
    finally:
        conn.close()
