"""The booking projector as a worker process of its own: ``pubsubkit run myevents.booking.worker:projector``.

It builds the booking service's copy of events and locations from what it hears (group ``booking``), and its
outbox relay publishes the ``bookingCancelled`` events an event's cancellation causes. Its configuration is the
booking service's (``MYEVENTS_BROKER_URL``, ``MYEVENTS_STORE_URL``, ``MYEVENTS_DATA_DIR``, ``MYEVENTS_CONFIG``...);
start the booking service with ``MYEVENTS_PROJECTOR=apart`` so that it serves requests without a listener.
"""

from __future__ import annotations

import pubsubkit
from myevents import config as configuration
from myevents import tracing
from myevents.booking.app import projector_listener
from myevents.logs import configure
from myevents.runtime import open_backends

__all__ = ["projector"]


def projector() -> pubsubkit.Worker:
    """The booking projector's listener and outbox relay, after a catch-up pass over the copy."""
    config = configuration.load("booking")
    configure("booking-projector", config.log_level)
    tracing.setup("booking-projector")
    backends = open_backends(config.broker_url, config.store_url)
    try:
        _, projector, listener = projector_listener(backends)
        projector.catch_up()
        relay = backends.broker.relay(backends.store)
    except BaseException:
        backends.close()
        raise
    return pubsubkit.Worker([listener], relays=[relay], registry=backends.registry, close=backends.close)
