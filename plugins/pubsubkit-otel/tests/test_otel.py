"""pubsubkit-otel on memory:// and sqlite://: one trace from a span in the application through the emitter or
the outbox, the broker and the handler, to what the handler emits; retries and dead letters in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

import pubsubkit
from pubsubkit.testing import wait_until

tracer = trace.get_tracer("test")


@pubsubkit.event("otelOrdered")
@attrs.frozen
class Ordered:
    n: int


@pubsubkit.event("otelShipped")
@attrs.frozen
class Shipped:
    n: int


@pytest.fixture(params=["memory", "sqlite"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "memory":
        name = pubsubkit.new_id()
        return f"memory://otel-{name}", f"memory://otel-{name}"
    return f"sqlite:///{tmp_path}/bus.db", f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def pm() -> Any:
    pm = pubsubkit.get_plugin_manager(metrics_registry=CollectorRegistry())
    assert pm.get_plugin("otel") is not None, "pubsubkit-otel is not installed as a plugin"
    return pm


@pytest.fixture
def backends(urls: tuple[str, str], pm: Any) -> Iterator[tuple[pubsubkit.Broker, pubsubkit.Store]]:
    broker = pubsubkit.open_broker(urls[0], pm=pm)
    store = pubsubkit.open_store(urls[1], pm=pm)
    yield broker, store
    store.close()
    broker.close()


def run_until(
    spans: InMemorySpanExporter,
    names: list[str],
    listener: pubsubkit.Listener,
    relay: pubsubkit.OutboxRelay | None = None,
) -> None:
    """Run the listener (and relay) until a span of each of ``names`` has ended."""
    listener.start()
    if relay is not None:
        relay.start()
    try:
        wait_until(lambda: all(n in by_name(spans) for n in names), 20, f"the spans {names}")
    finally:
        if relay is not None:
            relay.stop()
        listener.close()


def by_name(spans: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in spans.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def test_one_trace_from_a_request_through_the_outbox_to_what_the_handler_emits(
    backends: tuple[pubsubkit.Broker, pubsubkit.Store], spans: InMemorySpanExporter
) -> None:
    broker, store = backends
    listener = broker.listener("shipping", store=store, poll_interval=0.02)

    @listener.on(Ordered)
    def ship(event: Ordered, msg: pubsubkit.Message) -> None:
        with msg.unit_of_work() as uow:
            uow.emit(Shipped(event.n), key=str(event.n))

    with tracer.start_as_current_span("POST /orders") as request, store.unit_of_work() as uow:
        uow.emit(Ordered(1), key="1")
    run_until(spans, ["send otelShipped"], listener, broker.relay(store))

    got = by_name(spans)
    [root] = got["POST /orders"]
    [send_ordered] = got["send otelOrdered"]
    [process] = got["process otelOrdered"]
    [send_shipped] = got["send otelShipped"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (send_ordered, process, send_shipped)} == {trace_id}
    assert send_ordered.parent.span_id == root.context.span_id, "the relay's publish is a child of the commit's span"
    assert process.parent.span_id == send_ordered.context.span_id
    assert send_shipped.parent.span_id == process.context.span_id
    assert send_ordered.kind is SpanKind.PRODUCER
    assert process.kind is SpanKind.CONSUMER
    assert process.attributes["messaging.consumer.group.name"] == "shipping"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["pubsubkit.attempt"] == 1
    assert process.attributes["pubsubkit.handler"] == "ship"
    assert send_ordered.attributes["messaging.operation.type"] == "send"
    assert send_ordered.attributes["messaging.system"] in ("pubsubkit_memory", "pubsubkit_sqlite")
    assert send_ordered.attributes["messaging.message.id"] == process.attributes["messaging.message.id"]


def test_an_emit_without_a_span_starts_a_trace_the_handler_continues(
    backends: tuple[pubsubkit.Broker, pubsubkit.Store], spans: InMemorySpanExporter
) -> None:
    broker, _ = backends
    listener = broker.listener("g", poll_interval=0.02)
    listener.add_handler(Ordered, lambda e, m: None)
    env = broker.emitter().emit(Ordered(2))
    run_until(spans, ["process otelOrdered"], listener)
    got = by_name(spans)
    [send] = got["send otelOrdered"]
    [process] = got["process otelOrdered"]
    assert send.parent is None
    assert process.parent.span_id == send.context.span_id
    assert env.headers["traceparent"].split("-")[1] == format(send.context.trace_id, "032x")


def test_retries_and_the_dead_letter_are_in_the_trace(
    backends: tuple[pubsubkit.Broker, pubsubkit.Store], spans: InMemorySpanExporter
) -> None:
    broker, _ = backends
    retry = pubsubkit.RetryPolicy(attempts=3, initial=0.001, multiplier=1.0, max_delay=0.001, jitter=0.0)
    listener = broker.listener("failing", poll_interval=0.02, retry=retry)

    @listener.on(Ordered)
    def refuse(event: Ordered, msg: pubsubkit.Message) -> None:
        raise ValueError("not today")

    listener.start()
    try:
        with tracer.start_as_current_span("caller"):
            broker.emitter().emit(Ordered(3))
        wait_until(lambda: "dead_letter otelOrdered" in by_name(spans), 10, "the dead letter's span")
    finally:
        listener.close()
    got = by_name(spans)
    attempts = got["process otelOrdered"]
    assert sorted(s.attributes["pubsubkit.attempt"] for s in attempts) == [1, 2, 3]
    assert all(s.status.status_code is StatusCode.ERROR for s in attempts)
    assert all(any(e.name == "exception" for e in s.events) for s in attempts)
    [dead] = got["dead_letter otelOrdered"]
    assert dead.status.status_code is StatusCode.ERROR
    assert dead.attributes["pubsubkit.dead_letter.reason"] == "failed"
    [send] = got["send otelOrdered"]
    assert dead.parent.span_id == send.context.span_id
    assert {s.context.trace_id for s in (*attempts, dead)} == {send.context.trace_id}


def test_an_async_handler_continues_the_trace_in_what_it_emits(
    backends: tuple[pubsubkit.Broker, pubsubkit.Store], spans: InMemorySpanExporter
) -> None:
    broker, store = backends
    listener = broker.listener("async", store=store, poll_interval=0.02)

    @listener.on(Ordered)
    async def ship(event: Ordered, msg: pubsubkit.Message) -> None:
        async with msg.unit_of_work() as uow:
            uow.emit(Shipped(event.n))

    broker.emitter().emit(Ordered(4))
    run_until(spans, ["send otelShipped"], listener, broker.relay(store))
    got = by_name(spans)
    [process] = got["process otelOrdered"]
    [shipped] = got["send otelShipped"]
    assert shipped.parent.span_id == process.context.span_id


def test_an_async_handlers_span_is_current_in_its_coroutine_and_records_its_failure(
    backends: tuple[pubsubkit.Broker, pubsubkit.Store], spans: InMemorySpanExporter
) -> None:
    """The span of an ``async def`` handler is opened around its coroutine on the loop (the middleware's
    awaiting form), so the coroutine sees it as the current span, and what it raises is recorded on it."""
    from pubsubkit.plugin import Observers

    broker, _ = backends
    _, awaiting = Observers(broker.pm).handler_chains("async-current")
    assert awaiting is not None, "the otel middleware has no awaiting form: async handlers would hop threads"
    fast = pubsubkit.RetryPolicy(attempts=2, initial=0.001, multiplier=1.0, max_delay=0.001, jitter=0.0)
    listener = broker.listener("async-current", poll_interval=0.02, retry=fast)
    current: list[int] = []

    @listener.on(Ordered)
    async def check(event: Ordered, msg: pubsubkit.Message) -> None:
        current.append(trace.get_current_span().get_span_context().span_id)
        if event.n == 7:
            raise ValueError("seven")

    broker.emitter().emit(Ordered(7))
    run_until(spans, ["dead_letter otelOrdered"], listener)
    attempts = by_name(spans)["process otelOrdered"]
    assert len(attempts) == 2
    assert current == [s.context.span_id for s in attempts]
    assert all(s.status.status_code is StatusCode.ERROR for s in attempts)
    assert all(s.events[0].name == "exception" for s in attempts)


def test_the_plugin_can_be_disabled(urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUBKIT_DISABLE_PLUGINS", "otel")
    pm = pubsubkit.get_plugin_manager(metrics_registry=CollectorRegistry())
    assert pm.get_plugin("otel") is None


NO_PROVIDER = """
import attrs, pubsubkit
from prometheus_client import CollectorRegistry

