"""myevents beside the original Go services on RabbitMQ (``tox -e rabbitmq``).

The original booking service is :class:`go_style.GoBookingService`; the Python services run in this process on
the real broker, each test on an exchange of its own (the original takes the exchange as a parameter).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pika
import pytest
from falcon import testing
from go_style import GoBookingService, go_emit, go_event_created
from myevents_support import as_organizer, as_user, known_to_booking, new_event, new_location
from services import create_event, start

import pubsubkit
from pubsubkit.testing import require_server, wait_until

pytestmark = pytest.mark.go_original


@pytest.fixture(scope="module")
def amqp_url() -> str:
    return require_server("rabbitmq", os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"), 5672)


@pytest.fixture
def exchange(amqp_url: str) -> Iterator[str]:
    """An exchange of this test; its queues are deleted afterwards."""
    name = f"go-{pubsubkit.new_id()[-10:]}"
    yield name
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    for queue in (f"{name}.booking", f"{name}.booking.dlq", f"{name}-booking"):
        ch.queue_delete(queue)
    for ex in (name, f"{name}.dlx"):
        ch.exchange_delete(ex)
    conn.close()


def url_of(amqp_url: str, exchange: str, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"exchange": exchange, **options}.items())
    return f"{amqp_url}{'&' if '?' in amqp_url else '?'}{query}"


def test_the_original_booking_service_books_an_event_of_the_python_event_service(amqp_url: str, exchange: str) -> None:
    """Default settings on both sides: the original hears eventCreated, keeps the id, and answers 201."""
    go = GoBookingService(amqp_url, exchange, f"{exchange}-booking")
    svc = start("events", url_of(amqp_url, exchange))
    try:
        event = create_event(svc)
        wait_until(lambda: event["ID"] in go.handled or go.ignored, what="the original heard eventCreated")
        assert go.ignored == [], "the original refused the event id"
        assert go.book(event["ID"], b'{"seats": 2}')[0] == 201
        assert go.book(event["ID"], b'{"seats": 0}')[0] == 400
        assert go.book("0" * 24, b'{"seats": 2}')[0] == 404
    finally:
        svc.close()
        go.close()
    assert go.rejected == []


def test_a_python_booking_instance_shares_the_originals_queue(amqp_url: str, exchange: str) -> None:
    """share.booking=<queue>:eventCreated (docs/myevents.md): each eventCreated is handled once, by the original
    or by the Python instance, and what only the Python instance handles stays on its own queue."""
    go_queue = f"{exchange}-booking"
    go = GoBookingService(amqp_url, exchange, go_queue)
    producer = start("events", url_of(amqp_url, exchange))
    consumer = start("booking", url_of(amqp_url, exchange, **{"share.booking": f"{go_queue}:eventCreated"}))
    try:
        client = testing.TestClient(producer.app, headers=as_organizer())
        locations = [new_location(client, 40) for _ in range(5)]
        ids = [new_event(client, locations[i % 5]["ID"])["ID"] for i in range(30)]
        python = testing.TestClient(consumer.app, headers=as_user("alice"))

        def known_to_python() -> list[str]:
            return [i for i in ids if python.simulate_get(f"/events/{i}").status_code == 200]

        wait_until(lambda: len(go.handled) + len(known_to_python()) >= len(ids), what="every event heard once")
        by_python = known_to_python()
        assert sorted(go.handled + by_python) == sorted(ids), "an event was lost or heard by both"
        assert by_python, "the Python instance heard no eventCreated"
        assert go.handled, "the original heard no eventCreated"
        for event_id in by_python:  # its locations reached the Python instance only: capacity is known
            r = python.simulate_post(f"/events/{event_id}/bookings", json={"seats": 1})
            assert r.status_code == 201, r.text
        for event_id in go.handled:
            assert go.book(event_id, b'{"seats": 1}')[0] == 201
    finally:
        consumer.close()
        producer.close()
        go.close()
    assert go.rejected == [], "a name the original cannot map reached the shared queue"


def test_the_python_booking_service_books_an_event_of_the_original_event_service(amqp_url: str, exchange: str) -> None:
    """The original's eventCreated (its location id raw ObjectId bytes, no location ever sent) is booked (201),
    without a capacity limit."""
    svc = start("booking", url_of(amqp_url, exchange))
    try:
        event_id = bytes.fromhex("6569a0b01d2e3f4a5b6c7d8e")
        location = bytes.fromhex("14e60b09f515657dc810c43a")
        body = go_event_created(event_id, "Go concert", location, 1_800_000_000, 1_800_007_200)
        go_emit(amqp_url, exchange, "eventCreated", body)
        client = testing.TestClient(svc.app, headers=as_user("alice"))
        copy = known_to_booking(client, event_id.hex(), Capacity=None, SeatsLeft=None)
        assert (copy["Name"], copy["StartDate"], copy["EndDate"]) == ("Go concert", 1_800_000_000, 1_800_007_200)
        r = client.simulate_post(f"/events/{event_id.hex()}/bookings", json={"seats": 3})
        assert r.status_code == 201, r.text
    finally:
        svc.close()
