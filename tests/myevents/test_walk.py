"""The end-to-end walk, on one broker and store combination: real ``myevents`` processes under gunicorn.

One event service and two booking-service instances in one consumer group, on every store; locations and
events are created, booked concurrently through both instances, cancelled; one instance is SIGKILLed and
started again while the other carries on; then every count must agree: HTTP answers of both instances,
users' bookings, and the events an auditing consumer group of the test heard on the bus. The services share
a secret given in the environment; an organizer creates, users book with their own tokens. Last, the event
service stops and the booking service goes on answering and booking from its own copy.

``MYEVENTS_E2E_BROKER`` (``embedded``, ``kafka``, ``rabbitmq``, ``sqs``) and ``MYEVENTS_E2E_STORE``
(``embedded``, ``mongo``, ``dynamodb``) pick the combination; ``embedded`` (SQLite in a data directory, the
default) needs no server. ``tox -m e2e`` runs every combination against the servers of ``scripts/servers``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "procs"))
from backend_urls import AWS, broker_url, store_url
from myevents_procs import Proc, call, free_port, wait_ready
from myevents_support import TEST_SECRET, Bus, as_organizer, as_user, wait_for

import pubsubkit
from myevents import booking as bk
from myevents import config, contracts
from myevents import events as ev
from pubsubkit.testing import unique_name

pytestmark = pytest.mark.walk

BROKER = os.environ.get("MYEVENTS_E2E_BROKER", "embedded")
STORE = os.environ.get("MYEVENTS_E2E_STORE", "embedded")
WAIT = 60.0  # seconds to wait for anything that travels over the bus (a Kafka rebalance included)


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Bus, dict[str, str]]]:
    """The walk's environment for the services, and a consumer group of the test's own on their broker."""
    run = unique_name("walk")
    data = tmp_path / "data"
    data.mkdir()
    for k, v in AWS.items():
        monkeypatch.setenv(k, os.environ.get(k, v))
    env = {
        "MYEVENTS_BROKER_URL": broker_url(BROKER, run, data),
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        **AWS,
    }
    if STORE != "embedded":  # the default: SQLite files in the data directory, one per service
        env["MYEVENTS_STORE_URL"] = store_url(STORE, run, data)
    bus = Bus(pubsubkit.open_broker(env["MYEVENTS_BROKER_URL"]))
    yield bus, env
    bus.listener.close()
    bus.broker.close()


def distinct(bus: Bus, cls: type[Any]) -> tuple[int, int]:
    """How many distinct events of a type the auditor heard, and how many deliveries were duplicates."""
    ids = Counter(env.id for _, env in bus.of(cls))
    return len(ids), sum(ids.values()) - len(ids)


def test_walk(tmp_path: Path, procs: list[Proc], audit: tuple[Bus, dict[str, str]]) -> None:
    bus, env = audit
    ev_url, a_url, b_url = (f"http://127.0.0.1:{free_port()}" for _ in range(3))

    def start(name: str, service: str, url: str) -> Proc:
        p = Proc(tmp_path, name, service, "--bind", url.removeprefix("http://"), env=env)
        procs.append(p)
        return p

    events = start("events", "event-service", ev_url)
    a = start("booking-a", "booking-service", a_url)
    b = start("booking-b", "booking-service", b_url)
    for url, proc in ((ev_url, events), (a_url, a), (b_url, b)):
        wait_ready(url, proc)

    org = as_organizer()
    users = {f"user{u}": as_user(f"user{u}") for u in range(6)}

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        status, got, _ = call("POST", url, body, org)
        assert status == 201, got
        return dict(got)

    def new_event(name: str, location: dict[str, Any]) -> dict[str, Any]:
        body = {"Name": name, "StartDate": 1, "EndDate": 2, "Location": {"ID": location["ID"]}}
        return post(ev_url + "/events", body)

    def known(base: str, event: dict[str, Any], capacity: int) -> None:
        wait_for(
            lambda: call("GET", f"{base}/events/{event['ID']}")[1].get("Capacity") == capacity,
            timeout=WAIT,
            what=f"{base} to know {event['Name']} with capacity {capacity}",
        )

    big = post(ev_url + "/locations", {"Name": "Arena", "Halls": [{"name": "floor", "capacity": 20}]})
    halls = [{"name": "a", "capacity": 5}, {"name": "b", "capacity": 5}]
    small = post(ev_url + "/locations", {"Name": "Club", "Halls": halls})
    gig, show, later = new_event("Gig", big), new_event("Show", small), new_event("Later", big)
    capacity = {gig["ID"]: 20, show["ID"]: 10, later["ID"]: 20}
    for base in (a_url, b_url):
        known(base, gig, 20)
        known(base, show, 10)
        known(base, later, 20)

    # 90 one-seat requests for 30 seats, spread over both instances, concurrently.
    requests = [(gig["ID"], i) for i in range(60)] + [(show["ID"], i) for i in range(30)]
    random.Random(7).shuffle(requests)

    def book(req: tuple[str, int]) -> tuple[str, int, dict[str, Any]]:
        event_id, i = req
        base = (a_url, b_url)[i % 2]
        user = f"user{i % 6}"
        status, body, _ = call("POST", f"{base}/events/{event_id}/bookings", {"seats": 1, "userId": user}, users[user])
        return event_id, status, body

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(book, requests))
    statuses = Counter((event_id, status) for event_id, status, _ in results)
    assert statuses == {(gig["ID"], 201): 20, (gig["ID"], 409): 40, (show["ID"], 201): 10, (show["ID"], 409): 20}
    booked = [body for event_id, status, body in results if status == 201 and event_id == gig["ID"]]

    for i, booking in enumerate(booked[:3]):
        url = f"{(a_url, b_url)[i % 2]}/bookings/{booking['ID']}"
        assert call("DELETE", url, headers=users[booking["UserID"]])[0] == 200
    cancelled = 3

    # One instance dies mid-stream; the other keeps serving and hearing events; the dead one comes back.
    os.killpg(b.popen.pid, signal.SIGKILL)  # the master and its workers, as when a machine dies
    b.popen.wait(10)
    encore = new_event("Encore", small)
    capacity[encore["ID"]] = 10
    known(a_url, encore, 10)
    assert call("POST", f"{a_url}/events/{encore['ID']}/bookings", {"seats": 4}, users["user1"])[0] == 201
    b = start("booking-b2", "booking-service", b_url)
    wait_ready(b_url, b)
    known(b_url, encore, 10)
    assert call("POST", f"{b_url}/events/{encore['ID']}/bookings", {"seats": 7}, users["user2"])[0] == 409
    assert call("POST", f"{b_url}/events/{encore['ID']}/bookings", {"seats": 6}, users["user2"])[0] == 201

    # Every count agrees, on both instances.
    seats = {gig["ID"]: 20 - cancelled, show["ID"]: 10, later["ID"]: 0, encore["ID"]: 10}
    for base in (a_url, b_url):
        for event_id, taken in seats.items():
            listed = call("GET", f"{base}/events/{event_id}/bookings", headers=org)[1]
            assert sum(x["Seats"] for x in listed if not x["Cancelled"]) == taken, (base, event_id)
            assert call("GET", f"{base}/events/{event_id}")[1]["SeatsLeft"] == capacity[event_id] - taken
        by_users = [x for u, h in users.items() for x in call("GET", f"{base}/users/{u}/bookings", headers=h)[1]]
        assert sum(x["Seats"] for x in by_users if not x["Cancelled"]) == sum(seats.values())
        assert sum(x["Cancelled"] for x in by_users) == cancelled

    # The booking service answers from its own copy, and books, with the event service stopped.
    assert events.stop(timeout=60) == 0, events.err.read_text()[-2000:]
    assert call("GET", f"{b_url}/events/{later['ID']}")[1]["Name"] == "Later"
    assert call("POST", f"{a_url}/events/{later['ID']}/bookings", {"seats": 2}, users["user3"])[0] == 201
    assert call("GET", f"{b_url}/events/{later['ID']}")[1]["SeatsLeft"] == 18

    # The bus carried each change once in effect: at-least-once delivery, duplicates counted but not lost.
    made = 20 + 10 + 2 + 1  # successful bookings
    wait_for(lambda: distinct(bus, contracts.EventBooked)[0] >= made, timeout=WAIT, what=f"{made} eventBooked")
    wait_for(lambda: distinct(bus, contracts.BookingCancelled)[0] >= cancelled, timeout=WAIT, what="bookingCancelled")
    assert distinct(bus, contracts.EventBooked)[0] == made
    assert distinct(bus, contracts.BookingCancelled)[0] == cancelled
    assert distinct(bus, contracts.EventCreated)[0] == 4
    assert distinct(bus, contracts.LocationCreated)[0] == 2

    for proc in (a, b):
        assert proc.stop(timeout=60) == 0, proc.err.read_text()[-2000:]

    # Neither the secret nor any token reached a log.
    logged = "".join(p.err.read_text() + p.out.read_text() for p in procs)
    for secret in (TEST_SECRET, *(h["Authorization"].removeprefix("Bearer ") for h in (org, *users.values()))):
        assert secret not in logged


def test_500_concurrent_bookings_sell_exactly_the_capacity(audit: tuple[Bus, dict[str, str]]) -> None:
    """Both services in this process on the combination's broker and store; 500 bookings over 5 events of 40."""
    _, env = audit
    makers = (("events", ev.create_service), ("booking", bk.create_service))
    services = [create(config.load(name, env=env)).start() for name, create in makers]
    try:
        events, booking = (testing.TestClient(s.app, headers=as_organizer()) for s in services)
        hall = {"Name": "Hall", "Halls": [{"name": "floor", "capacity": 40}]}
        location = events.simulate_post("/locations", json=hall).json
        created = [
            events.simulate_post(
                "/events", json={"Name": f"Show {i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": location["ID"]}}
            ).json["ID"]
            for i in range(5)
        ]
        for event_id in created:
            wait_for(
                lambda e=event_id: booking.simulate_get(f"/events/{e}").json.get("SeatsLeft") == 40,
                timeout=WAIT,
                what=f"the booking service to know {event_id}",
            )

        def attempt(i: int) -> tuple[str, int]:
            event_id = created[i % 5]
            r = booking.simulate_post(f"/events/{event_id}/bookings", json={"seats": 1}, headers=as_user(f"u{i}"))
            return event_id, r.status_code

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(attempt, range(500)))
        assert Counter(status for _, status in results) == {201: 200, 409: 300}
        for event_id in created:
            assert Counter(e for e, status in results if status == 201)[event_id] == 40
            assert booking.simulate_get(f"/events/{event_id}").json["SeatsLeft"] == 0
            assert len(booking.simulate_get(f"/events/{event_id}/bookings").json) == 40
    finally:
        for s in services:
            s.close()


