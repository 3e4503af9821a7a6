"""Many simultaneous bookings never sell more seats than there are, on either embedded store."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from falcon import testing
from myevents_support import Bus, as_organizer, as_user, known_to_booking, make_config

from myevents import booking, contracts
from myevents.runtime import Service

T0 = datetime(2027, 1, 1, tzinfo=UTC)
CAPACITY = {"e1": 40, "e2": 25}


@pytest.fixture(params=["sqlite", "memory"])
def service(request: pytest.FixtureRequest, urls: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    store = f"sqlite:///{tmp_path}/booking.db" if request.param == "sqlite" else urls["booking"]
    svc = booking.create_service(make_config("booking", urls["bus"], store)).start()
    yield svc
    svc.close()


@pytest.fixture
def client(service: Service) -> Iterator[testing.TestClient]:
    bus = Bus(service.backends.broker)
    for event_id, capacity in CAPACITY.items():
        location = f"loc-{event_id}"
        halls = [contracts.Hall("a", "", capacity - 10), contracts.Hall("b", "", 10)]
        bus.emit(contracts.LocationCreated(location, "Hall", "", "", halls), key=location)
        bus.emit(contracts.EventCreated(event_id, "Show", location, T0, T0), key=event_id)
    bus.listener.close()
    c = testing.TestClient(service.app, headers=as_organizer())
    for event_id, capacity in CAPACITY.items():
        known_to_booking(c, event_id, SeatsLeft=capacity)
    return c


def test_200_concurrent_bookings_sell_exactly_the_capacity(client: testing.TestClient) -> None:
    requests = [("e1" if i % 2 else "e2", f"user{i}") for i in range(200)]

    def attempt(req: tuple[str, str]) -> tuple[str, int]:
        event_id, user = req
        r = client.simulate_post(f"/events/{event_id}/bookings", json={"seats": 1}, headers=as_user(user))
        return event_id, r.status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(attempt, requests))

    by_status = collections.Counter(status for _, status in results)
    assert set(by_status) == {201, 409}, by_status
    booked = collections.Counter(event_id for event_id, status in results if status == 201)
    assert booked == CAPACITY
    for event_id, capacity in CAPACITY.items():
        assert client.simulate_get(f"/events/{event_id}").json["SeatsLeft"] == 0
        assert len(client.simulate_get(f"/events/{event_id}/bookings").json) == capacity
    assert f"myevents_bookings_count_total {sum(CAPACITY.values())}.0" in client.simulate_get("/metrics").text


def test_a_booking_cancelled_many_times_at_once_frees_its_seats_once(client: testing.TestClient) -> None:
    ann = as_user("ann")
    booking_id = client.simulate_post("/events/e2/bookings", json={"seats": 5}, headers=ann).json["ID"]

    def cancel(i: int) -> int:
        # The user and an organizer race to cancel it.
        return client.simulate_delete(f"/bookings/{booking_id}", headers=ann if i % 2 else None).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(cancel, range(30)))
    assert sorted(collections.Counter(statuses).items()) == [(200, 1), (409, 29)]
    assert client.simulate_get("/events/e2").json["SeatsLeft"] == CAPACITY["e2"]
