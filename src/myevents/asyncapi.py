"""The AsyncAPI 3.0 documents of the two services: what each emits and what its consumer group hears.

Each service serves its own at ``GET /asyncapi.json``, next to ``/openapi.json``, built from the listener it
really runs (:func:`pubsubkit.asyncapi.document`). ``pubsubkit asyncapi myevents.events.app:asyncapi`` (and
``myevents.booking.app:asyncapi``) prints one, with channels named as on the embedded broker; the event
catalogue of the docs (docs/events.md, ``scripts/event_catalogue.py``) is made from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pubsubkit
from myevents import contracts

__all__ = ["BOOKING_EMITS", "EVENT_SERVICE_EMITS", "document"]

#: What the event service emits (it listens to nothing).
EVENT_SERVICE_EMITS = (
    contracts.EventCreated,
    contracts.EventUpdated,
    contracts.EventCancelled,
    contracts.LocationCreated,
    contracts.LocationUpdated,
    contracts.LocationCancelled,
)
#: What the booking service emits; it hears what its projector subscribes to.
BOOKING_EMITS = (contracts.EventBooked, contracts.BookingCancelled)

_TITLES = {
    "events": ("myevents event service", "Events and locations, and every change to them."),
    "booking": ("myevents booking service", "Bookings by users, against its own copy of events and locations."),
}


def document(service: str, broker: pubsubkit.Broker, listeners: Iterable[pubsubkit.Listener] = ()) -> dict[str, Any]:
    """The document of ``service`` (``events`` or ``booking``) on ``broker``, with the listeners it runs."""
    title, description = _TITLES[service]
    emits = EVENT_SERVICE_EMITS if service == "events" else BOOKING_EMITS
    from pubsubkit.asyncapi import document as asyncapi_document

    return asyncapi_document(
        title, version=pubsubkit.__version__, description=description, broker=broker, emits=emits, listeners=listeners
    )
