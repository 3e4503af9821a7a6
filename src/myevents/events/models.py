"""The event service's documents, as stored. Times are Unix seconds, as the API has them."""

from __future__ import annotations

import attrs

from myevents.contracts import Hall

__all__ = ["EVENTS", "LOCATIONS", "Event", "Hall", "Location"]

# The original's collection names; the booking service's copies have names of their own, so both services may
# share one database.
EVENTS = "events"
LOCATIONS = "locations"


@attrs.frozen
class Location:
    id: str
    name: str
    address: str = ""
    country: str = ""
    open_time: int = 0
    close_time: int = 0
    halls: list[Hall] = attrs.field(factory=list)
    cancelled: bool = False
    active_events: int = 0  # events not cancelled; a location is cancelled only at 0
    version: int = 1

    @property
    def capacity(self) -> int:
        return sum(h.capacity for h in self.halls)


@attrs.frozen
class Event:
    id: str
    name: str
    location_id: str
    start_date: int
    end_date: int
    duration: int = 0
    cancelled: bool = False
    version: int = 1