INJECTIONS: list[Any] = [{"$gt": ""}, {"$ne": None}, {"$where": "1 == 1"}, ["$gt", ""], {"$regex": ".*"}]


def test_query_operators_in_input_are_refused(audit: tuple[Bus, dict[str, str]]) -> None:
    """MongoDB-style operators in fields, ids and search strings: 4xx, and nothing found or written."""
    _, env = audit
    service = ev.create_service(config.load("events", env=env)).start()
    try:
        client = testing.TestClient(service.app, headers=as_organizer())
        hall = {"name": "floor", "capacity": 10}
        location = client.simulate_post("/locations", json={"Name": "Hall", "Halls": [hall]}).json
        body = {"Name": "Real", "StartDate": 1, "EndDate": 2, "Location": {"ID": location["ID"]}}
        assert client.simulate_post("/events", json=body).status_code == 201
        for bad in INJECTIONS:
            for field in ("Name", "StartDate"):
                r = client.simulate_post("/events", json={**body, field: bad})
                assert r.status_code == 422, (field, bad, r.text)
            r = client.simulate_post("/events", json={**body, "Location": {"ID": bad}})
            assert r.status_code == 422, (bad, r.text)
            r = client.simulate_post("/locations", json={"Name": bad, "Halls": [hall]})
            assert r.status_code == 422, (bad, r.text)
            text = json.dumps(bad)
            for path in (f"/events/{text}", f"/events/name/{text}", f"/events/id/{text}", f"/locations/{text}"):
                assert client.simulate_get(path).status_code == 404, path
            assert client.simulate_patch(f"/events/{text}", json={"Name": "x"}).status_code == 404
        assert [e["Name"] for e in client.simulate_get("/events").json] == ["Real"]
        assert len(client.simulate_get("/locations").json) == 1
    finally:
        service.close()
