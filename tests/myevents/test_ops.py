"""Operations routes: health, readiness, metrics, and an OpenAPI document that matches the route table."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from unittest import mock

import pytest
from falcon import inspect, testing
from myevents_support import make_config

import pubsubkit
from myevents import booking, events
from myevents.runtime import ListenerWorker, Service
from myevents.web import WebApp
from myevents.web.ui import UI_ROUTES
from pubsubkit.backends.memory import MemoryTransport
from pubsubkit.transport import Consumer


@pytest.fixture(params=["events", "booking"])
def service(request: pytest.FixtureRequest, urls: dict[str, str]) -> Iterator[Service]:
    factory = events.create_service if request.param == "events" else booking.create_service
    svc = factory(make_config(request.param, urls["bus"], urls[request.param]))
    yield svc
    svc.close()


def test_health_answers_without_backends(service: Service) -> None:
    client = testing.TestClient(service.app)
    r = client.simulate_get("/health")
    assert (r.status_code, r.json) == (200, {"status": "ok"})


def test_ready_only_when_workers_run_and_backends_answer(service: Service) -> None:
    client = testing.TestClient(service.app)
    r = client.simulate_get("/ready")
    assert r.status_code == 503
    assert r.json["status"] == "unavailable"
    assert r.json["checks"]["workers"].startswith("RuntimeError: not running")
    service.start()
    r = client.simulate_get("/ready")
    assert r.status_code == 200
    assert r.json == {"status": "ready", "checks": {"shutdown": "ok", "broker": "ok", "store": "ok", "workers": "ok"}}


def test_start_returns_once_the_listener_joined_its_group(
    urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events published right after start() reach the booking service, also on brokers without replay."""
    join = MemoryTransport.consumer

    def slow_join(self: MemoryTransport, group: str, names: Collection[str] | None) -> Consumer:
        time.sleep(0.3)  # as a broker that creates queues and subscriptions on joining
        return join(self, group, names)

    monkeypatch.setattr(MemoryTransport, "consumer", slow_join)
    svc = booking.create_service(make_config("booking", urls["bus"], urls["booking"])).start()
    try:
        listeners = [w.listener for w in svc.workers if isinstance(w, ListenerWorker)]
        assert listeners
        assert all(x.wait_ready(0) for x in listeners)
    finally:
        svc.close()


def test_ready_is_503_when_the_store_is_unreachable(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise pubsubkit.ConnectionLost("store down")

    client = testing.TestClient(service.start().app)
    assert client.simulate_get("/ready").status_code == 200
    monkeypatch.setattr(service.backends.store, "ping", unreachable)
    monkeypatch.setattr(service.backends.store, "get_raw", unreachable)
    r = client.simulate_get("/ready")
    assert r.status_code == 503
    assert r.json["checks"]["store"] == "ConnectionLost: store down"
    assert r.headers["retry-after"] == "1"
    # A request needing the store is a 503 problem, not a 500.
    r = client.simulate_get("/events/x")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"


def test_metrics_are_prometheus_text_of_the_service_registry(service: Service) -> None:
    client = testing.TestClient(service.start().app)
    client.simulate_get("/health")
    r = client.simulate_get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'myevents_http_requests_total{method="GET",route="/health",status="200"} 1.0' in r.text
    assert "pubsubkit_outbox_relayed_total" in r.text


def test_the_correlation_id_is_kept_or_made(service: Service) -> None:
    client = testing.TestClient(service.app)
    assert client.simulate_get("/health", headers={"X-Correlation-ID": "abc-1"}).headers["x-correlation-id"] == "abc-1"
    made = client.simulate_get("/health", headers={"X-Correlation-ID": "not plausible\x01"}).headers["x-correlation-id"]
    assert made != "not plausible\x01"
    assert len(made) == 36
    assert len(client.simulate_get("/nowhere").headers["x-correlation-id"]) == 36


def _routes(app: WebApp) -> dict[str, set[str]]:
    """The API's routes: the web front end's pages (``/``, ``/ui/...``) are not part of it."""
    return {
        route.path: {m.method.lower() for m in route.methods if not m.internal and m.method != "OPTIONS"}
        for route in inspect.inspect_routes(app)
        if route.path not in UI_ROUTES
    }


def test_openapi_describes_exactly_the_routes_served(service: Service) -> None:
    doc = testing.TestClient(service.app).simulate_get("/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    documented = {
        path: {m for m in item if m in ("get", "post", "patch", "put", "delete")} for path, item in doc["paths"].items()
    }
    assert documented == _routes(service.app)
    for item in doc["paths"].values():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op["responses"], method
            if "requestBody" in op:
                assert {"400", "413", "415", "422"} <= set(op["responses"])
    refs = {s for s in str(doc).split("'") if s.startswith("#/components/schemas/")}
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["components"]["schemas"])


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(pubsubkit.UnknownSchemeError, match="no store plugin serves carrier://"):
        events.create_service(make_config("events", "memory://x", "carrier://pigeon"))


