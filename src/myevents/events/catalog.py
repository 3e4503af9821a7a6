"""The event service's behaviour: every change is one unit of work holding the documents and the event."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import attrs

import pubsubkit
from myevents import contracts
from myevents.errors import Conflict, Invalid, NotFound
from myevents.events.inputs import EventIn, EventPatch, HallIn, LocationIn, LocationPatch
from myevents.events.models import EVENTS, LOCATIONS, Event, Hall, Location
from myevents.ids import object_id

__all__ = ["Catalog"]

Headers = Mapping[str, str]

# A patch re-reads and retries when another one changed the document in between (compare-and-set on version).
_PATCH_ATTEMPTS = 5


def _time(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def _halls(halls: list[HallIn]) -> list[Hall]:
    return [Hall(h.name, h.location, h.capacity) for h in halls]


def _location_created(loc: Location) -> contracts.LocationCreated:
    return contracts.LocationCreated(
        loc.id, loc.name, loc.address, loc.country, loc.halls, open_time=loc.open_time, close_time=loc.close_time
    )


def _location_updated(loc: Location) -> contracts.LocationUpdated:
    return contracts.LocationUpdated(
        loc.id, loc.name, loc.address, loc.country, loc.halls, open_time=loc.open_time, close_time=loc.close_time
    )


def _event_created(ev: Event) -> contracts.EventCreated:
    start, end = _time(ev.start_date), _time(ev.end_date)
    return contracts.EventCreated(ev.id, ev.name, ev.location_id, start, end, duration=ev.duration)


def _event_updated(ev: Event) -> contracts.EventUpdated:
    start, end = _time(ev.start_date), _time(ev.end_date)
    return contracts.EventUpdated(ev.id, ev.name, ev.location_id, start, end, duration=ev.duration)


def _check_dates(start: int, end: int) -> None:
    if end < start:
        raise Invalid([{"field": "EndDate", "reason": "must not be before StartDate"}])


class Catalog:
    """Events and locations in ``store``; the events they cause go out through the store's outbox."""

    def __init__(self, store: pubsubkit.Store) -> None:
        self.store = store
        self.events = store.collection(EVENTS, Event, indexes=["name"])
        self.locations = store.collection(LOCATIONS, Location)

    # --- reading --------------------------------------------------------------------------------------------

    def location(self, id: str) -> Location:
        loc = self.locations.find_one(id)
        if loc is None:
            raise NotFound(f"no location with ID {id!r}")
        return loc

    def all_locations(self) -> Iterator[Location]:
        return self.locations.iter()

    def event(self, id: str) -> Event:
        ev = self.events.find_one(id)
        if ev is None:
            raise NotFound(f"no event with ID {id!r}")
        return ev

    def event_named(self, name: str) -> Event:
        """The oldest event called exactly ``name``."""
        page = self.events.page(limit=1, name=name)
        if not page.items:
            raise NotFound(f"no event named {name!r}")
        return page.items[0]

    def all_events(self) -> Iterator[Event]:
        return self.events.iter()

    # --- locations ------------------------------------------------------------------------------------------

    def create_location(self, data: LocationIn, headers: Headers) -> Location:
        loc = Location(
            id=data.id or object_id(),
            name=data.name,
            address=data.address,
            country=data.country,
            open_time=data.open_time,
            close_time=data.close_time,
            halls=_halls(data.halls),
        )
        try:
            with self.store.unit_of_work() as uow:
                uow.insert(self.locations, loc)
                uow.emit(_location_created(loc), key=loc.id, headers=headers)
        except pubsubkit.DuplicateError:
            raise Conflict(f"a location with ID {loc.id!r} exists already") from None
        return loc

    def update_location(self, id: str, patch: LocationPatch, headers: Headers) -> Location:
        changes: dict[str, object] = {
            k: v
            for k, v in attrs.asdict(patch, recurse=False).items()
            if v is not None and k in ("name", "address", "country", "open_time", "close_time")
        }
        if patch.halls is not None:
            changes["halls"] = _halls(patch.halls)
        for _ in range(_PATCH_ATTEMPTS):
            cur = self.location(id)
            if cur.cancelled:
                raise Conflict(f"location {id!r} is cancelled", kind="cancelled")
            new = attrs.evolve(cur, **changes, version=cur.version + 1)  # type: ignore[arg-type]
            try:
                with self.store.unit_of_work() as uow:
                    uow.update(
                        self.locations, id, set={**changes, "version": new.version}, expect={"version": cur.version}
                    )
                    uow.emit(_location_updated(new), key=id, headers=headers)
            except pubsubkit.ConditionFailed:
                continue
            return new
        raise Conflict(f"location {id!r} is being changed by others; try again")

    def cancel_location(self, id: str, headers: Headers) -> Location:
        cur = self.location(id)
        try:
            with self.store.unit_of_work() as uow:
                uow.update(
                    self.locations,
                    id,
                    set={"cancelled": True},
                    inc={"version": 1},
                    expect={"cancelled": False, "active_events": 0},
                )
                uow.emit(contracts.LocationCancelled(id), key=id, headers=headers)
        except pubsubkit.ConditionFailed:
            now = self.location(id)
            if now.cancelled:
                raise Conflict(f"location {id!r} is cancelled already", kind="cancelled") from None
            raise Conflict(
                f"location {id!r} has {now.active_events} events not cancelled; cancel them first", kind="in-use"
            ) from None
        return attrs.evolve(cur, cancelled=True, version=cur.version + 1)

    # --- events ---------------------------------------------------------------------------------------------

    def create_event(self, data: EventIn, headers: Headers) -> tuple[Event, Location]:
        _check_dates(data.start_date, data.end_date)
        ev = Event(
            id=data.id or object_id(),
            name=data.name,
            location_id=data.location.id,
            start_date=data.start_date,
            end_date=data.end_date,
            duration=data.duration,
        )
        unusable = Invalid([{"field": "Location.ID", "reason": "no location with this ID is open"}])
        loc = self.locations.find_one(ev.location_id)
        if loc is None or loc.cancelled:
            raise unusable
        try:
            with self.store.unit_of_work() as uow:
                uow.insert(self.events, ev)
                # Counting the location's events in the same commit is what makes cancelling it race-free.
                uow.update(self.locations, loc.id, inc={"active_events": 1}, expect={"cancelled": False})
                uow.emit(_event_created(ev), key=ev.id, headers=headers)
        except pubsubkit.DuplicateError:
            raise Conflict(f"an event with ID {ev.id!r} exists already") from None
        except (pubsubkit.ConditionFailed, pubsubkit.NotFound):
            raise unusable from None
        return ev, loc

    def update_event(self, id: str, patch: EventPatch, headers: Headers) -> Event:
        changes = {
            k: v
            for k, v in attrs.asdict(patch).items()
            if v is not None and k in ("name", "start_date", "end_date", "duration")
        }
        for _ in range(_PATCH_ATTEMPTS):
            cur = self.event(id)
            if cur.cancelled:
                raise Conflict(f"event {id!r} is cancelled", kind="cancelled")
            new = attrs.evolve(cur, **changes, version=cur.version + 1)
            _check_dates(new.start_date, new.end_date)
            try:
                with self.store.unit_of_work() as uow:
                    uow.update(
                        self.events, id, set={**changes, "version": new.version}, expect={"version": cur.version}
                    )
                    uow.emit(_event_updated(new), key=id, headers=headers)
            except pubsubkit.ConditionFailed:
                continue
            return new
        raise Conflict(f"event {id!r} is being changed by others; try again")

    def cancel_event(self, id: str, headers: Headers) -> Event:
        cur = self.event(id)
        try:
            with self.store.unit_of_work() as uow:
                uow.update(self.events, id, set={"cancelled": True}, inc={"version": 1}, expect={"cancelled": False})
                uow.update(self.locations, cur.location_id, inc={"active_events": -1})
                uow.emit(contracts.EventCancelled(id), key=id, headers=headers)
        except pubsubkit.ConditionFailed:
            raise Conflict(f"event {id!r} is cancelled already", kind="cancelled") from None
        return attrs.evolve(cur, cancelled=True, version=cur.version + 1)
