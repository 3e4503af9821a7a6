"""myevents' booking service on a MongoDB store, configured by its store URL alone."""

from __future__ import annotations

import collections
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from falcon import testing
from mongo_support import Databases
from pubsubkit_mongo import MongoStore

from myevents import booking, config, contracts
from myevents.web import auth
from pubsubkit.testing import unique_name

T0 = datetime(2027, 1, 1, tzinfo=UTC)
CAPACITY = 25
SECRET = "test-secret-of-the-mongo-myevents-tests-0123"
AUTH = auth.AuthSettings(SECRET.encode(), config.DEFAULT_ISSUER)


def bearer(role: auth.Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(AUTH, role, subject, 600)}"}


def wait_for_event(client: testing.TestClient, event_id: str, **expect: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        r = client.simulate_get(f"/events/{event_id}")
        if r.status_code == 200 and all(r.json.get(k) == v for k, v in expect.items()):
            return dict(r.json)
        assert time.monotonic() < deadline, f"event {event_id} never reached {expect} in the booking service"
        time.sleep(0.02)


def test_concurrent_bookings_sell_exactly_the_capacity(databases: Databases) -> None:
    env = {
        "MYEVENTS_BROKER_URL": f"memory://{unique_name('bus')}",
        "MYEVENTS_STORE_URL": databases.url("booking"),
        "MYEVENTS_JWT_SECRET": SECRET,
    }
    service = booking.create_service(config.load("booking", env=env)).start()
    try:
        assert isinstance(service.backends.store, MongoStore)
        emitter = service.backends.broker.emitter()
        halls = [contracts.Hall("a", "", CAPACITY - 5), contracts.Hall("b", "", 5)]
        emitter.emit(contracts.LocationCreated("loc-1", "Hall", "", "", halls), key="loc-1")
        emitter.emit(contracts.EventCreated("e1", "Show", "loc-1", T0, T0), key="e1")
        client = testing.TestClient(service.app, headers=bearer("organizer", "organizer"))
        wait_for_event(client, "e1", SeatsLeft=CAPACITY)

        def attempt(i: int) -> int:
            r = client.simulate_post("/events/e1/bookings", json={"seats": 1}, headers=bearer("user", f"user{i}"))
            return r.status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = collections.Counter(pool.map(attempt, range(40)))
        assert statuses == {201: CAPACITY, 409: 40 - CAPACITY}
        assert wait_for_event(client, "e1")["SeatsLeft"] == 0
        assert len(client.simulate_get("/events/e1/bookings").json) == CAPACITY
        store = service.backends.store
        deadline = time.monotonic() + 10
        while store.outbox_count() and time.monotonic() < deadline:  # the service's relay publishes them
            time.sleep(0.02)
        assert store.outbox_count() == 0
    finally:
        service.close()
