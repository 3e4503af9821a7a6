"""Operations routes every service has: ``/health``, ``/ready``, ``/metrics``, ``/openapi.json`` and
``/asyncapi.json``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["Health", "Metrics", "OpenAPI", "Ready", "ops_routes"]

log = logging.getLogger("myevents.ready")

#: A readiness probe returns when its dependency answers and raises otherwise.
Probe = Callable[[], None]


class Health:
    """Liveness: the process answers HTTP. Touches no backend, so a slow broker never gets a process killed."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """Readiness: every probe (broker, store, background workers) passes; 503 with the failing ones otherwise."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self.probes = probes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {}
        for name, probe in self.probes.items():
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:
                log.warning("not ready: %s: %s", name, exc)
                checks[name] = f"{type(exc).__name__}: {exc}"
        ready = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        if not ready:
            resp.set_header("Retry-After", "1")
        resp.media = {"status": "ready" if ready else "unavailable", "checks": checks}


class Metrics:
    """Prometheus text exposition of the service's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(self.registry)


class OpenAPI:
    """Serves a JSON document (the OpenAPI one, and the AsyncAPI one)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


def ops_routes(
    probes: Mapping[str, Probe],
    registry: CollectorRegistry,
    document: Mapping[str, Any],
    asyncapi: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    """The operations routes: health, readiness, metrics, and the OpenAPI and AsyncAPI documents."""
    routes: dict[str, object] = {
        "/health": Health(),
        "/ready": Ready(probes),
        "/metrics": Metrics(registry),
        "/openapi.json": OpenAPI(document),
    }
    if asyncapi:
        routes["/asyncapi.json"] = OpenAPI(asyncapi)
    return routes
