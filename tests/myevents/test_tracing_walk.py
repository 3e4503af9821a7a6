"""Issue 22: one trace from an incoming POST /events, through the event service's outbox relay and the broker,
to the booking service's handler, on real processes exporting to an OTLP/HTTP receiver the test runs on loopback.

Runs in ``tox -e otel`` (the only environment with pubsubkit-otel installed), on embedded SQLite and on Kafka.
The tree of the trace on SQLite is the picture in docs/tracing.md: the test fails when the page shows another.
"""

from __future__ import annotations

import gzip
import http.server
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "procs"))
from backend_urls import AWS, broker_url
from myevents_procs import Proc, call, free_port, wait_ready
from myevents_support import TEST_SECRET, as_organizer, wait_for

from pubsubkit.testing import unique_name

pytest.importorskip("pubsubkit_otel", reason="tox -e otel installs pubsubkit-otel")
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

pytestmark = pytest.mark.walk

# The test's own consumer of eventBooked records its spans here (one tracer provider per process).
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

CONSUMER_SPANS = InMemorySpanExporter()
_provider = TracerProvider(resource=Resource.create({"service.name": "a consumer"}))
_provider.add_span_processor(SimpleSpanProcessor(CONSUMER_SPANS))
otel_trace.set_tracer_provider(_provider)

WAIT = 60.0
PAGE = Path(__file__).resolve().parents[2] / "docs" / "tracing.md"
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


class Receiver:
    """An OTLP/HTTP trace receiver: every span exported to ``http://127.0.0.1:PORT/v1/traces``, with its service."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.add(trace_service.ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: Any) -> None:
        with self._lock:
            for rs in request.resource_spans:
                service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "?")
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            {
                                "service": service,
                                "name": s.name,
                                "kind": s.kind,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex(),
                                "start": s.start_time_unix_nano,
                                "attributes": {a.key: a.value for a in s.attributes},
                            }
                        )

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def tree(spans: list[dict[str, Any]]) -> str:
    """The trace as an indented tree: each span's name, kind and service, children in start order."""
    ids = {s["span_id"] for s in spans}
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted((s for s in spans if s["parent"] == parent), key=lambda s: s["start"]):
            lines.append(f"{'    ' * depth}{s['name']}  [{KINDS.get(s['kind'], s['kind'])}, {s['service']}]")
            walk(s["span_id"], depth + 1)

    for root in {s["parent"] for s in spans if s["parent"] not in ids}:
        walk(root, 0)
    return "\n".join(lines)


def consumer_spans(trace_id: str) -> list[dict[str, Any]]:
    """The spans of ``trace_id`` the test's own consumer made, as the receiver keeps them."""
    return [
        {
            "service": "a consumer",
            "name": s.name,
            "kind": s.kind.value + 1,  # the SDK counts from 0, OTLP from 1
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent": format(s.parent.span_id, "016x") if s.parent is not None else "",
            "start": s.start_time,
            "attributes": dict(s.attributes or {}),
        }
        for s in CONSUMER_SPANS.get_finished_spans()
        if format(s.context.trace_id, "032x") == trace_id and s.name == "process eventBooked"
    ]


