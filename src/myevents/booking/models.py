"""The booking service's documents: its own copy of events and locations, and the bookings."""

from __future__ import annotations

import attrs

from myevents.contracts import Hall

__all__ = ["BOOKINGS", "EVENT_COPIES", "LOCATION_COPIES", "Booking", "EventCopy", "LocationCopy"]

# Names of their own, so the booking service may share a database with the event service.
EVENT_COPIES = "booking_events"
LOCATION_COPIES = "booking_locations"
BOOKINGS = "bookings"


@attrs.frozen
class LocationCopy:
    id: str
    name: str
    halls: list[Hall] = attrs.field(factory=list)
    cancelled: bool = False

    @property
    def capacity(self) -> int:
        """Every hall of the location is open to every event there: the capacity is their sum."""
        return sum(h.capacity for h in self.halls)


@attrs.frozen
class EventCopy:
    """An event as the booking service knows it.

    ``seats_left`` is ``capacity - booked`` and is what a booking decrements (never below 0). Until the event's
    location has been heard of, ``capacity_known`` is false and the event cannot be booked. ``unlimited``: the
    event names a location that can never be heard of (the original Go event service sends a location's id as
    raw bytes), so it is booked without a limit, as the original booking service books every event.
    """

    id: str
    name: str
    location_id: str
    start_date: int  # Unix seconds, as the API shows them
    end_date: int
    duration: int = 0
    capacity: int = 0
    capacity_known: bool = False
    seats_left: int = 0
    booked: int = 0
    cancelled: bool = False
    unlimited: bool = False


@attrs.frozen
class Booking:
    id: str
    event_id: str
    user_id: str
    seats: int
    date: int  # Unix seconds, as the original's Booking.Date
    cancelled: bool = False
    cancel_reason: str = ""
