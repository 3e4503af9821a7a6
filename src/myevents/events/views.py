"""Documents as the API shows them: the original's JSON field names."""

from __future__ import annotations

from typing import Any

from myevents.events.models import Event, Location

__all__ = ["event_json", "location_json"]


def location_json(loc: Location) -> dict[str, Any]:
    return {
        "ID": loc.id,
        "Name": loc.name,
        "Address": loc.address,
        "Country": loc.country,
        "OpenTime": loc.open_time,
        "CloseTime": loc.close_time,
        "Halls": [{"name": h.name, "location": h.location, "capacity": h.capacity} for h in loc.halls],
        "Cancelled": loc.cancelled,
    }


def event_json(ev: Event, loc: Location | None) -> dict[str, Any]:
    """An event with its location embedded, as the original returned it (``{"ID": ...}`` if it vanished)."""
    return {
        "ID": ev.id,
        "Name": ev.name,
        "Duration": ev.duration,
        "StartDate": ev.start_date,
        "EndDate": ev.end_date,
        "Location": location_json(loc) if loc is not None else {"ID": ev.location_id},
        "Cancelled": ev.cancelled,
    }
