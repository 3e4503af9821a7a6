"""The Python services of these tests, in this process, on the broker given and a memory store each."""

from __future__ import annotations

from typing import Any

from falcon import testing
from myevents_support import as_organizer, make_config, new_event, new_location

import pubsubkit
from myevents import booking, events
from myevents.runtime import Service


def start(service: str, broker_url: str) -> Service:
    """The ``events`` or ``booking`` service, started."""
    store = f"memory://{service}-{pubsubkit.new_id()}"
    if service == "events":
        return events.create_service(make_config("events", broker_url, store)).start()
    return booking.create_service(make_config("booking", broker_url, store)).start()


def create_event(svc: Service, capacity: int = 50) -> dict[str, Any]:
    """A location and an event at it, created through the event service's API as an organizer."""
    client = testing.TestClient(svc.app, headers=as_organizer())
    return new_event(client, new_location(client, capacity)["ID"])