@pubsubkit.event("otelPlain")
@attrs.frozen
class Plain:
    n: int

pm = pubsubkit.get_plugin_manager(metrics_registry=CollectorRegistry())
assert pm.get_plugin("otel") is not None
broker = pubsubkit.open_broker("memory://no-provider", pm=pm)
listener = broker.listener("g", poll_interval=0.02, concurrency=1)  # in order
seen = []
from opentelemetry import trace

def handle(e, m):
    current = format(trace.get_current_span().get_span_context().trace_id, "032x")
    seen.append((dict(m.envelope.headers), dict(m.reply_headers()), current))

listener.add_handler(Plain, handle)
upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
emitter = broker.emitter()
emitter.publish([emitter.envelope(Plain(1), headers={"traceparent": upstream})])
emitter.emit(Plain(2))
listener.start()
pubsubkit.testing.wait_until(lambda: len(seen) == 2, 10, "both handled")
listener.close()
broker.close()
assert seen[0][0]["traceparent"] == upstream, seen[0]
assert seen[0][1]["traceparent"] == upstream, seen[0]  # what the handler emits continues the upstream trace
assert seen[0][2] == upstream.split("-")[1], seen[0]  # and it is the current context meanwhile
assert "traceparent" not in seen[1][0] and "traceparent" not in seen[1][1], seen[1]
assert seen[1][2] == "0" * 32, seen[1]
print("ok")
"""


def test_without_a_tracer_provider_messages_keep_their_own_trace_context() -> None:
    """No tracer provider set (a fresh process): the plugin makes no spans, and what it passes on is what the
    API's no-op spans would: a message sent with an upstream ``traceparent`` carries it unchanged, its handler
    runs in that context and replies in it; one sent outside any trace carries none."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import pubsubkit.testing\n" + NO_PROVIDER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
