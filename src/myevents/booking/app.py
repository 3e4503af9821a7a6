"""The booking service: bookings against its own copy of events, built only from the events it hears."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

import pubsubkit
from myevents.asyncapi import document as asyncapi_document
from myevents.booking.ledger import Ledger
from myevents.booking.metrics import BookingMetrics
from myevents.booking.openapi import document
from myevents.booking.projector import GROUP, Projector
from myevents.booking.resources import BookingResource, EventBookingsResource, EventResource, UserBookingsResource
from myevents.config import Config
from myevents.runtime import (
    DRAIN_SECONDS,
    Backends,
    Deps,
    ListenerWorker,
    RelayWorker,
    Service,
    TaskWorker,
    Worker,
    open_backends,
    probes,
)
from myevents.web import WebApp, auth
from myevents.web.app import new_app
from myevents.web.ops import ops_routes

__all__ = ["BookingDeps", "asyncapi", "create_app", "create_service", "projector_listener"]


@attrs.frozen
class BookingDeps(Deps):
    ledger: Ledger


def create_app(config: Config, deps: BookingDeps) -> WebApp:
    ledger = deps.ledger
    routes = {
        "/events/{id}": EventResource(ledger),
        "/events/{id}/bookings": EventBookingsResource(ledger),
        "/users/{id}/bookings": UserBookingsResource(ledger),
        "/bookings/{id}": BookingResource(ledger),
        **ops_routes(deps.probes, deps.backends.registry, document(), deps.asyncapi),
    }
    return new_app(deps.backends.registry, config.max_body_bytes, routes, auth.settings(config), config.ui_origins)


def projector_listener(backends: Backends) -> tuple[Ledger, Projector, pubsubkit.Listener]:
    """The booking copy's ledger, its projector, and the listener (group ``booking``) that feeds it."""
    ledger = Ledger(backends.store, BookingMetrics(backends.registry))
    projector = Projector(ledger)
    # A receive waits at most poll_interval before the loop checks for stop; running handlers get DRAIN_SECONDS.
    listener = backends.broker.listener(GROUP, store=backends.store, poll_interval=0.1, drain_timeout=DRAIN_SECONDS)
    projector.subscribe(listener)
    return ledger, projector, listener


def lag_probe(listener: pubsubkit.Listener, bound: int) -> Callable[[], None]:
    """A readiness probe failing while more than ``bound`` events wait for the listener's group."""

    def lag() -> None:
        waiting = listener.lag
        if waiting is not None and waiting > bound:
            raise RuntimeError(f"{waiting} events wait for group {listener.group} (MYEVENTS_READY_MAX_LAG={bound})")

    return lag


def create_service(config: Config, backends: Backends | None = None) -> Service:
    """The app with its backends, its listener (group ``booking``), its outbox relay and a catch-up pass; without
    the listener when the projector runs as a process of its own (``MYEVENTS_PROJECTOR=apart``)."""
    backends = backends or open_backends(config.broker_url, config.store_url)
    ledger, projector, listener = projector_listener(backends)
    workers: list[Worker] = [RelayWorker(backends.broker.relay(backends.store))]
    if config.projector == "in-process":
        workers[:0] = [TaskWorker(projector.catch_up, name="catch-up"), ListenerWorker(listener)]
    asyncapi = asyncapi_document("booking", backends.broker, [listener])
    checks = probes(backends, workers)
    if config.ready_max_lag is not None and config.projector == "in-process":
        checks["lag"] = lag_probe(listener, config.ready_max_lag)
    app = create_app(config, BookingDeps(backends, checks, ledger, asyncapi=asyncapi))
    return Service("booking", app, backends, workers)


def asyncapi() -> dict[str, Any]:
    """The service's AsyncAPI document with channels named as on the embedded broker, without starting it
    (``pubsubkit asyncapi myevents.booking.app:asyncapi``)."""
    backends = open_backends(f"memory://asyncapi-{pubsubkit.new_id()}", f"memory://asyncapi-{pubsubkit.new_id()}")
    try:
        _, _, listener = projector_listener(backends)
        return asyncapi_document("booking", backends.broker, [listener])
    finally:
        backends.close()
