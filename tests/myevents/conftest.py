"""Both services in this process on ``memory://`` backends (one fresh broker and two stores per test), and
the ``myevents`` processes of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from falcon import testing
from myevents_procs import Proc
from myevents_support import Bus, make_config

import pubsubkit
from myevents import booking, events
from myevents.runtime import Service


@pytest.fixture
def urls() -> dict[str, str]:
    name = pubsubkit.new_id()
    return {"bus": f"memory://bus-{name}", "events": f"memory://events-{name}", "booking": f"memory://booking-{name}"}


@pytest.fixture
def events_service(urls: dict[str, str]) -> Iterator[Service]:
    svc = events.create_service(make_config("events", urls["bus"], urls["events"])).start()
    yield svc
    svc.close()


@pytest.fixture
def booking_service(urls: dict[str, str]) -> Iterator[Service]:
    svc = booking.create_service(make_config("booking", urls["bus"], urls["booking"])).start()
    yield svc
    svc.close()


@pytest.fixture
def events_client(events_service: Service) -> testing.TestClient:
    return testing.TestClient(events_service.app)


@pytest.fixture
def booking_client(booking_service: Service) -> testing.TestClient:
    return testing.TestClient(booking_service.app)


@pytest.fixture
def bus(events_service: Service) -> Iterator[Bus]:
    probe = Bus(events_service.backends.broker)
    yield probe
    probe.listener.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """``myevents`` processes a test started; any still running at the end are killed."""
    started: list[Proc] = []
    yield started
    for p in started:
        if p.popen.poll() is None:
            p.popen.kill()
            p.popen.wait()
