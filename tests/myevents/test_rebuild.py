"""``myevents rebuild`` on ``memory://``: the booking service's copy read again from the bus, bookings kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from falcon import testing
from myevents_support import as_organizer, as_user, known_to_booking, make_config, new_event, new_location, wait_for

import pubsubkit
from myevents import booking, cli, contracts
from myevents.booking.models import BOOKINGS, EVENT_COPIES, LOCATION_COPIES
from myevents.booking.rebuild import rebuild
from myevents.runtime import Service
from pubsubkit.backends.memory import MemoryTransport
from pubsubkit.store import Delete, Put

USERS = ("alice", "bob", "carol")


def book(client: testing.TestClient, event_id: str, seats: int, user: str) -> dict[str, Any]:
    r = client.simulate_post(f"/events/{event_id}/bookings", json={"seats": seats}, headers=as_user(user))
    assert r.status_code == 201, r.text
    return dict(r.json)


def documents(store: pubsubkit.Store, name: str) -> list[dict[str, Any]]:
    return store.find_raw(name, {}, 1_000_000, None)


def answers(client: testing.TestClient, event_ids: list[str]) -> dict[str, Any]:
    """What the booking service answers: its copy of each event, and each user's bookings."""
    org = as_organizer()
    return {
        "events": {i: client.simulate_get(f"/events/{i}").json for i in event_ids},
        "of_event": {i: client.simulate_get(f"/events/{i}/bookings", headers=org).json for i in event_ids},
        "users": {u: client.simulate_get(f"/users/{u}/bookings", headers=as_user(u)).json for u in USERS},
    }


def wipe(store: pubsubkit.Store) -> None:
    for name in (EVENT_COPIES, LOCATION_COPIES):
        store.commit([Delete(name, d["id"]) for d in documents(store, name)])


@pytest.fixture
def history(
    events_service: Service, booking_service: Service, urls: dict[str, str]
) -> tuple[list[str], dict[str, Any]]:
    """A history with every kind of event: updates, a location shrunk below what is booked, a cancelled event
    whose bookings were released, an event heard before its location; bookings, some cancelled. The booking
    service is stopped at the end (as the rebuild needs); returns the events' ids and its answers."""
    org = testing.TestClient(events_service.app, headers=as_organizer())
    bk = testing.TestClient(booking_service.app)
    arena, club = new_location(org, 20, 10), new_location(org, 8)
    ids = [new_event(org, arena["ID"], Name=f"Gig {i}")["ID"] for i in range(5)]
    ids += [new_event(org, club["ID"], Name="Small")["ID"]]
    for i in ids:
        known_to_booking(bk, i)
    for n, i in enumerate(ids):
        for k, user in enumerate(USERS[: 1 + n % 3]):
            book(bk, i, 1 + k, user)
    cancelled = book(bk, ids[0], 4, "bob")
    assert bk.simulate_delete(f"/bookings/{cancelled['ID']}", headers=as_user("bob")).status_code == 200
    org.simulate_patch(f"/events/{ids[1]}", json={"Name": "Gig renamed"})
    known_to_booking(bk, ids[1], Name="Gig renamed")
    org.simulate_patch(f"/locations/{club['ID']}", json={"Halls": [{"name": "a", "capacity": 2}]})
    known_to_booking(bk, ids[5], Capacity=2)  # 6 seats booked there: 2 - 6 left, shown as 0
    org.simulate_delete(f"/events/{ids[2]}")
    known_to_booking(bk, ids[2], Cancelled=True)
    bus = pubsubkit.open_broker(urls["bus"]).emitter()
    # An event heard before its location, and one whose location can never be heard (the original Go event
    # service's): booked without a limit.
    t0 = datetime(2027, 1, 1, tzinfo=UTC)
    bus.emit(contracts.EventCreated("early", "Early", "late", t0, t0), key="early")
    known_to_booking(bk, "early", Capacity=None)
    bus.emit(contracts.LocationCreated("late", "Late", "", "", [contracts.Hall("h", "", 3)]), key="late")
    bus.emit(contracts.EventCreated("from-go", "From Go", "\x14\ufffd", t0, t0), key="from-go")
    ids += ["early", "from-go"]
    known_to_booking(bk, "early", Capacity=3)
    known_to_booking(bk, "from-go", Capacity=None, SeatsLeft=None)
    book(bk, "early", 2, "carol")
    book(bk, "from-go", 500, "alice")
    seen = answers(bk, ids)
    assert seen["events"][ids[5]]["SeatsLeft"] == 0
    booking_service.close()
    return ids, seen


