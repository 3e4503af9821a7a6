"""The event service's routes, on memory:// backends."""

from __future__ import annotations

from datetime import UTC, datetime

from falcon import testing
from myevents_support import Bus, new_event, new_location

from myevents import contracts
from myevents.ids import OBJECT_ID


def test_create_location_returns_it_with_its_id_and_publishes_location_created(
    events_client: testing.TestClient, bus: Bus
) -> None:
    body = {
        "name": "Arena",  # field names are case-insensitive, as in the original
        "ADDRESS": "1 Main St",
        "Country": "DE",
        "OpenTime": 8,
        "closetime": 23,
        "Halls": [{"Name": "big", "location": "ground floor", "capacity": 300}, {"name": "small", "capacity": 20}],
    }
    r = events_client.simulate_post("/locations", json=body, headers={"X-Correlation-ID": "req-42"})
    assert r.status_code == 201
    loc = r.json
    assert OBJECT_ID.fullmatch(loc["ID"]), "an id the original Go services accept"
    assert r.headers["location"] == f"/locations/{loc['ID']}"
    assert r.headers["x-correlation-id"] == "req-42"
    assert loc == {
        "ID": loc["ID"],
        "Name": "Arena",
        "Address": "1 Main St",
        "Country": "DE",
        "OpenTime": 8,
        "CloseTime": 23,
        "Halls": [
            {"name": "big", "location": "ground floor", "capacity": 300},
            {"name": "small", "location": "", "capacity": 20},
        ],
        "Cancelled": False,
    }
    assert events_client.simulate_get(f"/locations/{loc['ID']}").json == loc
    assert events_client.simulate_get("/locations").json == [loc]

    [(event, env)] = bus.wait(contracts.LocationCreated)
    assert event == contracts.LocationCreated(
        loc["ID"],
        "Arena",
        "1 Main St",
        "DE",
        [contracts.Hall("big", "ground floor", 300), contracts.Hall("small", "", 20)],
        open_time=8,
        close_time=23,
    )
    assert env.key == loc["ID"]
    assert env.correlation_id == "req-42"


def test_a_client_may_choose_the_id_once(events_client: testing.TestClient) -> None:
    new_location(events_client, ID="arena-1")
    r = events_client.simulate_post("/locations", json={"ID": "arena-1", "Name": "Again"})
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:conflict"


def test_create_event_embeds_its_location_and_publishes_event_created(
    events_client: testing.TestClient, bus: Bus
) -> None:
    loc = new_location(events_client, 100)
    ev = new_event(events_client, loc["ID"], Duration=120)
    assert OBJECT_ID.fullmatch(ev["ID"]), "the original booking service refuses another form of event id"
    assert ev["Location"] == loc
    assert {k: ev[k] for k in ("Name", "Duration", "StartDate", "EndDate", "Cancelled")} == {
        "Name": "Concert",
        "Duration": 120,
        "StartDate": 1_800_000_000,
        "EndDate": 1_800_007_200,
        "Cancelled": False,
    }
    assert events_client.simulate_get(f"/events/{ev['ID']}").json == ev
    assert events_client.simulate_get("/events").json == [ev]
    [(event, env)] = bus.wait(contracts.EventCreated)
    assert event == contracts.EventCreated(
        ev["ID"],
        "Concert",
        loc["ID"],
        datetime.fromtimestamp(1_800_000_000, UTC),
        datetime.fromtimestamp(1_800_007_200, UTC),
        duration=120,
    )
    assert env.key == ev["ID"]
    assert env.correlation_id  # made up by the service when the client sent none
    assert b'"location_id"' in env.payload
    assert b'"start_date":"2027-01-15T08:00:00+00:00"' in env.payload


def test_search_by_name_or_id_with_criteria_in_any_case(events_client: testing.TestClient) -> None:
    loc = new_location(events_client)
    first = new_event(events_client, loc["ID"], Name="Opera Night")
    new_event(events_client, loc["ID"], Name="Opera Night")
    assert events_client.simulate_get("/events/name/Opera Night").json == first
    assert events_client.simulate_get("/events/NAME/Opera%20Night").json == first
    assert events_client.simulate_get(f"/events/Id/{first['ID']}").json == first
    assert events_client.simulate_get("/events/name/opera night").status_code == 404
    assert events_client.simulate_get(f"/events/id/{first['ID']}x").status_code == 404
    r = events_client.simulate_get("/events/colour/blue")
    assert r.status_code == 404
    assert "'name' or 'id'" in r.json["detail"]


def test_an_event_needs_an_open_location_and_sane_dates(events_client: testing.TestClient) -> None:
    r = events_client.simulate_post(
        "/events", json={"Name": "x", "StartDate": 1, "EndDate": 2, "Location": {"ID": "nowhere"}}
    )
    assert r.status_code == 422
    assert r.json["errors"] == [{"field": "Location.ID", "reason": "no location with this ID is open"}]
    loc = new_location(events_client)
    r = events_client.simulate_post(
        "/events", json={"Name": "x", "StartDate": 5, "EndDate": 2, "Location": {"ID": loc["ID"]}}
    )
    assert r.status_code == 422
    assert r.json["errors"] == [{"field": "EndDate", "reason": "must not be before StartDate"}]


def test_the_whole_location_may_be_sent_with_an_event(events_client: testing.TestClient) -> None:
    loc = new_location(events_client)
    ev = new_event(events_client, loc["ID"], Location=loc)
    assert ev["Location"]["ID"] == loc["ID"]


def test_patch_event_changes_fields_and_publishes_event_updated(events_client: testing.TestClient, bus: Bus) -> None:
    loc = new_location(events_client)
    ev = new_event(events_client, loc["ID"])
    r = events_client.simulate_patch(f"/events/{ev['ID']}", json={"name": "Renamed", "EndDate": 1_800_009_000})
    assert r.status_code == 200
    assert r.json == {**ev, "Name": "Renamed", "EndDate": 1_800_009_000}
    assert events_client.simulate_get(f"/events/{ev['ID']}").json == r.json
    [(event, _env)] = bus.wait(contracts.EventUpdated)
    assert (event.name, event.end_date, event.location_id) == (
        "Renamed",
        datetime.fromtimestamp(1_800_009_000, UTC),
        loc["ID"],
    )


def test_patch_event_refuses_read_only_fields_and_bad_dates(events_client: testing.TestClient) -> None:
    loc = new_location(events_client)
    ev = new_event(events_client, loc["ID"])
    r = events_client.simulate_patch(
        f"/events/{ev['ID']}", json={"Location": {"ID": "other"}, "ID": "x", "Cancelled": True}
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json["errors"]] == ["Location", "ID", "Cancelled"]
    r = events_client.simulate_patch(f"/events/{ev['ID']}", json={"StartDate": 1_900_000_000})
    assert r.status_code == 422
    assert events_client.simulate_patch("/events/nope", json={"Name": "x"}).status_code == 404


def test_cancel_event_then_it_cannot_change(events_client: testing.TestClient, bus: Bus) -> None:
    loc = new_location(events_client)
    ev = new_event(events_client, loc["ID"])
    r = events_client.simulate_delete(f"/events/{ev['ID']}")
    assert r.status_code == 200
    assert r.json["Cancelled"] is True
    assert events_client.simulate_get(f"/events/{ev['ID']}").json["Cancelled"] is True
    [(event, _)] = bus.wait(contracts.EventCancelled)
    assert event == contracts.EventCancelled(ev["ID"])
    assert events_client.simulate_delete(f"/events/{ev['ID']}").status_code == 409
    r = events_client.simulate_patch(f"/events/{ev['ID']}", json={"Name": "x"})
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:cancelled"
    assert events_client.simulate_delete("/events/nope").status_code == 404


def test_patch_location_replaces_halls_and_publishes_location_updated(
    events_client: testing.TestClient, bus: Bus
) -> None:
    loc = new_location(events_client, 10)
    r = events_client.simulate_patch(
        f"/locations/{loc['ID']}",
        json={"Halls": [{"name": "new", "capacity": 5}], "Country": "FR"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200
    assert r.json == {**loc, "Country": "FR", "Halls": [{"name": "new", "location": "", "capacity": 5}]}
    [(event, _)] = bus.wait(contracts.LocationUpdated)
    assert (event.country, event.halls) == ("FR", [contracts.Hall("new", "", 5)])
    assert events_client.simulate_patch("/locations/nope", json={"Name": "x"}).status_code == 404
    r = events_client.simulate_patch(f"/locations/{loc['ID']}", json={"ID": "other"})
    assert r.status_code == 422


def test_a_location_is_cancelled_only_without_active_events(events_client: testing.TestClient, bus: Bus) -> None:
    loc = new_location(events_client)
    ev = new_event(events_client, loc["ID"])
    r = events_client.simulate_delete(f"/locations/{loc['ID']}")
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:in-use"
    events_client.simulate_delete(f"/events/{ev['ID']}")
    r = events_client.simulate_delete(f"/locations/{loc['ID']}")
    assert r.status_code == 200
    assert r.json["Cancelled"] is True
    [(event, _)] = bus.wait(contracts.LocationCancelled)
    assert event == contracts.LocationCancelled(loc["ID"])
    assert events_client.simulate_delete(f"/locations/{loc['ID']}").status_code == 409
    assert events_client.simulate_patch(f"/locations/{loc['ID']}", json={"Name": "x"}).status_code == 409
    r = events_client.simulate_post(
        "/events", json={"Name": "x", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}}
    )
    assert r.status_code == 422
    assert events_client.simulate_delete("/locations/nope").status_code == 404


def test_unknown_ids_are_404(events_client: testing.TestClient) -> None:
    for path in ("/events/nope", "/locations/nope", "/events/%F0%9F%8E%89", "/events/" + "x" * 5000):
        r = events_client.simulate_get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
