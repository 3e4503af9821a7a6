"""The booking service: ``POST /events/{id}/bookings`` and friends, on its own copy of events and locations."""

from myevents.booking.app import create_app, create_service

__all__ = ["create_app", "create_service"]
