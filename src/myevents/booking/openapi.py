"""The booking service's OpenAPI 3.1 document (the test suite checks it against the route table)."""

from __future__ import annotations

from typing import Any

from myevents.booking.resources import BookingIn
from myevents.web.decoding import input_schema
from myevents.web.openapi import closed, created, json_response, op, path_param, ref
from myevents.web.openapi import document as build

__all__ = ["document"]

_BOOKING = closed(
    {
        "type": "object",
        "properties": {
            "ID": {"type": "string"},
            "EventID": {"type": "string"},
            "UserID": {"type": "string"},
            "Seats": {"type": "integer", "minimum": 1, "maximum": 10000},
            "Date": {"type": "integer", "description": "Unix seconds"},
            "Cancelled": {"type": "boolean"},
        },
    }
)


def _booking_in() -> dict[str, Any]:
    schema = input_schema(BookingIn)
    schema["description"] = "Field names match case-insensitively; unknown fields are refused."
    schema["properties"]["UserID"]["description"] = (
        "optional: the user is the token's subject; another user's ID is refused with 403"
    )
    return schema


_EVENT = closed(
    {
        "type": "object",
        "properties": {
            "ID": {"type": "string"},
            "Name": {"type": "string"},
            "LocationID": {"type": "string"},
            "StartDate": {"type": "integer"},
            "EndDate": {"type": "integer"},
            "Duration": {"type": "integer"},
            "Capacity": {
                "type": ["integer", "null"],
                "description": "null until the location is known, and for an event without a capacity limit",
            },
            "SeatsLeft": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "null for an event without a capacity limit: one whose location can never be known"
                " (the original Go event service sends a location id as raw bytes)",
            },
            "Cancelled": {"type": "boolean"},
        },
    }
)


def document() -> dict[str, Any]:
    booking, bookings = ref("Booking"), {"type": "array", "items": ref("Booking")}
    event_id = [path_param("id", "the event's ID")]
    paths = {
        "/events/{id}": {
            "parameters": event_id,
            "get": op("The booking service's copy of an event", {"200": json_response("Event", ref("Event"))}, 404),
        },
        "/events/{id}/bookings": {
            "parameters": event_id,
            "get": op(
                "Bookings of an event, cancelled ones included (organizer)",
                {"200": json_response("Bookings", bookings)},
                404,
                secured=True,
            ),
            "post": op(
                "Book seats for the token's subject; emits eventBooked. 409 when not enough seats are left or the "
                "event is cancelled",
                {"201": created("Booked", booking)},
                404,
                409,
                body=ref("BookingRequest"),
                secured=True,
            ),
        },
        "/users/{id}/bookings": {
            "parameters": [path_param("id", "the user's ID")],
            "get": op(
                "Bookings of a user (that user or an organizer)",
                {"200": json_response("Bookings", bookings)},
                secured=True,
            ),
        },
        "/bookings/{id}": {
            "parameters": [path_param("id", "the booking's ID")],
            "get": op(
                "One booking (its user or an organizer)", {"200": json_response("Booking", booking)}, 404, secured=True
            ),
            "delete": op(
                "Cancel a booking, freeing its seats (its user or an organizer); emits bookingCancelled",
                {"200": json_response("Cancelled", booking)},
                404,
                409,
                secured=True,
            ),
        },
    }
    return build(
        "MyEvents booking service",
        "Bookings, answered from the service's own copy of events and locations (built from the events it hears).",
        paths,
        {"Booking": _BOOKING, "BookingRequest": _booking_in(), "Event": _EVENT},
    )
