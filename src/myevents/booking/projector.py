"""Keeps the booking service's copy of events and locations, from the events the event service publishes.

Every handler is idempotent: its writes commit with the message's inbox record (``msg.unit_of_work()``), so a
redelivered message changes nothing. Events and locations are keyed apart, so an event may arrive before its
location: it is stored with an unknown capacity, and whichever of the two handlers commits last fixes it up
(each writes first, then looks for the other). A catch-up pass at start-up repairs what a crash between the two
steps could have left behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pubsubkit
from myevents import contracts, logs
from myevents.booking.ledger import Ledger
from myevents.booking.models import EventCopy, LocationCopy
from myevents.errors import DomainError
from myevents.ids import is_entity_id

__all__ = ["GROUP", "Projector"]

log = logging.getLogger("myevents.booking.projector")

#: The consumer group (the queue ``booking`` of the original): every instance joins it and they share the work.
GROUP = "booking"

# Fixing capacity races only with other fix-ups of the same event, so a few attempts always suffice.
_SYNC_ATTEMPTS = 10

E = TypeVar("E")


def _unix(t: datetime) -> int:
    return int(t.timestamp())


def _traced(fn: Callable[[E, pubsubkit.Message], None]) -> Callable[[E, pubsubkit.Message], None]:
    def handler(event: E, msg: pubsubkit.Message) -> None:
        with logs.correlation(msg.envelope.correlation_id):
            fn(event, msg)

    return handler


class Projector:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.events = ledger.events
        self.locations = ledger.locations

    def subscribe(self, listener: pubsubkit.Listener) -> None:
        handlers: dict[type[Any], Callable[[Any, pubsubkit.Message], None]] = {
            contracts.EventCreated: self.on_event,
            contracts.EventUpdated: self.on_event,
            contracts.EventCancelled: self.on_event_cancelled,
            contracts.LocationCreated: self.on_location,
            contracts.LocationUpdated: self.on_location,
            contracts.LocationCancelled: self.on_location_cancelled,
        }
        for event_type, fn in handlers.items():
            listener.add_handler(event_type, _traced(fn))

    # --- handlers -------------------------------------------------------------------------------------------

    def on_event(self, ev: contracts.EventCreated | contracts.EventUpdated, msg: pubsubkit.Message) -> None:
        current = self.events.find_one(ev.id)
        location = self.locations.find_one(ev.location_id)
        with msg.unit_of_work() as uow:
            if current is None:
                capacity = location.capacity if location is not None else 0
                unlimited = location is None and not is_entity_id(ev.location_id)
                copy = EventCopy(
                    id=ev.id,
                    name=ev.name,
                    location_id=ev.location_id,
                    start_date=_unix(ev.start_date),
                    end_date=_unix(ev.end_date),
                    duration=ev.duration,
                    capacity=capacity,
                    capacity_known=location is not None or unlimited,
                    seats_left=capacity,
                    unlimited=unlimited,
                )
                uow.insert(self.events, copy)
            else:
                changes = {
                    "name": ev.name,
                    "start_date": _unix(ev.start_date),
                    "end_date": _unix(ev.end_date),
                    "duration": ev.duration,
                }
                uow.update(self.events, ev.id, set=changes)
        if current is None and location is None and not is_entity_id(ev.location_id):
            log.warning(
                "event %s names no location that can be heard of (location_id %r is not an id: the original Go"
                " event service sends raw bytes); it is booked without a capacity limit",
                ev.id,
                ev.location_id,
            )
        elif current is None and location is None:
            log.info("event %s arrived before its location %s", ev.id, ev.location_id)
            self.sync_capacity(ev.id)

    def on_event_cancelled(self, ev: contracts.EventCancelled, msg: pubsubkit.Message) -> None:
        current = self.events.find_one(ev.id)
        with msg.unit_of_work() as uow:
            if current is not None and not current.cancelled:
                uow.update(self.events, ev.id, set={"cancelled": True})
        # From here no booking can succeed (a booking expects the event not cancelled), so the list is final.
        self.release_bookings(ev.id, msg.reply_headers())

    def on_location(self, ev: contracts.LocationCreated | contracts.LocationUpdated, msg: pubsubkit.Message) -> None:
        with msg.unit_of_work() as uow:
            uow.put(self.locations, LocationCopy(ev.id, ev.name, list(ev.halls)))
        for copy in self.events.iter(location_id=ev.id):
            self.sync_capacity(copy.id)

    def on_location_cancelled(self, ev: contracts.LocationCancelled, msg: pubsubkit.Message) -> None:
        current = self.locations.find_one(ev.id)
        with msg.unit_of_work() as uow:
            if current is not None:
                uow.update(self.locations, ev.id, set={"cancelled": True})

    # --- fix-ups --------------------------------------------------------------------------------------------

    def sync_capacity(self, event_id: str) -> None:
        """Make the event's capacity its location's, moving seats_left by the same amount.

        An increment, so it commutes with bookings; compare-and-set on the old capacity, so two fix-ups of one
        event never both apply. A smaller location may leave seats_left below 0: no booking then succeeds until
        enough are cancelled, and nobody booked loses a seat.
        """
        for _ in range(_SYNC_ATTEMPTS):
            ev = self.events.find_one(event_id)
            loc = self.locations.find_one(ev.location_id) if ev is not None else None
            if ev is None or loc is None or (ev.capacity_known and ev.capacity == loc.capacity):
                return
            delta = loc.capacity - ev.capacity
            try:
                self.events.update(
                    event_id,
                    set={"capacity_known": True},
                    inc={"capacity": delta, "seats_left": delta},
                    expect={"capacity": ev.capacity, "capacity_known": ev.capacity_known},
                )
                log.info("event %s: capacity %d -> %d", event_id, ev.capacity, loc.capacity)
                return
            except pubsubkit.ConditionFailed:
                continue
        raise RuntimeError(f"capacity of event {event_id} kept changing")

    def release_bookings(self, event_id: str, headers: dict[str, str]) -> None:
        """Cancel the active bookings of a cancelled event, each announced with ``bookingCancelled``."""
        for booking in self.ledger.bookings.iter(event_id=event_id, cancelled=False):
            with contextlib.suppress(DomainError):  # its user cancelled it meanwhile
                self.ledger.cancel(booking.id, headers, reason="eventCancelled")

    def catch_up(self) -> None:
        """Repair what a crash between a handler's two steps may have left: run once at start-up."""
        for ev in self.events.iter():
            if ev.cancelled:
                self.release_bookings(ev.id, {pubsubkit.Header.CORRELATION_ID: pubsubkit.new_id()})
            else:
                self.sync_capacity(ev.id)