def test_rebuild_gives_the_same_answers_and_keeps_every_booking(
    history: tuple[list[str], dict[str, Any]], urls: dict[str, str], events_service: Service
) -> None:
    ids, seen = history
    org = testing.TestClient(events_service.app, headers=as_organizer())
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    copy = documents(store, EVENT_COPIES), documents(store, LOCATION_COPIES)
    bookings = documents(store, BOOKINGS)
    wipe(store)
    assert documents(store, EVENT_COPIES) == []
    lines: list[str] = []
    result = rebuild(broker, store, idle=0.3, wait=5, progress=lines.append)
    assert (documents(store, EVENT_COPIES), documents(store, LOCATION_COPIES)) == copy
    assert documents(store, BOOKINGS) == bookings
    assert result.complete
    assert result.after == (8, 3)
    assert (result.applied, result.failed, result.orphans) == (
        3 + 8 + 3,
        0,
        0,
    )  # locations and events created, an update of each, a cancel
    # 15 eventBooked, 4 bookingCancelled (one by its user, three of the cancelled event): no handler, skipped.
    assert (result.read, result.skipped) == (33, 19)
    assert result.bookings == len(bookings)
    assert "the copy had 0 events and 0 locations; 0 documents" in lines[0]
    assert lines[-1].startswith("done in ")
    assert result.group not in broker.transport.hub.groups  # type: ignore[attr-defined]
    assert "booking" in broker.transport.hub.groups  # type: ignore[attr-defined]

    # The service started again answers as before, and goes on hearing what is published after.
    svc = booking.create_service(make_config("booking", urls["bus"], urls["booking"])).start()
    try:
        bk = testing.TestClient(svc.app)
        assert answers(bk, ids) == seen
        new = new_event(org, seen["events"][ids[0]]["LocationID"])
        known_to_booking(bk, new["ID"], Capacity=30, SeatsLeft=30)
        book(bk, ids[0], 1, "alice")
        assert bk.simulate_get(f"/events/{ids[0]}").json["SeatsLeft"] == seen["events"][ids[0]]["SeatsLeft"] - 1
    finally:
        svc.close()
        broker.close()


def test_what_the_stopped_service_has_not_heard_yet_is_applied_once_in_effect(
    history: tuple[list[str], dict[str, Any]], urls: dict[str, str], events_service: Service
) -> None:
    """Changes published while the service is stopped are in the rebuilt copy, and the service, resuming its
    group where it was, applies them again in order: the same result."""
    ids, seen = history
    org = testing.TestClient(events_service.app, headers=as_organizer())
    for name in ("First", "Second"):
        assert org.simulate_patch(f"/events/{ids[3]}", json={"Name": name}).status_code == 200
    location = seen["events"][ids[0]]["LocationID"]
    org.simulate_patch(f"/locations/{location}", json={"Halls": [{"name": "a", "capacity": 25}]})
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    wipe(store)
    wait_for(lambda: events_service.backends.store.outbox_count() == 0, what="the event service to publish")
    rebuild(broker, store, idle=0.3, wait=5)
    assert store.get_raw(EVENT_COPIES, ids[3])["name"] == "Second"  # type: ignore[index]
    svc = booking.create_service(make_config("booking", urls["bus"], urls["booking"])).start()
    try:
        bk = testing.TestClient(svc.app)
        taken = seen["events"][ids[0]]["Capacity"] - seen["events"][ids[0]]["SeatsLeft"]
        known_to_booking(bk, ids[0], Capacity=25, SeatsLeft=25 - taken)
        assert known_to_booking(bk, ids[3], Capacity=25)["Name"] == "Second"
        assert answers(bk, ids)["users"] == seen["users"]
    finally:
        svc.close()
        broker.close()


