"""pubsubkit-otel: OpenTelemetry traces of what pubsubkit publishes and handles, off unless installed.

Installed, it is a pubsubkit plugin (entry point ``otel``) that:

- stamps every envelope made inside a span with that span's W3C ``traceparent`` (an event emitted through a
  unit of work carries the span that committed it, to the outbox and past it);
- opens a PRODUCER span ``send <destination>`` per message published (by an emitter or the outbox relay), a
  child of the envelope's ``traceparent``, and sends the message with the producer span's ``traceparent``;
- opens a CONSUMER span ``process <destination>`` per handler attempt, a child of the message's producer span,
  current while the handler runs (so that what it emits continues the trace); a failed attempt has status
  ERROR, the exception recorded and an event ``retry`` or ``failed``; a dead letter is a span of its own,
  ``dead_letter <destination>``, in the message's trace.

Names and attributes follow the OpenTelemetry messaging semantic conventions (``messaging.system``,
``messaging.destination.name``, ``messaging.operation.type`` and ``.name``, ``messaging.message.id``,
``messaging.consumer.group.name``), with ``pubsubkit.event.name``, ``pubsubkit.attempt`` and
``pubsubkit.handler``. Spans go to the global tracer provider: configure one (``OTEL_*`` variables and
:func:`configure_from_environment`, or the SDK in code); without one, it makes no spans and only passes a
message's trace context on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pubsubkit.envelope import Envelope, Header
from pubsubkit.plugin import add_header_stamp, hookimpl
from pubsubkit.transport import DeadLetter

__all__ = [
    "SYSTEMS",
    "TRACER_NAME",
    "configure_from_environment",
    "pubsubkit_dead_lettered",
    "pubsubkit_handler_middleware",
    "pubsubkit_publish_middleware",
    "trace_headers",
]

#: The name of the tracer (the instrumentation scope) of the spans made here.
TRACER_NAME = "pubsubkit"
#: ``messaging.system`` by URL scheme (the semantic conventions' values where they have one).
SYSTEMS: Mapping[str, str] = {
    "kafka": "kafka",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "sqs": "aws_sqs",
    "sqlite": "pubsubkit_sqlite",
    "memory": "pubsubkit_memory",
}


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def trace_headers() -> dict[str, str]:
    """The W3C trace context of the current span as headers (``traceparent``, ``tracestate``); empty outside a
    recording span. Every envelope made gets these (unless given), so call it only to pass the context on
    elsewhere."""
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _recording() -> bool:
    """Whether a tracer provider is set (not the API's no-op one). Without one, a producer span would be a
    non-recording copy of the envelope's own context: the message would carry the same ``traceparent``."""
    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _context_of(headers: Mapping[str, str]) -> context.Context:
    return propagate.extract(headers)


def _system(url: str) -> str:
    scheme = url.partition("://")[0].lower()
    return SYSTEMS.get(scheme, scheme or "pubsubkit")


# --- publishing ------------------------------------------------------------------------------------------


@hookimpl
def pubsubkit_publish_middleware(url: str) -> Callable[[Any], Any]:
    system = _system(url)

    def wrap(publish_next: Callable[[Sequence[Envelope]], Sequence[Envelope]]) -> Callable[..., Any]:
        def traced(envelopes: Sequence[Envelope]) -> Sequence[Envelope]:
            if not _recording():  # no spans to make, and the headers would come out as they are
                return publish_next(envelopes)
            tracer = _tracer()
            spans: list[Span] = []
            sent: list[Envelope] = []
            for env in envelopes:
                span = tracer.start_span(
                    f"send {env.name}",
                    context=_context_of(env.headers) if Header.TRACEPARENT in env.headers else None,
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": system,
                        "messaging.operation.type": "send",
                        "messaging.operation.name": "send",
                        "messaging.destination.name": env.name,
                        "messaging.message.id": env.id,
                        "pubsubkit.event.name": env.name,
                        **({"messaging.batch.message_count": len(envelopes)} if len(envelopes) > 1 else {}),
                    },
                )
                spans.append(span)
                carrier: dict[str, str] = {}
                propagate.inject(carrier, context=trace.set_span_in_context(span))
                sent.append(attrs.evolve(env, headers={**env.headers, **carrier}) if carrier else env)
            try:
                result = publish_next(sent)
            except BaseException as exc:
                for span in spans:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                    span.end()
                raise
            for span in spans:
                span.end()
            return result

        return traced

    return wrap


