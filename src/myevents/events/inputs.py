"""What a client may send to the event service, field by field (names as the original's JSON)."""

from __future__ import annotations

from typing import Final

import attrs

from myevents.ids import ID_CHARACTERS, MAX_ID_LENGTH
from myevents.web.decoding import Ignored, Int, Obj, ReadOnly, Seq, Text, spec

__all__ = ["EventIn", "EventPatch", "HallIn", "LocationIn", "LocationPatch"]

ID: Final = Text(max_length=MAX_ID_LENGTH, pattern=ID_CHARACTERS, pattern_hint="letters, digits, _ and -")
UNIX_TIME: Final = Int(0, 253_402_300_799)  # up to 9999-12-31
MINUTES: Final = Int(0, 10 * 366 * 24 * 60)
HOUR: Final = Int(0, 24)
OPTIONAL_TEXT: Final = Text(allow_empty=True)
HALLS: Final[int] = 100

CANCELLED: Final = ReadOnly("is read-only: cancel with DELETE")
SAME_ID: Final = ReadOnly("is read-only: the ID is in the path")


@attrs.frozen
class HallIn:
    name: str = attrs.field(metadata=spec("name", Text()))
    capacity: int = attrs.field(metadata=spec("capacity", Int(1, 1_000_000)))
    location: str = attrs.field(default="", metadata=spec("location", OPTIONAL_TEXT))


_HALLS = Seq(Obj(HallIn), max_items=HALLS)


@attrs.frozen
class LocationIn:
    name: str = attrs.field(metadata=spec("Name", Text()))
    id: str | None = attrs.field(default=None, metadata=spec("ID", ID))
    address: str = attrs.field(default="", metadata=spec("Address", Text(max_length=500, allow_empty=True)))
    country: str = attrs.field(default="", metadata=spec("Country", OPTIONAL_TEXT))
    open_time: int = attrs.field(default=0, metadata=spec("OpenTime", HOUR))
    close_time: int = attrs.field(default=0, metadata=spec("CloseTime", HOUR))
    halls: list[HallIn] = attrs.field(factory=list, metadata=spec("Halls", _HALLS))
    cancelled: None = attrs.field(default=None, metadata=spec("Cancelled", CANCELLED))


@attrs.frozen
class LocationPatch:
    """Fields given replace the stored ones; ``Halls`` replaces the whole list."""

    name: str | None = attrs.field(default=None, metadata=spec("Name", Text()))
    address: str | None = attrs.field(default=None, metadata=spec("Address", Text(max_length=500, allow_empty=True)))
    country: str | None = attrs.field(default=None, metadata=spec("Country", OPTIONAL_TEXT))
    open_time: int | None = attrs.field(default=None, metadata=spec("OpenTime", HOUR))
    close_time: int | None = attrs.field(default=None, metadata=spec("CloseTime", HOUR))
    halls: list[HallIn] | None = attrs.field(default=None, metadata=spec("Halls", _HALLS))
    id: None = attrs.field(default=None, metadata=spec("ID", SAME_ID))
    cancelled: None = attrs.field(default=None, metadata=spec("Cancelled", CANCELLED))


@attrs.frozen
class LocationRef:
    """The ``Location`` of an event in a request: its ``ID`` counts, the rest of a Location is tolerated."""

    id: str = attrs.field(metadata=spec("ID", ID))
    name: object = attrs.field(default=None, metadata=spec("Name", Ignored()))
    address: object = attrs.field(default=None, metadata=spec("Address", Ignored()))
    country: object = attrs.field(default=None, metadata=spec("Country", Ignored()))
    open_time: object = attrs.field(default=None, metadata=spec("OpenTime", Ignored()))
    close_time: object = attrs.field(default=None, metadata=spec("CloseTime", Ignored()))
    halls: object = attrs.field(default=None, metadata=spec("Halls", Ignored()))
    cancelled: object = attrs.field(default=None, metadata=spec("Cancelled", Ignored()))


@attrs.frozen
class EventIn:
    name: str = attrs.field(metadata=spec("Name", Text()))
    start_date: int = attrs.field(metadata=spec("StartDate", UNIX_TIME))
    end_date: int = attrs.field(metadata=spec("EndDate", UNIX_TIME))
    location: LocationRef = attrs.field(metadata=spec("Location", Obj(LocationRef)))
    id: str | None = attrs.field(default=None, metadata=spec("ID", ID))
    duration: int = attrs.field(default=0, metadata=spec("Duration", MINUTES))
    cancelled: None = attrs.field(default=None, metadata=spec("Cancelled", CANCELLED))


@attrs.frozen
class EventPatch:
    name: str | None = attrs.field(default=None, metadata=spec("Name", Text()))
    start_date: int | None = attrs.field(default=None, metadata=spec("StartDate", UNIX_TIME))
    end_date: int | None = attrs.field(default=None, metadata=spec("EndDate", UNIX_TIME))
    duration: int | None = attrs.field(default=None, metadata=spec("Duration", MINUTES))
    id: None = attrs.field(default=None, metadata=spec("ID", SAME_ID))
    location: None = attrs.field(
        default=None, metadata=spec("Location", ReadOnly("cannot change: cancel the event and create a new one"))
    )
    cancelled: None = attrs.field(default=None, metadata=spec("Cancelled", CANCELLED))
