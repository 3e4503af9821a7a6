"""Issue 20, "Replay": the booking service's copy built, and rebuilt, from the history the broker keeps.

Real ``myevents`` processes on the combination of ``MYEVENTS_E2E_BROKER`` and ``MYEVENTS_E2E_STORE`` (see
``test_walk.py``; ``tox -m e2e`` runs every one). Only brokers in :data:`REBUILD_BROKERS` keep a history to
rebuild from; on the others the test is skipped.

1. A booking service started for the first time after the events and their locations were created has every
   one of them, with its seats left.
2. With some booked (and some bookings cancelled, an event cancelled), the service is stopped, its copy wiped,
   ``myevents rebuild`` run, the service started again: it answers as before, and goes on hearing new events.
   Then the same with ``rebuild --into`` a fresh store, which the service is then started on.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "procs"))
from backend_urls import AWS, broker_url, store_url
from myevents_procs import Proc, call, free_port, wait_ready
from myevents_support import TEST_SECRET, as_organizer, as_user, wait_for

import pubsubkit
from myevents import config
from myevents.booking.models import EVENT_COPIES, LOCATION_COPIES
from pubsubkit.store import Delete
from pubsubkit.testing import unique_name

pytestmark = pytest.mark.walk

BROKER = os.environ.get("MYEVENTS_E2E_BROKER", "embedded")
STORE = os.environ.get("MYEVENTS_E2E_STORE", "embedded")
#: The brokers that keep a history (capability replay) and the test runs on.
REBUILD_BROKERS = ("embedded", "kafka", "rabbitmq")
#: Events created before the booking service first starts (issue 20 asks for 200), over a tenth as many locations.
EVENTS = int(os.environ.get("MYEVENTS_REBUILD_EVENTS", "200"))
WAIT = 60.0
USERS = [f"user{u}" for u in range(5)]


def wipe(store_url: str) -> int:
    """Delete the booking service's copy of events and locations, as a lost or corrupted copy would be."""
    store = pubsubkit.open_store(store_url)
    try:
        n = 0
        for name in (EVENT_COPIES, LOCATION_COPIES):
            while docs := store.find_raw(name, {}, 100, None):
                store.commit([Delete(name, d["id"]) for d in docs])
                n += len(docs)
        return n
    finally:
        store.close()


def outbox(store_url: str) -> int:
    store = pubsubkit.open_store(store_url)
    try:
        return store.outbox_count()
    finally:
        store.close()


