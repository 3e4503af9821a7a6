"""Bookings against the booking service's own copy of events: atomic, never more seats than there are."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

import attrs

import pubsubkit
from myevents.booking.metrics import BookingMetrics
from myevents.booking.models import BOOKINGS, EVENT_COPIES, LOCATION_COPIES, Booking, EventCopy, LocationCopy
from myevents.contracts import BookingCancelled, EventBooked
from myevents.errors import Conflict, NotFound
from myevents.ids import object_id

__all__ = ["Ledger"]

Headers = Mapping[str, str]


class Ledger:
    """Books and cancels seats. Each booking or cancellation is one unit of work: the seat count, the booking
    and the event announcing it commit together, and the seat count's bound makes overbooking impossible."""

    def __init__(self, store: pubsubkit.Store, metrics: BookingMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.events = store.collection(EVENT_COPIES, EventCopy, indexes=["location_id"])
        self.locations = store.collection(LOCATION_COPIES, LocationCopy)
        self.bookings = store.collection(BOOKINGS, Booking, indexes=["event_id", "user_id"])

    def event(self, id: str) -> EventCopy:
        ev = self.events.find_one(id)
        if ev is None:
            raise NotFound(f"event {id!r} is not known to the booking service")
        return ev

    def booking(self, id: str) -> Booking:
        b = self.bookings.find_one(id)
        if b is None:
            raise NotFound(f"no booking with ID {id!r}")
        return b

    def of_event(self, event_id: str) -> Iterator[Booking]:
        self.event(event_id)
        return self.bookings.iter(event_id=event_id)

    def of_user(self, user_id: str) -> Iterator[Booking]:
        return self.bookings.iter(user_id=user_id)

    def book(self, event_id: str, seats: int, user_id: str, headers: Headers) -> Booking:
        ev = self.event(event_id)
        booking = Booking(object_id(), event_id, user_id, seats, int(time.time()))
        # An unlimited event (its location can never be heard of) only counts; any other keeps seats_left >= 0.
        limit = {} if ev.unlimited else {"at_least": {"seats_left": 0}}
        try:
            with self.store.unit_of_work() as uow:
                uow.update(
                    self.events,
                    event_id,
                    inc={"seats_left": -seats, "booked": seats},
                    expect={"cancelled": False, "capacity_known": True},
                    **limit,
                )
                uow.insert(self.bookings, booking)
                uow.emit(EventBooked(event_id, user_id, booking.id, seats), key=event_id, headers=headers)
        except pubsubkit.ConditionFailed:
            raise self._refusal(event_id, seats) from None
        self.metrics.booked(seats)
        return booking

    def _refusal(self, event_id: str, seats: int) -> Conflict:
        ev = self.event(event_id)
        if ev.cancelled:
            reason, detail = "cancelled", f"event {event_id!r} is cancelled"
        elif not ev.capacity_known:
            reason = "capacity-unknown"
            detail = f"the location of event {event_id!r} is not known to the booking service yet; try again shortly"
        else:
            reason = "sold-out"
            detail = f"{seats} seats asked, {max(ev.seats_left, 0)} left for event {event_id!r}"
        self.metrics.refused.labels(reason).inc()
        return Conflict(detail, kind=reason)

    def cancel(self, booking_id: str, headers: Headers, reason: str = "cancelled") -> Booking:
        """Give the seats back and announce it with ``bookingCancelled``; a :class:`Conflict` if it was cancelled
        before."""
        b = self.booking(booking_id)
        try:
            if b.cancelled:
                raise pubsubkit.ConditionFailed("cancelled before")
            with self.store.unit_of_work() as uow:
                uow.update(
                    self.bookings, b.id, set={"cancelled": True, "cancel_reason": reason}, expect={"cancelled": False}
                )
                uow.update(self.events, b.event_id, inc={"seats_left": b.seats, "booked": -b.seats})
                uow.emit(
                    BookingCancelled(b.id, b.event_id, b.user_id, b.seats, reason), key=b.event_id, headers=headers
                )
        except pubsubkit.ConditionFailed:
            raise Conflict(f"booking {booking_id!r} is cancelled already", kind="cancelled") from None
        self.metrics.cancelled.labels(reason).inc()
        return attrs.evolve(b, cancelled=True, cancel_reason=reason)
