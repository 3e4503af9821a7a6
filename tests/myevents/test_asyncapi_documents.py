"""Issue 23: both services serve an AsyncAPI 3.0 document (``GET /asyncapi.json``) that validates against the
official schema, lists every event the service emits or consumes, and whose schemas accept the payloads the
test takes from the bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
from falcon import testing
from myevents_support import Bus, known_to_booking, new_event, new_location, wait_for

import pubsubkit
from myevents import contracts

SPEC = Path(__file__).resolve().parents[1] / "asyncapi" / "asyncapi-3.0.0.schema.json"
EVERY_EVENT = {
    "eventCreated", "eventUpdated", "eventCancelled", "locationCreated", "locationUpdated", "locationCancelled",
    "eventBooked", "bookingCancelled",
}  # fmt: skip


def sent_and_heard(doc: dict[str, Any]) -> tuple[set[str], set[str]]:
    sent, heard = set(), set()
    for op in doc["operations"].values():
        names = {m["$ref"].rsplit("/", 1)[-1] for m in op["messages"]}
        (sent if op["action"] == "send" else heard).update(names)
    return sent, heard


def test_both_services_serve_a_valid_asyncapi_document_of_what_they_emit_and_hear(
    events_client: testing.TestClient, booking_client: testing.TestClient
) -> None:
    spec = jsonschema_rs.validator_for(json.loads(SPEC.read_text()))
    events_doc = events_client.simulate_get("/asyncapi.json").json
    booking_doc = booking_client.simulate_get("/asyncapi.json").json
    for doc in (events_doc, booking_doc):
        found = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"[:300] for e in spec.iter_errors(doc)]
        assert found == [], found
    assert sent_and_heard(events_doc) == (EVERY_EVENT - {"eventBooked", "bookingCancelled"}, set())
    assert sent_and_heard(booking_doc) == (
        {"eventBooked", "bookingCancelled"},
        EVERY_EVENT - {"eventBooked", "bookingCancelled"},
    )
    groups = {op.get("x-pubsubkit-group") for op in booking_doc["operations"].values() if op["action"] == "receive"}
    assert groups == {"booking"}


def test_the_schemas_accept_the_payloads_taken_from_the_bus(
    events_client: testing.TestClient, booking_client: testing.TestClient, bus: Bus
) -> None:
    loc = new_location(events_client, 5)
    events_client.simulate_patch(f"/locations/{loc['ID']}", json={"Halls": [{"name": "a", "capacity": 6}]})
    ev = new_event(events_client, loc["ID"])
    events_client.simulate_patch(f"/events/{ev['ID']}", json={"Name": "Renamed"})
    known_to_booking(booking_client, ev["ID"], Name="Renamed", Capacity=6)
    booked = booking_client.simulate_post(f"/events/{ev['ID']}/bookings", json={"seats": 2})
    assert booked.status_code == 201, booked.text
    assert booking_client.simulate_delete(f"/bookings/{booked.json['ID']}").status_code == 200
    other = new_event(events_client, loc["ID"])
    assert events_client.simulate_delete(f"/events/{other['ID']}").status_code == 200
    spare = new_location(events_client)
    assert events_client.simulate_delete(f"/locations/{spare['ID']}").status_code == 200
    wait_for(lambda: len({env.name for _, env in bus.seen}) == len(EVERY_EVENT), what="every event on the bus")

    docs = {
        **{n: events_client.simulate_get("/asyncapi.json").json for n in EVERY_EVENT},
        **{n: booking_client.simulate_get("/asyncapi.json").json for n in ("eventBooked", "bookingCancelled")},
    }
    checked = set()
    for _, env in bus.seen:
        doc = docs[env.name]
        schema = {**doc["components"]["messages"][env.name]["payload"], "components": doc["components"]}
        jsonschema_rs.Draft7Validator(schema, validate_formats=True).validate(json.loads(env.payload))
        checked.add(env.name)
    assert checked == EVERY_EVENT


def test_the_booking_document_follows_its_listener() -> None:
    """The document is made from the listener the service runs: a handler added there is listed."""
    from myevents import asyncapi
    from myevents.booking.app import projector_listener
    from myevents.runtime import open_backends

    backends = open_backends(f"memory://doc-{pubsubkit.new_id()}", f"memory://doc-{pubsubkit.new_id()}")
    try:
        _, _, listener = projector_listener(backends)
        listener.add_handler(contracts.EventBooked, lambda e, m: None)
        doc = asyncapi.document("booking", backends.broker, [listener])
    finally:
        backends.close()
    assert "eventBooked" in sent_and_heard(doc)[1]