@pytest.mark.parametrize("broker", ["embedded", "kafka"])
def test_one_trace_from_post_events_through_the_relay_and_the_broker_to_the_booking_handler(
    tmp_path: Path, procs: list[Proc], receiver: Receiver, broker: str
) -> None:
    run = unique_name("trace")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "MYEVENTS_BROKER_URL": broker_url(broker, run, data),
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **{k: os.environ.get(k, v) for k, v in AWS.items()},
    }
    ev_url, bk_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    events = Proc(tmp_path, "events", "event-service", "--bind", ev_url.removeprefix("http://"), env=env)
    booking = Proc(tmp_path, "booking", "booking-service", "--bind", bk_url.removeprefix("http://"), env=env)
    procs += [events, booking]
    wait_ready(ev_url, events)
    wait_ready(bk_url, booking)
    org = as_organizer()
    status, loc, _ = call(
        "POST", ev_url + "/locations", {"Name": "Hall", "Halls": [{"name": "floor", "capacity": 9}]}, org
    )
    assert status == 201, loc

    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**org, "traceparent": f"00-{trace_id}-{caller}-01"}
    body = {"Name": "Traced", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}}
    status, made, _ = call("POST", ev_url + "/events", body, headers)
    assert status == 201, made
    wait_for(lambda: call("GET", f"{bk_url}/events/{made['ID']}")[0] == 200, timeout=WAIT, what="the booking copy")

    def named() -> dict[str, dict[str, Any]] | None:
        spans = receiver.of_trace(trace_id)
        found = {
            "server": next((s for s in spans if s["service"] == "myevents-events" and s["kind"] == 2), None),
            "send": next((s for s in spans if s["name"] == "send eventCreated"), None),
            "process": next((s for s in spans if s["name"] == "process eventCreated"), None),
        }
        return found if all(found.values()) else None  # type: ignore[return-value]

    spans = wait_for(named, timeout=WAIT, what=f"the server, send and process spans of trace {trace_id}")
    server, send, process = spans["server"], spans["send"], spans["process"]
    assert server["parent"] == caller, "the request continues the incoming traceparent"
    assert send["service"] == "myevents-events"
    assert send["kind"] == 4  # PRODUCER
    assert send["parent"] == server["span_id"], "the relay's publish is a child of the request that committed"
    assert process["service"] == "myevents-booking"
    assert process["kind"] == 5  # CONSUMER
    assert process["parent"] == send["span_id"], "the handler's span is a child of the publish"
    assert process["attributes"]["messaging.consumer.group.name"].string_value == "booking"
    logged = [line for line in events.logs() if line.get("trace_id") == trace_id]
    assert logged, "the event service's log lines of the request carry its trace id"

    # A booking: its own trace, from the booking service's request to its eventBooked on the bus, and to a
    # consumer of it (a listener of this test's own, with the plugin and an SDK recording in memory).
    booker, booking_caller = secrets.token_hex(16), secrets.token_hex(8)
    from myevents_support import as_user

    import pubsubkit
    from myevents import contracts

    CONSUMER_SPANS.clear()
    with pubsubkit.open_broker(env["MYEVENTS_BROKER_URL"]) as bus:
        billing = bus.listener(f"billing-{run}", poll_interval=0.05, lag_interval=0)
        billing.add_handler(contracts.EventBooked, lambda event, msg: None)
        billing.start()
        try:
            assert billing.wait_ready(WAIT)
            user = {**as_user("ann"), "traceparent": f"00-{booker}-{booking_caller}-01"}
            status, booked, _ = call("POST", f"{bk_url}/events/{made['ID']}/bookings", {"seats": 2}, user)
            assert status == 201, booked
            wait_for(
                lambda: any(s["name"] == "send eventBooked" for s in receiver.of_trace(booker)),
                timeout=WAIT,
                what="the publish of eventBooked",
            )
            wait_for(lambda: consumer_spans(booker), timeout=WAIT, what="the test consumer's span of eventBooked")
        finally:
            billing.close()
    [heard] = consumer_spans(booker)
    [sent] = [s for s in receiver.of_trace(booker) if s["name"] == "send eventBooked"]
    assert heard["parent"] == sent["span_id"], "the consumer's span is a child of the booking service's publish"
    if broker == "embedded":
        booking_trace = receiver.of_trace(booker) + consumer_spans(booker)
        picture = f"{tree(receiver.of_trace(trace_id))}\n\n{tree(booking_trace)}"
        page = PAGE.read_text(encoding="utf-8")
        start, end = (
            page.index("<!-- trace -->\n```text\n") + len("<!-- trace -->\n```text\n"),
            page.index("```\n<!-- /trace -->"),
        )
        assert page[start:end] == picture + "\n", f"docs/tracing.md shows another trace; this one is:\n{picture}"
