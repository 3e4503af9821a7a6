"""The events the two services exchange, with the names and payload fields of the original MyEvents.

``eventCreated``, ``locationCreated`` and ``eventBooked`` carry exactly the fields the Go services wrote (a Go
MyEvents service reads what these write, and the other way round); fields added here have defaults, so a payload
without them still decodes. Times are RFC 3339 strings on the wire. The update and cancel events carry the whole
new state, so a consumer never needs to ask the event service for anything.
"""

from __future__ import annotations

from datetime import datetime

import attrs

import pubsubkit

__all__ = [
    "BookingCancelled",
    "EventBooked",
    "EventCancelled",
    "EventCreated",
    "EventUpdated",
    "Hall",
    "LocationCancelled",
    "LocationCreated",
    "LocationUpdated",
]


@attrs.frozen
class Hall:
    name: str
    location: str = ""
    capacity: int = 0


@pubsubkit.event("eventCreated")
@attrs.frozen
class EventCreated:
    id: str
    name: str
    location_id: str
    start_date: datetime
    end_date: datetime
    duration: int = 0  # minutes; not in the original payload


@pubsubkit.event("eventUpdated")
@attrs.frozen
class EventUpdated:
    """The event's whole state after the change (its location never changes)."""

    id: str
    name: str
    location_id: str
    start_date: datetime
    end_date: datetime
    duration: int = 0


@pubsubkit.event("eventCancelled")
@attrs.frozen
class EventCancelled:
    id: str


@pubsubkit.event("locationCreated")
@attrs.frozen
class LocationCreated:
    id: str
    name: str
    address: str
    country: str
    halls: list[Hall] = attrs.field(factory=list)
    open_time: int = 0  # hours; not in the original payload
    close_time: int = 0


@pubsubkit.event("locationUpdated")
@attrs.frozen
class LocationUpdated:
    """The location's whole state after the change, halls included."""

    id: str
    name: str
    address: str
    country: str
    halls: list[Hall] = attrs.field(factory=list)
    open_time: int = 0
    close_time: int = 0


@pubsubkit.event("locationCancelled")
@attrs.frozen
class LocationCancelled:
    """A location closed for good; only a location without active events can be cancelled."""

    id: str


@pubsubkit.event("eventBooked")
@attrs.frozen
class EventBooked:
    event_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "eventId"})
    user_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "userId"})
    booking_id: str = attrs.field(default="", metadata={pubsubkit.WIRE_NAME: "bookingId"})
    seats: int = 1


@pubsubkit.event("bookingCancelled")
@attrs.frozen
class BookingCancelled:
    """A booking given back; ``reason`` is ``"cancelled"`` (by its user) or ``"eventCancelled"``."""

    booking_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "bookingId"})
    event_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "eventId"})
    user_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "userId"})
    seats: int
    reason: str = "cancelled"
