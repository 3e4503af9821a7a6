"""The event service's OpenAPI 3.1 document (the test suite checks it against the route table)."""

from __future__ import annotations

from typing import Any

from myevents.events.inputs import EventIn, EventPatch, LocationIn, LocationPatch
from myevents.web.decoding import input_schema
from myevents.web.openapi import closed, created, json_response, op, path_param, ref
from myevents.web.openapi import document as build

__all__ = ["document"]

_HALL = closed(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "location": {"type": "string", "description": "where in the building, e.g. second floor"},
            "capacity": {"type": "integer", "minimum": 1},
        },
    }
)
_LOCATION = closed(
    {
        "type": "object",
        "properties": {
            "ID": {"type": "string"},
            "Name": {"type": "string"},
            "Address": {"type": "string"},
            "Country": {"type": "string"},
            "OpenTime": {"type": "integer", "minimum": 0, "maximum": 24},
            "CloseTime": {"type": "integer", "minimum": 0, "maximum": 24},
            "Halls": {"type": "array", "items": ref("Hall")},
            "Cancelled": {"type": "boolean"},
        },
    }
)
_EVENT = closed(
    {
        "type": "object",
        "properties": {
            "ID": {"type": "string"},
            "Name": {"type": "string"},
            "Duration": {"type": "integer", "description": "minutes"},
            "StartDate": {"type": "integer", "description": "Unix seconds"},
            "EndDate": {"type": "integer", "description": "Unix seconds, not before StartDate"},
            "Location": {
                "description": "the event's location, embedded (only its ID should it be gone)",
                "anyOf": [ref("Location"), closed({"type": "object", "properties": {"ID": {"type": "string"}}})],
            },
            "Cancelled": {"type": "boolean"},
        },
    }
)
_EVENT_ID = [path_param("id", "the event's ID")]
_CASE = "Field names match case-insensitively; unknown fields are refused."


def _request(cls: type[Any], description: str) -> dict[str, Any]:
    """The schema of a request body: what the decoder of ``cls`` accepts."""
    return {**input_schema(cls), "description": f"{description} {_CASE}"}


def organizer_op(summary: str, responses: dict[str, Any], *codes: int, body: dict[str, Any] | None = None) -> Any:
    """An operation only an organizer may call (reads are public)."""
    return op(f"{summary} (organizer)", responses, *codes, body=body, secured=True)


_LOCATION_ID = [path_param("id", "the location's ID")]


def _event_paths() -> dict[str, Any]:
    event = ref("Event")
    return {
        "/events": {
            "get": op("All events", {"200": json_response("Events", {"type": "array", "items": event})}),
            "post": organizer_op(
                "Create an event; emits eventCreated",
                {"201": created("Created", event)},
                409,
                body=ref("EventRequest"),
            ),
        },
        "/events/{id}": {
            "parameters": _EVENT_ID,
            "get": op("One event", {"200": json_response("The event", event)}, 404),
            "patch": organizer_op(
                "Change name, dates or duration; emits eventUpdated",
                {"200": json_response("Changed", event)},
                404,
                409,
                body=ref("EventPatch"),
            ),
            "delete": organizer_op(
                "Cancel the event; emits eventCancelled", {"200": json_response("Cancelled", event)}, 404, 409
            ),
        },
        "/events/{id}/{search}": {
            "parameters": [
                path_param("id", "the search criteria: name or id, in any case"),
                path_param("search", "the exact name, or the ID"),
            ],
            "get": op(
                "Find an event by name (the oldest of that name) or ID", {"200": json_response("Event", event)}, 404
            ),
        },
    }


def _location_paths() -> dict[str, Any]:
    location = ref("Location")
    return {
        "/locations": {
            "get": op("All locations", {"200": json_response("Locations", {"type": "array", "items": location})}),
            "post": organizer_op(
                "Create a location; emits locationCreated",
                {"201": created("Created", location)},
                409,
                body=ref("LocationRequest"),
            ),
        },
        "/locations/{id}": {
            "parameters": _LOCATION_ID,
            "get": op("One location", {"200": json_response("The location", location)}, 404),
            "patch": organizer_op(
                "Change fields (Halls replaces the list); emits locationUpdated",
                {"200": json_response("Changed", location)},
                404,
                409,
                body=ref("LocationPatch"),
            ),
            "delete": organizer_op(
                "Cancel a location without active events; emits locationCancelled",
                {"200": json_response("Cancelled", location)},
                404,
                409,
            ),
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of the event service."""
    return build(
        "MyEvents event service",
        "Events and locations. Every change is published as an event (outbox: never lost, never ahead of the data).",
        {**_event_paths(), **_location_paths()},
        {
            "Event": _EVENT,
            "Location": _LOCATION,
            "Hall": _HALL,
            "EventRequest": _request(
                EventIn, "A new event: its Location needs only its ID, EndDate not before StartDate."
            ),
            "EventPatch": _request(EventPatch, "Any of Name, StartDate, EndDate, Duration."),
            "LocationRequest": _request(LocationIn, "A new location."),
            "LocationPatch": _request(
                LocationPatch, "Any of Name, Address, Country, OpenTime, CloseTime, Halls (the whole list)."
            ),
        },
    )
