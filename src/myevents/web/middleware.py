"""Per-request context: the correlation id, the body-size limit, one access-log line and the HTTP metrics."""

from __future__ import annotations

import logging
import re
import time

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram

import pubsubkit
from myevents import logs

__all__ = ["CORRELATION_HEADER", "RequestContext", "event_headers"]

CORRELATION_HEADER = "X-Correlation-ID"

# A caller's correlation id is kept when it is a plausible id; anything else is replaced rather than refused.
_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

access_log = logging.getLogger("myevents.access")

# Probed every few seconds by orchestrators and scrapers: logged only at debug level unless they fail.
_QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})


class RequestContext:
    """Falcon middleware. ``req.context.correlation_id`` and ``req.context.max_body`` are set for responders."""

    def __init__(self, registry: CollectorRegistry, max_body: int) -> None:
        self.max_body = max_body
        self.requests = Counter(
            "myevents_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "myevents_http_request_seconds", "Time to answer an HTTP request.", ["route"], registry=registry
        )

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = req.get_header(CORRELATION_HEADER)
        cid = given if given is not None and _PLAUSIBLE_ID.fullmatch(given) else pubsubkit.new_id()
        req.context.correlation_id = cid
        req.context.max_body = self.max_body
        req.context.started = time.monotonic()
        req.context.log_token = logs.bind_correlation(cid)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        cid = req.context.get("correlation_id")
        if cid is None:  # process_request did not run (an error before it)
            return
        resp.set_header(CORRELATION_HEADER, cid)
        took = time.monotonic() - req.context.started
        route = req.uri_template or "unmatched"
        status = resp.status_code
        self.requests.labels(route, req.method, str(status)).inc()
        self.seconds.labels(route).observe(took)
        access_log.log(
            logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO,
            "%s %s %d",
            req.method,
            req.path,
            status,
            extra={"method": req.method, "path": req.path, "status": status, "ms": round(took * 1000, 2)},
        )
        logs.unbind(req.context.log_token)


def event_headers(req: falcon.Request) -> dict[str, str]:
    """Headers for the events a request causes: its correlation id."""
    return {pubsubkit.Header.CORRELATION_ID: req.context.correlation_id}
