"""Helpers of the myevents tests: tokens, waiting, watching the bus, creating locations and events."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from falcon import testing

import pubsubkit
from myevents import config, contracts
from myevents.web import auth

#: The token secret of the services the tests start (never one of a real deployment).
TEST_SECRET = "test-secret-of-the-myevents-suite-0123456789"
TEST_AUTH = auth.AuthSettings(TEST_SECRET.encode(), config.DEFAULT_ISSUER)


def token(
    role: auth.Role, subject: str | None = None, ttl: float = 3600, settings: auth.AuthSettings = TEST_AUTH
) -> str:
    """A token the test services accept: an organizer's, or a user's (``subject``)."""
    return auth.issue(settings, role, subject or role, ttl)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_organizer() -> dict[str, str]:
    return bearer(token("organizer"))


def as_user(name: str) -> dict[str, str]:
    return bearer(token("user", name))


def wait_for(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Bus:
    """A consumer group of the test's own on the services' broker: what was published, in order."""

    def __init__(self, broker: pubsubkit.Broker) -> None:
        self.broker = broker
        self.seen: list[tuple[Any, pubsubkit.Envelope]] = []
        self._lock = threading.Lock()
        self.listener = broker.listener("test-probe", poll_interval=0.05)
        for name in (
            contracts.EventCreated,
            contracts.EventUpdated,
            contracts.EventCancelled,
            contracts.LocationCreated,
            contracts.LocationUpdated,
            contracts.LocationCancelled,
            contracts.EventBooked,
            contracts.BookingCancelled,
        ):
            self.listener.add_handler(name, self._record)
        self.listener.start()

    def _record(self, event: Any, msg: pubsubkit.Message) -> None:
        with self._lock:
            self.seen.append((event, msg.envelope))

    def of(self, cls: type[Any]) -> list[tuple[Any, pubsubkit.Envelope]]:
        with self._lock:
            return [(e, env) for e, env in self.seen if isinstance(e, cls)]

    def wait(self, cls: type[Any], count: int = 1) -> list[tuple[Any, pubsubkit.Envelope]]:
        return list(wait_for(lambda: len(self.of(cls)) >= count and self.of(cls), what=f"{count} {cls.__name__}"))

    def emit(self, event: Any, key: str) -> pubsubkit.Envelope:
        return self.broker.emitter().emit(event, key=key)


def new_location(client: testing.TestClient, *capacities: int, **fields: Any) -> dict[str, Any]:
    halls = [{"name": f"hall {i}", "capacity": c} for i, c in enumerate(capacities or (10,))]
    r = client.simulate_post("/locations", json={"Name": "Arena", "Halls": halls, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json)


def new_event(client: testing.TestClient, location_id: str, **fields: Any) -> dict[str, Any]:
    body = {"Name": "Concert", "StartDate": 1_800_000_000, "EndDate": 1_800_007_200, "Location": {"ID": location_id}}
    r = client.simulate_post("/events", json={**body, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json)


def known_to_booking(client: testing.TestClient, event_id: str, **expect: Any) -> dict[str, Any]:
    """Wait until the booking service's copy of the event exists (and has the ``expect`` fields).

    Unless ``Capacity`` is among them, also until its capacity is known: the event may be heard before its
    location, and booking before then is refused.
    """

    def check() -> dict[str, Any] | None:
        r = client.simulate_get(f"/events/{event_id}")
        if r.status_code != 200 or any(r.json.get(k) != v for k, v in expect.items()):
            return None
        if "Capacity" not in expect and r.json.get("Capacity") is None:
            return None
        return dict(r.json)

    result: dict[str, Any] = wait_for(check, what=f"event {event_id} in the booking service {expect}")
    return result


def make_config(service: config.Service, broker: str, store: str) -> config.Config:
    env = {"MYEVENTS_BROKER_URL": broker, "MYEVENTS_STORE_URL": store, "MYEVENTS_JWT_SECRET": TEST_SECRET}
    return config.load(service, env=env)