# --- handling --------------------------------------------------------------------------------------------


@hookimpl
def pubsubkit_handler_middleware(group: str) -> Callable[[Any], Any]:
    def wrap(call_next: Callable[..., Any]) -> Callable[..., Any]:
        def traced(handler: Any, event: Any, msg: Any) -> Any:
            with _handling(group, handler, msg):
                return call_next(handler, event, msg)

        return traced

    def wrap_awaiting(call_next: Callable[..., Any]) -> Callable[..., Any]:
        """The same for ``async def`` handlers: the span is current in the handler's task, on its loop."""

        async def traced(handler: Any, event: Any, msg: Any) -> Any:
            with _handling(group, handler, msg):
                return await call_next(handler, event, msg)

        return traced

    wrap.awaiting = wrap_awaiting  # type: ignore[attr-defined]
    return wrap


@contextlib.contextmanager
def _handling(group: str, handler: Any, msg: Any) -> Iterator[None]:
    """The CONSUMER span of one handler attempt, current meanwhile; what the handler emits continues it."""
    env: Envelope = msg.envelope
    if not _recording():  # the no-op span would be the message's own context: pass that on, and no more
        with _passed_on(env, msg):
            yield
        return
    name = getattr(handler, "__name__", None) or type(handler).__name__
    with _consumer_span(env, group, msg.attempt, name) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        msg.reply_headers_extra.update(carrier)  # what the handler emits continues this trace
        try:
            yield
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.add_event("handler failed", {"pubsubkit.attempt": msg.attempt})
            raise


@contextlib.contextmanager
def _passed_on(env: Envelope, msg: Any) -> Iterator[None]:
    """Without a tracer provider: the message's trace context (if it has one) current while the handler runs
    and on what it emits, as the non-recording span the API would make carries it."""
    if Header.TRACEPARENT not in env.headers:
        yield
        return
    ctx = _context_of(env.headers)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    msg.reply_headers_extra.update(carrier)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def _consumer_span(env: Envelope, group: str, attempt: int, handler: str) -> Iterator[Span]:
    attributes: dict[str, Any] = {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": env.name,
        "messaging.message.id": env.id,
        "messaging.consumer.group.name": group,
        "pubsubkit.event.name": env.name,
        "pubsubkit.attempt": attempt,
        "pubsubkit.handler": handler,
    }
    with _tracer().start_as_current_span(
        f"process {env.name}",
        context=_context_of(env.headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


@hookimpl
def pubsubkit_dead_lettered(letter: DeadLetter) -> None:
    env = letter.envelope
    headers = env.headers if env is not None else {}
    name = letter.original_name or "unknown"
    span = _tracer().start_span(
        f"dead_letter {name}",
        context=_context_of(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.operation.type": "settle",
            "messaging.operation.name": "dead_letter",
            "messaging.destination.name": name,
            "messaging.consumer.group.name": letter.group,
            "pubsubkit.dead_letter.reason": letter.reason,
            "pubsubkit.attempt": letter.attempts,
            **({"messaging.message.id": env.id} if env is not None else {}),
        },
    )
    span.set_status(Status(StatusCode.ERROR, f"dead-lettered ({letter.reason}): {letter.error.partition(chr(10))[0]}"))
    span.end()


# --- the envelope stamp and the SDK ----------------------------------------------------------------------


def _stamp() -> Mapping[str, str] | None:
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return None
    return trace_headers()


add_header_stamp(_stamp)


def configure_from_environment() -> bool:
    """Install an SDK tracer provider exporting over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and no provider is installed yet, reading the standard
    ``OTEL_*`` variables (service name, sampler, batch sizes); returns whether it did. Needs the ``otlp``
    extra."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if isinstance(trace.get_tracer_provider(), _sdk_provider_type()):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _sdk_provider_type() -> type:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider
