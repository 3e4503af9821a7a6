"""The booking service's routes and its projection of the event service's events, on memory:// backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from falcon import testing
from myevents_support import Bus, as_organizer, as_user, known_to_booking, new_event, new_location, wait_for

import pubsubkit
from myevents import contracts
from myevents.ids import OBJECT_ID
from myevents.runtime import Service

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def book(client: testing.TestClient, event_id: str, seats: int, user: str = "alice") -> testing.Result:
    """Book as ``user`` (by their token; the body names them too, as the original's clients do)."""
    return client.simulate_post(
        f"/events/{event_id}/bookings", json={"seats": seats, "userId": user}, headers=as_user(user)
    )


def test_the_booking_service_learns_events_only_from_the_bus(
    events_client: testing.TestClient, booking_client: testing.TestClient
) -> None:
    loc = new_location(events_client, 30, 20)
    ev = new_event(events_client, loc["ID"], Name="Gala")
    copy = known_to_booking(booking_client, ev["ID"])
    assert copy == {
        "ID": ev["ID"],
        "Name": "Gala",
        "LocationID": loc["ID"],
        "StartDate": ev["StartDate"],
        "EndDate": ev["EndDate"],
        "Duration": 0,
        "Capacity": 50,  # every hall of the location: 30 + 20
        "SeatsLeft": 50,
        "Cancelled": False,
    }


def test_book_list_and_cancel(events_client: testing.TestClient, booking_client: testing.TestClient, bus: Bus) -> None:
    ev = new_event(events_client, new_location(events_client, 5)["ID"])
    known_to_booking(booking_client, ev["ID"])

    r = book(booking_client, ev["ID"], 3)
    assert r.status_code == 201
    booking = r.json
    assert OBJECT_ID.fullmatch(booking["ID"])
    assert r.headers["location"] == f"/bookings/{booking['ID']}"
    assert {k: booking[k] for k in ("EventID", "UserID", "Seats", "Cancelled")} == {
        "EventID": ev["ID"],
        "UserID": "alice",
        "Seats": 3,
        "Cancelled": False,
    }
    assert isinstance(booking["Date"], int)
    other = booking_client.simulate_post(f"/events/{ev['ID']}/bookings", json={"Seats": 1}, headers=as_user("bob"))
    assert other.status_code == 201
    assert other.json["UserID"] == "bob"  # the user is the token's subject; the body needs only the seats

    organizer = as_organizer()
    assert booking_client.simulate_get(f"/events/{ev['ID']}/bookings", headers=organizer).json == [booking, other.json]
    assert booking_client.simulate_get("/users/alice/bookings").json == [booking]
    assert booking_client.simulate_get("/users/nobody/bookings", headers=as_user("nobody")).json == []
    assert booking_client.simulate_get(f"/bookings/{booking['ID']}").json == booking
    assert booking_client.simulate_get(f"/events/{ev['ID']}").json["SeatsLeft"] == 1

    r = booking_client.simulate_delete(f"/bookings/{booking['ID']}")
    assert r.status_code == 200
    assert r.json == {**booking, "Cancelled": True}
    assert booking_client.simulate_get(f"/events/{ev['ID']}").json["SeatsLeft"] == 4
    r = booking_client.simulate_delete(f"/bookings/{booking['ID']}")
    assert r.status_code == 409
    assert booking_client.simulate_delete("/bookings/nope").status_code == 404
    assert booking_client.simulate_get("/bookings/nope").status_code == 404

    [(booked, env), _] = bus.wait(contracts.EventBooked, 2)
    assert booked == contracts.EventBooked(ev["ID"], "alice", booking["ID"], 3)
    assert b'"eventId"' in env.payload
    assert b'"userId":"alice"' in env.payload
    assert env.key == ev["ID"]
    [(cancelled, _)] = bus.wait(contracts.BookingCancelled)
    assert cancelled == contracts.BookingCancelled(booking["ID"], ev["ID"], "alice", 3, "cancelled")


def test_the_request_correlation_id_travels_with_the_event(
    events_client: testing.TestClient, booking_client: testing.TestClient, bus: Bus
) -> None:
    ev = new_event(events_client, new_location(events_client)["ID"])
    known_to_booking(booking_client, ev["ID"])
    r = booking_client.simulate_post(
        f"/events/{ev['ID']}/bookings", json={"seats": 1}, headers={"X-Correlation-ID": "checkout-7"}
    )
    assert r.headers["x-correlation-id"] == "checkout-7"
    [(_, env)] = bus.wait(contracts.EventBooked)
    assert env.correlation_id == "checkout-7"


def test_409_when_seats_run_out_and_404_for_unknown_events(
    events_client: testing.TestClient, booking_client: testing.TestClient
) -> None:
    ev = new_event(events_client, new_location(events_client, 3)["ID"])
    known_to_booking(booking_client, ev["ID"])
    assert book(booking_client, ev["ID"], 2).status_code == 201
    r = book(booking_client, ev["ID"], 2)
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:sold-out"
    assert "1 left" in r.json["detail"]
    assert book(booking_client, ev["ID"], 1).status_code == 201
    assert book(booking_client, ev["ID"], 1).status_code == 409
    r = book(booking_client, "unknown-event", 1)
    assert r.status_code == 404
    assert booking_client.simulate_get("/events/unknown-event/bookings", headers=as_organizer()).status_code == 404
    assert booking_client.simulate_get("/events/unknown-event").status_code == 404


def test_seats_must_be_a_positive_integer(
    events_client: testing.TestClient, booking_client: testing.TestClient
) -> None:
    ev = new_event(events_client, new_location(events_client)["ID"])
    known_to_booking(booking_client, ev["ID"])
    for seats in (0, -1, "2", 2.5, True, None, 10**30):
        r = booking_client.simulate_post(f"/events/{ev['ID']}/bookings", json={"seats": seats})
        assert r.status_code == 422, seats
        assert r.json["errors"][0]["field"] == "Seats"
    r = booking_client.simulate_post(f"/events/{ev['ID']}/bookings", json={"userId": "alice"})
    assert r.json["errors"] == [{"field": "Seats", "reason": "is required"}]
    r = booking_client.simulate_post(f"/events/{ev['ID']}/bookings", json={"seats": 1, "userId": "a b"})
    assert r.status_code == 422


def test_cancelling_an_event_releases_its_bookings(
    events_client: testing.TestClient, booking_client: testing.TestClient, bus: Bus
) -> None:
    ev = new_event(events_client, new_location(events_client, 10)["ID"])
    known_to_booking(booking_client, ev["ID"])
    first = book(booking_client, ev["ID"], 2).json
    second = book(booking_client, ev["ID"], 3, user="bob").json
    booking_client.simulate_delete(f"/bookings/{first['ID']}")

    events_client.simulate_delete(f"/events/{ev['ID']}")
    known_to_booking(booking_client, ev["ID"], Cancelled=True)
    r = book(booking_client, ev["ID"], 1)
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:cancelled"
    released = bus.wait(contracts.BookingCancelled, 2)
    assert [e for e, _ in released] == [
        contracts.BookingCancelled(first["ID"], ev["ID"], "alice", 2, "cancelled"),
        contracts.BookingCancelled(second["ID"], ev["ID"], "bob", 3, "eventCancelled"),
    ]
    assert booking_client.simulate_get(f"/bookings/{second['ID']}", headers=as_user("bob")).json["Cancelled"] is True


def test_updates_reach_the_copy_and_capacity_follows_the_halls(
    events_client: testing.TestClient, booking_client: testing.TestClient
) -> None:
    loc = new_location(events_client, 10)
    ev = new_event(events_client, loc["ID"])
    known_to_booking(booking_client, ev["ID"])
    assert book(booking_client, ev["ID"], 4).status_code == 201
    events_client.simulate_patch(f"/events/{ev['ID']}", json={"Name": "Moved", "StartDate": 1_800_000_100})
    known_to_booking(booking_client, ev["ID"], Name="Moved", StartDate=1_800_000_100)

    events_client.simulate_patch(f"/locations/{loc['ID']}", json={"Halls": [{"name": "a", "capacity": 6}]})
    known_to_booking(booking_client, ev["ID"], Capacity=6, SeatsLeft=2)
    # Shrinking below what is booked keeps every booking and refuses new ones.
    events_client.simulate_patch(f"/locations/{loc['ID']}", json={"Halls": [{"name": "a", "capacity": 3}]})
    known_to_booking(booking_client, ev["ID"], Capacity=3, SeatsLeft=0)
    assert book(booking_client, ev["ID"], 1).status_code == 409


def test_an_event_heard_before_its_location_waits_for_it(booking_client: testing.TestClient, bus: Bus) -> None:
    bus.emit(contracts.EventCreated("e1", "Early", "l1", T0, T0), key="e1")
    copy = known_to_booking(booking_client, "e1", Capacity=None)
    assert (copy["Capacity"], copy["SeatsLeft"]) == (None, 0)
    r = book(booking_client, "e1", 1)
    assert r.status_code == 409
    assert r.json["type"] == "urn:myevents:problem:capacity-unknown"
    bus.emit(contracts.LocationCreated("l1", "Late", "", "", [contracts.Hall("h", "", 7)]), key="l1")
    known_to_booking(booking_client, "e1", Capacity=7, SeatsLeft=7)
    assert book(booking_client, "e1", 7).status_code == 201


@pytest.mark.parametrize("location_id", ["\x14\ufffd\x0b\t\ufffd\x15e}\ufffd\x10\ufffd:", ""])
def test_an_event_whose_location_can_never_be_heard_is_booked_without_a_limit(
    booking_client: testing.TestClient, bus: Bus, location_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The original Go event service sends its location's ObjectId bytes as characters (or nothing): no location
    will ever have that id, so the event is booked as the original booking service books, without a limit."""
    bus.emit(contracts.EventCreated("e1", "From Go", location_id, T0, T0), key="e1")
    copy = known_to_booking(booking_client, "e1", Capacity=None, SeatsLeft=None)
    assert copy["LocationID"] == location_id
    assert "is booked without a capacity limit" in caplog.text
    for _ in range(3):
        assert book(booking_client, "e1", 10_000).status_code == 201
    assert known_to_booking(booking_client, "e1", Capacity=None)["SeatsLeft"] is None


def test_a_redelivered_message_has_one_effect(booking_client: testing.TestClient, bus: Bus) -> None:
    bus.emit(contracts.LocationCreated("l1", "Hall", "", "", [contracts.Hall("h", "", 5)]), key="l1")
    created = bus.broker.emitter().envelope(contracts.EventCreated("e1", "Once", "l1", T0, T0), key="e1")
    cancelled = bus.broker.emitter().envelope(contracts.EventCancelled("e1"), key="e1")
    bus.broker.emitter().publish([created, created])
    known_to_booking(booking_client, "e1", SeatsLeft=5)
    assert book(booking_client, "e1", 2).status_code == 201
    bus.broker.emitter().publish([created, cancelled, cancelled])
    known_to_booking(booking_client, "e1", Cancelled=True)
    bus.emit(contracts.LocationUpdated("l1", "Hall", "", "", [contracts.Hall("h", "", 5)]), key="l1")
    bus.wait(contracts.LocationUpdated)
    wait_for(lambda: len(bus.of(contracts.BookingCancelled)) == 1, what="one release")
    assert booking_client.simulate_get("/events/e1").json["SeatsLeft"] == 5


def test_metrics_count_booked_seats(
    events_client: testing.TestClient, booking_client: testing.TestClient, booking_service: Service
) -> None:
    ev = new_event(events_client, new_location(events_client, 10)["ID"])
    known_to_booking(booking_client, ev["ID"])
    for seats in (1, 2, 2, 4):
        assert book(booking_client, ev["ID"], seats).status_code == 201
    assert book(booking_client, ev["ID"], 4).status_code == 409
    r = booking_client.simulate_get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "myevents_bookings_count_total 9.0" in text
    assert 'myevents_seats_per_booking_bucket{le="2.0"} 3.0' in text
    assert 'myevents_seats_per_booking_bucket{le="4.0"} 4.0' in text
    assert 'myevents_bookings_refused_total{reason="sold-out"} 1.0' in text
    assert 'pubsubkit_handled_total{group="booking",name="eventCreated",outcome="ok"} 1.0' in text
    assert "pubsubkit_outbox_relayed_total" in text
    assert 'myevents_http_requests_total{method="POST",route="/events/{id}/bookings",status="201"} 4.0' in text
    assert ev["ID"] not in text  # no event ids as labels


def test_unknown_events_on_the_bus_are_skipped(booking_client: testing.TestClient, bus: Bus) -> None:
    bus.broker.emitter().publish(
        [pubsubkit.Envelope(id=pubsubkit.new_id(), name="somethingNew", payload=b'{"x": 1}', key="k")]
    )
    bus.emit(contracts.LocationCreated("l1", "Hall", "", "", [contracts.Hall("h", "", 5)]), key="l1")
    bus.emit(contracts.EventCreated("e1", "After", "l1", T0, T0), key="e1")
    known_to_booking(booking_client, "e1", SeatsLeft=5)
