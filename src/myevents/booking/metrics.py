"""The booking service's own metrics (pubsubkit's come from its metrics plugin, in the same registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BookingMetrics"]


class BookingMetrics:
    """Counters with low-cardinality labels only: no event, user or booking ids."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # The original's names. prometheus_client exposes a counter's samples with a _total suffix.
        self.seats = Counter("myevents_bookings_count", "Seats booked.", registry=registry)
        self.seats_per_booking = Histogram(
            "myevents_seats_per_booking", "Seats per booking.", buckets=(1, 2, 3, 4), registry=registry
        )
        self.refused = Counter(
            "myevents_bookings_refused", "Bookings refused, by reason.", ["reason"], registry=registry
        )
        self.cancelled = Counter(
            "myevents_bookings_cancelled", "Bookings cancelled, by reason.", ["reason"], registry=registry
        )

    def booked(self, seats: int) -> None:
        self.seats.inc(seats)
        self.seats_per_booking.observe(seats)