def test_a_copy_gone_wrong_is_set_right(history: tuple[list[str], dict[str, Any]], urls: dict[str, str]) -> None:
    """Not wiped first: wrong seats, a stray event, a missing location; the rebuild sets every one right."""
    ids, _ = history
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    copy, locations = documents(store, EVENT_COPIES), documents(store, LOCATION_COPIES)
    [doc] = [d for d in copy if d["id"] == ids[3]]
    store.commit(
        [
            Put(EVENT_COPIES, {**copy[0], "id": "stray"}),
            Put(EVENT_COPIES, {**doc, "seats_left": 99, "booked": 0}),
            Delete(LOCATION_COPIES, locations[0]["id"]),
        ]
    )
    result = rebuild(broker, store, idle=0.3, wait=5)
    assert (documents(store, EVENT_COPIES), documents(store, LOCATION_COPIES)) == (copy, locations)
    assert (result.before, result.after) == ((9, 2), (8, 3))
    assert result.complete is False  # one event fewer than before: reported
    broker.close()


def test_rebuild_into_another_store_leaves_the_service_store_alone(
    history: tuple[list[str], dict[str, Any]], urls: dict[str, str]
) -> None:
    ids, seen = history
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    before = {n: documents(store, n) for n in (EVENT_COPIES, LOCATION_COPIES, BOOKINGS)}
    fresh_url = f"memory://fresh-{pubsubkit.new_id()}"
    fresh = pubsubkit.open_store(fresh_url)
    result = rebuild(broker, fresh, source=store, idle=0.3, wait=5)
    assert {n: documents(store, n) for n in before} == before
    assert {n: documents(fresh, n) for n in before} == before
    assert result.before == result.after == (8, 3)
    svc = booking.create_service(make_config("booking", urls["bus"], fresh_url)).start()
    try:
        assert answers(testing.TestClient(svc.app), ids) == seen
    finally:
        svc.close()
        broker.close()


def test_a_broker_without_history_is_refused_with_the_fix(
    urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MemoryTransport, "capabilities", attrs.evolve(MemoryTransport.capabilities, replay=False))
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    with pytest.raises(pubsubkit.ConfigError, match=r"keeps no history .*needs a broker that keeps a log"):
        rebuild(broker, store)
    broker.close()


def test_an_empty_history_gives_an_empty_copy(urls: dict[str, str]) -> None:
    broker, store = pubsubkit.open_broker(urls["bus"]), pubsubkit.open_store(urls["booking"])
    result = rebuild(broker, store, idle=0.1, wait=0.3)
    assert (result.read, result.after, result.complete) == (0, (0, 0), True)
    broker.close()


def test_the_command(
    history: tuple[list[str], dict[str, Any]],
    urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MYEVENTS_BROKER_URL", urls["bus"])
    monkeypatch.setenv("MYEVENTS_STORE_URL", urls["booking"])
    store = pubsubkit.open_store(urls["booking"])
    copy = documents(store, EVENT_COPIES)
    wipe(store)
    assert cli.main(["rebuild", "--idle", "0.3", "--wait", "5"]) == 0
    err = capsys.readouterr().err
    assert "myevents rebuild: the copy had 0 events and 0 locations; 0 documents" in err
    assert "14 applied" in err
    assert documents(store, EVENT_COPIES) == copy

    # One event more in the copy than the history gives (as when the broker dropped old messages): exit 1.
    store.commit([Put(EVENT_COPIES, {**copy[0], "id": "gone-from-the-bus"})])
    assert cli.main(["rebuild", "--idle", "0.3", "--wait", "5"]) == 1
    assert "the copy had 9 events and 3 locations before, 8 and 3 now" in capsys.readouterr().err

    assert cli.main(["rebuild", "--into", urls["booking"]]) == 2
    assert "--into names the booking service's own store" in capsys.readouterr().err
    monkeypatch.setattr(MemoryTransport, "capabilities", attrs.evolve(MemoryTransport.capabilities, replay=False))
    assert cli.main(["rebuild"]) == 2
    assert "keeps no history" in capsys.readouterr().err
    monkeypatch.setenv("MYEVENTS_BROKER_URL", "nosuch://x")
    assert cli.main(["rebuild"]) == 2
    assert "nosuch" in capsys.readouterr().err
