"""What the services refuse, and why, as exact problem documents: status, type, title, detail and fields.

The catalog and the ledger raise domain errors (:mod:`myevents.errors`); the web layer answers them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import falcon
import pytest
from falcon import testing
from myevents_support import Bus, as_organizer, as_user, known_to_booking, new_event, new_location

import pubsubkit
from myevents import contracts, errors
from myevents.runtime import Service
from myevents.web import problems

PROBLEM_JSON = "application/problem+json"


def problem(r: testing.Result) -> dict[str, Any]:
    """The problem document of ``r``, checked to be one."""
    assert r.headers["content-type"] == PROBLEM_JSON, r.text
    doc: dict[str, Any] = r.json
    assert doc["status"] == r.status_code
    return doc


def doc(status: int, title: str, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": f"urn:myevents:problem:{kind}", "title": title, "status": status, "detail": detail, **extra}


def not_found(detail: str) -> dict[str, Any]:
    return doc(404, "Not Found", "not-found", detail)


def conflict(kind: str, detail: str) -> dict[str, Any]:
    return doc(409, "Conflict", kind, detail)


def invalid(field: str, reason: str) -> dict[str, Any]:
    errors = [{"field": field, "reason": reason}]
    return doc(422, "Unprocessable Entity", "invalid-fields", f"invalid fields: {field}", errors=errors)


def test_unknown_events_and_locations_are_404(events_client: testing.TestClient) -> None:
    expected = {
        "/events/nope": not_found("no event with ID 'nope'"),
        "/locations/nowhere": not_found("no location with ID 'nowhere'"),
        "/events/name/Nothing": not_found("no event named 'Nothing'"),
        "/events/id/nope": not_found("no event with ID 'nope'"),
        "/events/date/today": not_found("search by 'name' or 'id', not 'date'"),
    }
    for path, want in expected.items():
        assert problem(events_client.simulate_get(path)) == want, path
    r = events_client.simulate_patch("/events/nope", json={"Name": "x"})
    assert problem(r) == not_found("no event with ID 'nope'")
    assert problem(events_client.simulate_delete("/locations/nowhere")) == not_found("no location with ID 'nowhere'")


def test_taken_ids_and_cancelled_documents_are_409(events_client: testing.TestClient) -> None:
    loc = new_location(events_client, ID="arena")
    r = events_client.simulate_post("/locations", json={"ID": "arena", "Name": "Again", "Halls": loc["Halls"]})
    assert problem(r) == conflict("conflict", "a location with ID 'arena' exists already")
    new_event(events_client, "arena", ID="gala")
    body = {"ID": "gala", "Name": "Again", "StartDate": 1, "EndDate": 2, "Location": {"ID": "arena"}}
    r = events_client.simulate_post("/events", json=body)
    assert problem(r) == conflict("conflict", "an event with ID 'gala' exists already")

    r = events_client.simulate_delete("/locations/arena")
    assert problem(r) == conflict("in-use", "location 'arena' has 1 events not cancelled; cancel them first")
    assert events_client.simulate_delete("/events/gala").status_code == 200
    r = events_client.simulate_delete("/events/gala")
    assert problem(r) == conflict("cancelled", "event 'gala' is cancelled already")
    r = events_client.simulate_patch("/events/gala", json={"Name": "x"})
    assert problem(r) == conflict("cancelled", "event 'gala' is cancelled")

    assert events_client.simulate_delete("/locations/arena").status_code == 200
    r = events_client.simulate_delete("/locations/arena")
    assert problem(r) == conflict("cancelled", "location 'arena' is cancelled already")
    r = events_client.simulate_patch("/locations/arena", json={"Name": "x"})
    assert problem(r) == conflict("cancelled", "location 'arena' is cancelled")


def test_impossible_dates_and_unusable_locations_are_422(events_client: testing.TestClient) -> None:
    loc = new_location(events_client)
    body = {"Name": "Concert", "StartDate": 1_800_000_000, "EndDate": 1_700_000_000, "Location": {"ID": loc["ID"]}}
    r = events_client.simulate_post("/events", json=body)
    assert problem(r) == invalid("EndDate", "must not be before StartDate")
    ev = new_event(events_client, loc["ID"])
    r = events_client.simulate_patch(f"/events/{ev['ID']}", json={"EndDate": 1_700_000_000})
    assert problem(r) == invalid("EndDate", "must not be before StartDate")

    r = events_client.simulate_post("/events", json={**body, "EndDate": 1_800_000_001, "Location": {"ID": "nowhere"}})
    assert problem(r) == invalid("Location.ID", "no location with this ID is open")


def test_a_patch_losing_every_race_is_409(
    events_service: Service, events_client: testing.TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = new_location(events_client, ID="arena")
    new_event(events_client, loc["ID"], ID="gala")

    def busy() -> Any:  # every unit of work fails as if another writer had changed the document first
        raise pubsubkit.ConditionFailed("changed meanwhile")

    monkeypatch.setattr(events_service.backends.store, "unit_of_work", busy)
    r = events_client.simulate_patch("/events/gala", json={"Name": "x"})
    assert problem(r) == conflict("conflict", "event 'gala' is being changed by others; try again")
    r = events_client.simulate_patch("/locations/arena", json={"Name": "x"})
    assert problem(r) == conflict("conflict", "location 'arena' is being changed by others; try again")


def test_bookings_refused(events_client: testing.TestClient, booking_client: testing.TestClient) -> None:
    ev = new_event(events_client, new_location(events_client, 3)["ID"], ID="gala")
    known_to_booking(booking_client, "gala")
    expected = {
        "/events/unknown": not_found("event 'unknown' is not known to the booking service"),
        "/events/unknown/bookings": not_found("event 'unknown' is not known to the booking service"),
        "/bookings/nope": not_found("no booking with ID 'nope'"),
    }
    for path, want in expected.items():
        assert problem(booking_client.simulate_get(path, headers=as_organizer())) == want, path

    r = booking_client.simulate_post("/events/gala/bookings", json={"seats": 4})
    assert problem(r) == conflict("sold-out", "4 seats asked, 3 left for event 'gala'")
    booked = booking_client.simulate_post("/events/gala/bookings", json={"seats": 3}).json
    assert booking_client.simulate_delete(f"/bookings/{booked['ID']}").status_code == 200
    r = booking_client.simulate_delete(f"/bookings/{booked['ID']}")
    assert problem(r) == conflict("cancelled", f"booking {booked['ID']!r} is cancelled already")

    events_client.simulate_delete(f"/events/{ev['ID']}")
    known_to_booking(booking_client, "gala", Cancelled=True)
    r = booking_client.simulate_post("/events/gala/bookings", json={"seats": 1}, headers=as_user("bob"))
    assert problem(r) == conflict("cancelled", "event 'gala' is cancelled")


def test_booking_before_the_capacity_is_known(booking_client: testing.TestClient, bus: Bus) -> None:
    t0 = datetime(2027, 1, 1, tzinfo=UTC)
    bus.emit(contracts.EventCreated("early", "Early", "later", t0, t0), key="early")
    known_to_booking(booking_client, "early", Capacity=None)
    r = booking_client.simulate_post("/events/early/bookings", json={"seats": 1})
    detail = "the location of event 'early' is not known to the booking service yet; try again shortly"
    assert problem(r) == conflict("capacity-unknown", detail)


class _Raising:
    """A resource whose GET raises what the test gives it."""

    def __init__(self) -> None:
        self.error: Exception = RuntimeError("unset")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise self.error


class _Overbooked(errors.Conflict):
    """A subclass is answered as its nearest listed base."""


def test_the_web_layer_maps_each_domain_error_once() -> None:
    app, resource = falcon.App(), _Raising()
    problems.install(app)
    app.add_route("/", resource)
    client = testing.TestClient(app)
    fields = [{"field": "EndDate", "reason": "must not be before StartDate"}, {"field": "", "reason": "empty"}]
    cases: list[tuple[Exception, dict[str, Any]]] = [
        (errors.NotFound("no event with ID 'x'"), not_found("no event with ID 'x'")),
        (errors.Conflict("taken"), conflict("conflict", "taken")),
        (errors.Conflict("gone", kind="cancelled"), conflict("cancelled", "gone")),
        (_Overbooked("full", kind="sold-out"), conflict("sold-out", "full")),
        (
            errors.Invalid(fields),
            doc(422, "Unprocessable Entity", "invalid-fields", "invalid fields: EndDate, the body", errors=fields),
        ),
        (
            errors.DomainError("a kind the web layer does not know", kind="odd"),
            doc(
                500, "Internal Server Error", "internal", "the server failed to handle this request; it has been logged"
            ),
        ),
    ]
    for error, want in cases:
        resource.error = error
        assert problem(client.simulate_get("/")) == want, error
    assert problems.Problem.invalid(fields).description == errors.Invalid(fields).detail
