"""Tracing for the services, when the tracing plugin is installed and an OTLP endpoint is configured.

With the distribution ``pubsubkit-otel`` (its ``otlp`` and ``falcon`` extras) installed and
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, :func:`setup` exports spans over
OTLP/HTTP and instruments Falcon: a request continues an incoming W3C ``traceparent`` (its server span is
current while the request is handled), the events it emits carry it through the outbox and the broker, and the
JSON log lines carry ``trace_id``. Without them, nothing changes.
"""

from __future__ import annotations

import logging
import os

__all__ = ["current_trace_id", "setup"]

log = logging.getLogger("myevents.tracing")

#: The paths whose requests make no span (probes and scrapes).
EXCLUDED_URLS = "health,ready,metrics"


def setup(service: str) -> bool:
    """Export this process's spans and trace its HTTP requests, when the plugin and an endpoint are there;
    returns whether it did. Call it before the app is made (the Falcon instrumentation wraps ``falcon.App``)."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    try:
        import pubsubkit_otel
        from opentelemetry.instrumentation.falcon import FalconInstrumentor
    except ImportError as exc:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set, but tracing needs pubsubkit-otel[otlp,falcon]: %s", exc)
        return False
    os.environ.setdefault("OTEL_SERVICE_NAME", f"myevents-{service}")
    pubsubkit_otel.configure_from_environment()
    instrumentor = FalconInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(excluded_urls=EXCLUDED_URLS)
    return True


def current_trace_id() -> str | None:
    """The id of the current trace (32 hex digits), or ``None`` outside one or without OpenTelemetry."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
