"""The event service: events and locations, each change published through the outbox."""

from __future__ import annotations

from typing import Any

import pubsubkit
from myevents.asyncapi import document as asyncapi_document
from myevents.config import Config
from myevents.events.catalog import Catalog
from myevents.events.openapi import document
from myevents.events.resources import (
    EventResource,
    EventSearchResource,
    EventsResource,
    LocationResource,
    LocationsResource,
)
from myevents.runtime import Backends, Deps, RelayWorker, Service, Worker, open_backends, probes
from myevents.web import WebApp, auth
from myevents.web.app import new_app
from myevents.web.ops import ops_routes
from myevents.web.ui import ui_routes

__all__ = ["asyncapi", "create_app", "create_service"]


def create_app(config: Config, deps: Deps) -> WebApp:
    catalog = Catalog(deps.backends.store)
    routes = {
        "/events": EventsResource(catalog),
        "/events/{id}": EventResource(catalog),
        "/events/{id}/{search}": EventSearchResource(catalog),
        "/locations": LocationsResource(catalog),
        "/locations/{id}": LocationResource(catalog),
        **ops_routes(deps.probes, deps.backends.registry, document(), deps.asyncapi),
        **ui_routes(config.booking_url),
    }
    return new_app(deps.backends.registry, config.max_body_bytes, routes, auth.settings(config))


def create_service(config: Config, backends: Backends | None = None) -> Service:
    """The app with its backends and its outbox relay (started by ``Service.start``)."""
    backends = backends or open_backends(config.broker_url, config.store_url)
    workers: list[Worker] = [RelayWorker(backends.broker.relay(backends.store))]
    asyncapi = asyncapi_document("events", backends.broker)
    app = create_app(config, Deps(backends, probes(backends, workers), asyncapi=asyncapi))
    return Service("events", app, backends, workers)


def asyncapi() -> dict[str, Any]:
    """The service's AsyncAPI document with channels named as on the embedded broker
    (``pubsubkit asyncapi myevents.events.app:asyncapi``)."""
    with pubsubkit.open_broker(f"memory://asyncapi-{pubsubkit.new_id()}") as broker:
        return asyncapi_document("events", broker)
