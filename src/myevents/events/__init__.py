"""The event service: ``GET/POST /events``, ``/locations``, their updates and cancellations."""

from myevents.events.app import create_app, create_service

__all__ = ["create_app", "create_service"]