#: The operations anyone may call; every other one needs a bearer token.
PUBLIC = {
    "events": {
        ("/events", "get"),
        ("/events/{id}", "get"),
        ("/events/{id}/{search}", "get"),
        ("/locations", "get"),
        ("/locations/{id}", "get"),
    },
    "booking": {("/events/{id}", "get")},
}
OPS = {("/health", "get"), ("/ready", "get"), ("/metrics", "get"), ("/openapi.json", "get"), ("/asyncapi.json", "get")}


def test_openapi_declares_the_bearer_scheme_and_the_401_and_403_of_protected_routes(service: Service) -> None:
    doc = testing.TestClient(service.app).simulate_get("/openapi.json").json
    assert doc["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": mock.ANY}
    }
    public = PUBLIC[service.name] | OPS
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if (path, method) in public:
                assert "security" not in op, (path, method)
                assert not {"401", "403"} & set(op["responses"]), (path, method)
            else:
                assert op["security"] == [{"bearerAuth": []}], (path, method)
                assert {"401", "403"} <= set(op["responses"]), (path, method)


def test_openapi_request_bodies_are_what_the_decoders_accept(service: Service) -> None:
    """Each body is a schema of its own with the decoder's limits and no other fields, so that a body the
    document allows is not refused (the fuzz tests send such bodies); a PATCH may be sent as a merge patch."""
    doc = testing.TestClient(service.app).simulate_get("/openapi.json").json
    schemas = doc["components"]["schemas"]
    for item in doc["paths"].values():
        for method, op in item.items():
            if method == "parameters" or "requestBody" not in op:
                continue
            content = op["requestBody"]["content"]
            types = {"application/json", "application/merge-patch+json"} if method == "patch" else {"application/json"}
            assert set(content) == types, (method, content)
            assert all(c == content["application/json"] for c in content.values())
            ref = content["application/json"]["schema"]["$ref"]
            body = schemas[ref.rsplit("/", 1)[1]]
            assert body["additionalProperties"] is False, ref
            assert "Cancelled" not in body["properties"], ref
            for prop in body["properties"].values():
                if prop.get("type") == "integer":
                    assert {"minimum", "maximum"} <= set(prop), ref
                if prop.get("type") == "string":
                    assert "maxLength" in prop, ref


def test_openapi_declares_the_headers_responses_always_have(service: Service) -> None:
    doc = testing.TestClient(service.app).simulate_get("/openapi.json").json
    wanted = {"201": "Location", "401": "WWW-Authenticate", "503": "Retry-After"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or path == "/ready":  # /ready's 503 is its readiness report
                continue
            for code, header in wanted.items():
                if code in op["responses"]:
                    assert op["responses"][code]["headers"][header]["required"] is True, (path, method, code)


def test_openapi_response_objects_are_closed(service: Service) -> None:
    """What a response holds is all there and nothing else, so the fuzz tests' schema check catches a field
    gone missing or renamed."""
    schemas = testing.TestClient(service.app).simulate_get("/openapi.json").json["components"]["schemas"]
    names = {"events": ("Event", "Location", "Hall"), "booking": ("Event", "Booking")}[service.name]
    for name in names:
        assert schemas[name]["additionalProperties"] is False, name
        assert schemas[name]["required"] == list(schemas[name]["properties"]), name