@pytest.mark.skipif(BROKER not in REBUILD_BROKERS, reason=f"rebuild needs a broker with history: {REBUILD_BROKERS}")
@pytest.mark.skipif(
    STORE == "dynamodb" and os.environ.get("MYEVENTS_REBUILD_ALL_STORES") != "1",
    reason="run with the embedded and MongoDB stores (the history is the broker's); the DynamoDB emulator takes one"
    " request at a time, so MYEVENTS_REBUILD_ALL_STORES=1 runs it there too",
)
def test_first_start_and_rebuild_from_the_history(tmp_path: Path, procs: list[Proc]) -> None:
    run = unique_name("rebuild")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "MYEVENTS_BROKER_URL": broker_url(BROKER, run, data),
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        **{k: os.environ.get(k, v) for k, v in AWS.items()},
    }
    into_url = f"sqlite:///{data}/booking-rebuilt.db"
    if STORE != "embedded":
        env["MYEVENTS_STORE_URL"] = store_url(STORE, run, data)
        into_url = store_url(STORE, run + "-rebuilt", data)
    booking_store = config.load("booking", env=env).store_url
    ev_url, bk_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    org = as_organizer()

    def start(name: str, *args: str, extra: dict[str, str] | None = None) -> Proc:
        p = Proc(tmp_path, name, *args, env={**env, **(extra or {})})
        procs.append(p)
        return p

    def booking_service(name: str, extra: dict[str, str] | None = None) -> Proc:
        p = start(name, "booking-service", "--bind", bk_url.removeprefix("http://"), extra=extra)
        wait_ready(bk_url, p)
        return p

    def post(path: str, body: dict[str, Any], headers: dict[str, str] = org) -> dict[str, Any]:
        status, got, _ = call("POST", ev_url + path, body, headers)
        assert status == 201, got
        return dict(got)

    events = start("events", "event-service", "--bind", ev_url.removeprefix("http://"))
    wait_ready(ev_url, events)
    t0 = time.monotonic()
    locations = [
        post("/locations", {"Name": f"Hall {i}", "Halls": [{"name": "floor", "capacity": 10 + i}]})
        for i in range(max(1, EVENTS // 10))
    ]
    capacity = {}

    def new_event(i: int) -> str:
        loc = locations[i % len(locations)]
        made = post("/events", {"Name": f"Show {i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}})
        capacity[made["ID"]] = loc["Halls"][0]["capacity"]
        return str(made["ID"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(new_event, range(EVENTS)))
    created = time.monotonic() - t0

    # 1. The booking service starts for the first time: it reads the whole history into its copy.
    booking = booking_service("booking-1")
    t0 = time.monotonic()

    def copy() -> dict[str, Any]:
        with ThreadPoolExecutor(8) as pool:
            return dict(zip(ids, pool.map(lambda i: call("GET", f"{bk_url}/events/{i}")[1], ids), strict=True))

    def all_known() -> bool:
        return all(got.get("Capacity") == capacity[i] for i, got in copy().items())

    wait_for(all_known, timeout=WAIT, what=f"the booking service to know the {EVENTS} events and their locations")
    first_sync = time.monotonic() - t0
    assert all(got["SeatsLeft"] == capacity[i] for i, got in copy().items())

    # Bookings, some cancelled, and an event cancelled (its bookings released): seats left differ from capacity.
    booked = []
    for n, event_id in enumerate(ids[: min(30, EVENTS)]):
        user = USERS[n % len(USERS)]
        status, b, _ = call("POST", f"{bk_url}/events/{event_id}/bookings", {"seats": 1 + n % 4}, as_user(user))
        assert status == 201, b
        booked.append(b)
    for b in booked[:3]:
        assert call("DELETE", f"{bk_url}/bookings/{b['ID']}", headers=as_user(b["UserID"]))[0] == 200
    assert call("DELETE", f"{ev_url}/events/{ids[4]}", headers=org)[0] == 200
    wait_for(lambda: call("GET", f"{bk_url}/events/{ids[4]}")[1]["Cancelled"], timeout=WAIT, what="the cancel")

    def answers() -> dict[str, Any]:
        return {
            "events": copy(),
            "users": {u: call("GET", f"{bk_url}/users/{u}/bookings", headers=as_user(u))[1] for u in USERS},
            "of_event": {i: call("GET", f"{bk_url}/events/{i}/bookings", headers=org)[1] for i in ids[:30]},
        }

    # The bookings released with the cancelled event are cancelled before the snapshot is taken.
    wait_for(
        lambda: all(b["Cancelled"] for b in call("GET", f"{bk_url}/events/{ids[4]}/bookings", headers=org)[1]),
        timeout=WAIT,
        what="the bookings of the cancelled event to be released",
    )
    before = answers()
    assert before["events"][ids[5]]["SeatsLeft"] == capacity[ids[5]] - 2
    assert sum(not b["Cancelled"] for bs in before["users"].values() for b in bs) == len(booked) - 3 - 1

    # 2. Stopped, its copy wiped, rebuilt in place: the same answers; no booking lost.
    assert booking.stop(timeout=60) == 0, booking.err.read_text()[-2000:]
    assert wipe(booking_store) == EVENTS + len(locations)
    t0 = time.monotonic()
    rebuild = start("rebuild", "rebuild")
    assert rebuild.popen.wait(120) == 0, rebuild.err.read_text()[-3000:]
    rebuilt_in = time.monotonic() - t0
    err = rebuild.err.read_text()
    assert "myevents rebuild: the copy had 0 events and 0 locations; 0 documents" in err
    applied = EVENTS + len(locations) + 1  # created, and one cancelled
    assert f"{applied} applied" in err, err
    assert f"copy: {EVENTS} events, {len(locations)} locations" in err, err

    booking = booking_service("booking-2")
    assert answers() == before
    later = post("/events", {"Name": "Later", "StartDate": 1, "EndDate": 2, "Location": {"ID": locations[0]["ID"]}})
    wait_for(
        lambda: call("GET", f"{bk_url}/events/{later['ID']}")[1].get("SeatsLeft") == 10,
        timeout=WAIT,
        what="the rebuilt service to hear a new event",
    )
    status, extra, _ = call("POST", f"{bk_url}/events/{ids[0]}/bookings", {"seats": 1}, as_user("user0"))
    assert status == 201, extra
    before = answers()

    # ... and into a fresh store, which the service is then started on. Its events still in the outbox of the
    # first store would never be published from the new one: the rebuild refuses until they are.
    wait_for(lambda: outbox(booking_store) == 0, timeout=WAIT, what="the booking service's outbox to be published")
    assert booking.stop(timeout=60) == 0, booking.err.read_text()[-2000:]
    rebuild = start("rebuild-into", "rebuild", "--into", into_url)
    assert rebuild.popen.wait(120) == 0, rebuild.err.read_text()[-3000:]
    assert f"now start the booking service with MYEVENTS_STORE_URL={into_url}" in rebuild.err.read_text()
    booking = booking_service("booking-3", {"MYEVENTS_STORE_URL": into_url})
    assert answers() == before

    for p in (booking, events):
        assert p.stop(timeout=60) == 0, p.err.read_text()[-2000:]
    print(f"{EVENTS} events: created in {created:.1f}s, first copy in {first_sync:.1f}s, rebuilt in {rebuilt_in:.1f}s")
