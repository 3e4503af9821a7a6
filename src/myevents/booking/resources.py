"""The booking service's resources.

A booking's user is the subject of the caller's token. A user sees and cancels only their own bookings; an
organizer sees and cancels any, and alone lists an event's bookings. The service's copy of an event is public.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
import falcon

from myevents.booking.ledger import Ledger
from myevents.booking.models import Booking, EventCopy
from myevents.web.auth import authenticate, check_user, require_organizer
from myevents.web.body import json_body
from myevents.web.decoding import Int, Text, decode, spec
from myevents.web.middleware import event_headers
from myevents.web.problems import Problem

__all__ = ["BookingIn", "BookingResource", "EventBookingsResource", "EventResource", "UserBookingsResource"]

USER_ID: Final = Text(max_length=64, pattern=re.compile(r"[A-Za-z0-9_.@-]+"), pattern_hint="letters, digits, _.@-")


@attrs.frozen
class BookingIn:
    """``{"seats": 2}``: the user is the token's subject. A ``userId`` (the original's field) is accepted when it
    names that same user, and refused with 403 otherwise."""

    seats: int = attrs.field(metadata=spec("Seats", Int(1, 10_000)))
    user_id: str | None = attrs.field(default=None, metadata=spec("UserID", USER_ID))


def booking_json(b: Booking) -> dict[str, Any]:
    return {
        "ID": b.id,
        "EventID": b.event_id,
        "UserID": b.user_id,
        "Seats": b.seats,
        "Date": b.date,
        "Cancelled": b.cancelled,
    }


def event_json(ev: EventCopy) -> dict[str, Any]:
    return {
        "ID": ev.id,
        "Name": ev.name,
        "LocationID": ev.location_id,
        "StartDate": ev.start_date,
        "EndDate": ev.end_date,
        "Duration": ev.duration,
        "Capacity": ev.capacity if ev.capacity_known and not ev.unlimited else None,
        "SeatsLeft": None if ev.unlimited else max(ev.seats_left, 0),
        "Cancelled": ev.cancelled,
    }


class EventResource:
    """The booking service's own view of an event: known yet, seats left."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        resp.media = event_json(self.ledger.event(id))


class EventBookingsResource:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        require_organizer(req)
        resp.media = [booking_json(b) for b in self.ledger.of_event(id)]

    def on_post(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        caller = authenticate(req)
        data = decode(BookingIn, json_body(req))
        if data.user_id is not None and data.user_id != caller.subject:
            raise Problem(403, "userId must be the token's subject, or be left out", kind="forbidden")
        booking = self.ledger.book(id, data.seats, caller.subject, event_headers(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/bookings/{booking.id}"
        resp.media = booking_json(booking)


class UserBookingsResource:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        check_user(req, id, "these bookings")
        resp.media = [booking_json(b) for b in self.ledger.of_user(id)]


class BookingResource:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        authenticate(req)
        booking = self.ledger.booking(id)
        check_user(req, booking.user_id, "this booking")
        resp.media = booking_json(booking)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        authenticate(req)
        check_user(req, self.ledger.booking(id).user_id, "this booking")
        resp.media = booking_json(self.ledger.cancel(id, event_headers(req)))
