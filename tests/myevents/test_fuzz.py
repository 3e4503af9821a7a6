"""Property-based fuzzing of both services from their own OpenAPI documents.

Each operation of each document gets generated requests, valid and invalid (schemathesis' positive and
negative modes), sent in-process to a service on ``memory://`` backends; every response must be no 5xx, a status
code the document declares for the operation, of the content type and schema it declares, with the headers it
declares; a body the document allows is not refused, one it forbids is not accepted. Callers: an organizer
(every operation), and for the operations that need a token a plain user and nobody too (401 and 403 are their
documented answers). Hostile bodies, content types and headers that generation would seldom hit are sent by the
explicit tests at the end.

The documents are the ones the services serve (``/openapi.json`` returns ``document()``, see test_ops). No
Hypothesis health check is suppressed: the services are a module fixture, built once.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import hypothesis
import pytest
import schemathesis
from falcon import testing
from myevents_support import as_organizer, as_user, known_to_booking, make_config, new_event, new_location
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import pubsubkit
from myevents import booking, contracts, events

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    # A request the document allows is not refused with 400 or 422, and one it forbids is not accepted.
    positive_data_acceptance,
    negative_data_rejection,
]

#: What JSON Schema cannot say, by operation: a valid event body may still name a location that is not there
#: or end before it starts. Such a 422 must name only these.
SEMANTIC_422 = {
    "POST /events": {
        ("Location.ID", "no location with this ID is open"),
        ("EndDate", "must not be before StartDate"),
    },
    "PATCH /events/{id}": {("EndDate", "must not be before StartDate")},
}

#: The same examples every run (derandomize), so CI is stable; no deadline, as the machine's cores are shared.
SETTINGS = hypothesis.settings(max_examples=30, deadline=None, derandomize=True, database=None)

events_schema = schemathesis.openapi.from_dict(events.openapi.document())
booking_schema = schemathesis.openapi.from_dict(booking.openapi.document())


#: The user whose token the "user" runs send.
USER = "fuzzer"


@attrs.frozen
class Target:
    """A service under test, and IDs of what it holds, by path template: a generated ID seldom names anything,
    so some cases are sent to these instead, to reach past the 404s."""

    app: Any
    known: dict[str, str]


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, Target]]:
    """Both services on one bus; each has its own event and location, so that cancelling them in one test
    leaves the other's alone."""
    name = pubsubkit.new_id()
    bus = f"memory://fuzz-bus-{name}"
    ev = events.create_service(make_config("events", bus, f"memory://fuzz-events-{name}")).start()
    bk = booking.create_service(make_config("booking", bus, f"memory://fuzz-booking-{name}")).start()
    try:
        organizer = testing.TestClient(ev.app, headers=as_organizer())
        loc = new_location(organizer, 100)["ID"]
        new_event(organizer, loc, ID="fuzz-event-a")
        new_event(organizer, new_location(organizer, 100)["ID"], ID="fuzz-event-b")
        known_to_booking(testing.TestClient(bk.app), "fuzz-event-b")
        r = testing.TestClient(bk.app, headers=as_user(USER)).simulate_post(
            "/events/fuzz-event-b/bookings", json={"seats": 1}
        )
        assert r.status_code == 201, r.text
        yield {
            "events": Target(
                ev.app,
                {
                    "/events/{id}": "fuzz-event-a",
                    "/locations/{id}": loc,
                    "/events/{id}/{search}": "id",
                },
            ),
            "booking": Target(
                bk.app,
                {
                    "/events/{id}": "fuzz-event-b",
                    "/events/{id}/bookings": "fuzz-event-b",
                    "/users/{id}/bookings": USER,
                    "/bookings/{id}": str(r.json["ID"]),
                },
            ),
        }
    finally:
        bk.close()
        ev.close()


CALLERS: dict[str, Callable[[], dict[str, str]]] = {
    "organizer": as_organizer,
    "user": lambda: as_user(USER),
    "anonymous": dict,
}


def _call(case: Case[Any], target: Target, caller: str) -> None:
    known = target.known.get(case.path)
    params = case.path_parameters
    if known is not None and params and isinstance(params.get("id"), str) and len(params["id"]) % 2 == 0:
        params["id"] = known  # half the cases, chosen by the generated ID itself so that a run is repeatable
    semantic = SEMANTIC_422.get(case.operation.label)
    if semantic is None:
        case.call_and_validate(app=target.app, headers=CALLERS[caller](), checks=CHECKS)
        return
    checks = [c for c in CHECKS if c is not positive_data_acceptance]
    r = case.call_and_validate(app=target.app, headers=CALLERS[caller](), checks=checks)
    if r.status_code == 422 and case.meta is not None and case.meta.generation.mode.is_positive:
        errors = {(e["field"], e["reason"]) for e in r.json()["errors"]}
        assert errors <= semantic, f"a body the document allows was refused: {case.body!r} -> {r.text}"


def _secured(ctx: Any) -> bool:
    return "security" in ctx.operation.definition.raw


#: A user or nobody calling what anyone may call is what the organizer's run does already: only the operations
#: that need a token are sent by them too.
events_secured = events_schema.include(_secured)
booking_secured = booking_schema.include(_secured)


@events_schema.parametrize()
@SETTINGS
def test_event_service_as_organizer(case: Case[Any], targets: dict[str, Target]) -> None:
    _call(case, targets["events"], "organizer")


@pytest.mark.parametrize("caller", ["user", "anonymous"])
@events_secured.parametrize()
@SETTINGS
def test_event_service_as_others(case: Case[Any], targets: dict[str, Target], caller: str) -> None:
    _call(case, targets["events"], caller)


@booking_schema.parametrize()
@SETTINGS
def test_booking_service_as_organizer(case: Case[Any], targets: dict[str, Target]) -> None:
    _call(case, targets["booking"], "organizer")


@pytest.mark.parametrize("caller", ["user", "anonymous"])
@booking_secured.parametrize()
@SETTINGS
def test_booking_service_as_others(case: Case[Any], targets: dict[str, Target], caller: str) -> None:
    _call(case, targets["booking"], caller)


DEEP = 10_000
#: Bodies no parser or decoder may choke on, each with the status it gets.
HOSTILE_BODIES: dict[str, tuple[bytes, int]] = {
    "deeply nested arrays": (b"[" * DEEP + b"]" * DEEP, 400),
    "deeply nested objects": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, 400),
    "deep nesting in a field": (b'{"Name": ' + b"[" * DEEP + b"]" * DEEP + b"}", 400),
    "invalid UTF-8": (b'{"Name": "\xc3\x28\xff"}', 400),
    "a lone surrogate": (b'{"Name": "\\udc00"}', 400),
    "an overlong encoding": (b'{"Name": "\xc0\xaf"}', 400),
    "a NUL byte": (b'{"Name": "a\x00b"}', 400),
    "NaN": (b'{"Seats": NaN, "StartDate": NaN}', 400),
    "Infinity": (b'{"Seats": Infinity, "StartDate": -Infinity}', 400),
    "a huge integer": (b'{"Seats": ' + b"9" * 5000 + b', "StartDate": ' + b"9" * 5000 + b"}", 400),
    "a huge exponent": (b'{"Seats": 1e999999, "StartDate": 1e400}', 400),
    "an integer past 64 bits": (b'{"Seats": 18446744073709551616, "StartDate": -9223372036854775809}', 422),
    "a byte order mark": (b'\xef\xbb\xbf{"Name": "x"}', 400),
    "a body over the limit": (b'{"Name": "' + b"x" * (64 * 1024) + b'"}', 413),
}
HOSTILE_TYPES = [
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "json",
    "",
]


@pytest.fixture(scope="module")
def writes(targets: dict[str, Target]) -> list[tuple[Any, str, str]]:
    """Every operation taking a JSON body, on something that exists: (app, method, path)."""
    ev, bk = targets["events"], targets["booking"]
    return [
        (ev.app, "POST", "/events"),
        (ev.app, "PATCH", f"/events/{ev.known['/events/{id}']}"),
        (ev.app, "POST", "/locations"),
        (ev.app, "PATCH", f"/locations/{ev.known['/locations/{id}']}"),
        (bk.app, "POST", f"/events/{bk.known['/events/{id}/bookings']}/bookings"),
    ]


def assert_problem(r: testing.Result, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["status"] == status
    assert {"type", "title", "detail"} <= set(r.json)


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_bodies_get_a_problem_never_a_server_error(writes: list[tuple[Any, str, str]], name: str) -> None:
    body, status = HOSTILE_BODIES[name]
    for app, method, path in writes:
        headers = as_user(USER) if path.endswith("/bookings") else as_organizer()
        r = testing.TestClient(app).simulate_request(
            method, path, body=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert_problem(r, status)


@pytest.mark.parametrize("content_type", HOSTILE_TYPES)
def test_other_content_types_get_415(writes: list[tuple[Any, str, str]], content_type: str) -> None:
    for app, method, path in writes:
        headers = as_user(USER) if path.endswith("/bookings") else as_organizer()
        if content_type:
            headers["Content-Type"] = content_type
        r = testing.TestClient(app).simulate_request(method, path, body=b'{"Seats": 1}', headers=headers)
        assert_problem(r, 415)


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "99999999999999999999999"])
def test_a_bad_content_length_gets_a_problem(writes: list[tuple[Any, str, str]], length: str) -> None:
    """Called as a WSGI server would, since the test client refuses to send such a header."""
    for app, method, path in writes:
        headers = as_user(USER) if path.endswith("/bookings") else as_organizer()
        env = testing.create_environ(path, method=method, headers={**headers, "Content-Type": "application/json"})
        env["CONTENT_LENGTH"] = length
        env["wsgi.input"] = io.BytesIO(b"{}")
        status, content_type, body = _wsgi_call(app, env)
        assert status.startswith("4"), (status, body)
        assert content_type == "application/problem+json"


def _wsgi_call(app: Any, env: dict[str, Any]) -> tuple[str, str, bytes]:
    """``app``'s status line, Content-Type and body for ``env``."""
    got: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        got.append(status)
        got.extend(v for k, v in headers if k.lower() == "content-type")

    body = b"".join(app(env, start_response))
    return got[0], got[1], body


def test_a_huge_path_gets_a_problem(targets: dict[str, Target]) -> None:
    for target in targets.values():
        for path in ("/events/" + "x" * 100_000, "/events/" + "%ff" * 1000, "/events/%00/%00"):
            r = testing.TestClient(target.app).simulate_get(path, headers=as_organizer())
            assert_problem(r, 404)


#: The checks of the stateful phase: no 5xx, and every response as the document declares it.
STATEFUL_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
STATEFUL_SETTINGS = hypothesis.settings(
    max_examples=15, stateful_step_count=8, deadline=None, derandomize=True, database=None
)


#: Operations whose success in the stateful phase shows that a link was followed: their path ID came from an
#: earlier response (a generated ID names nothing, and the seeded event is not one of their IDs).
LINKED = {
    "events": {"GET /locations/{id} -> 200", "GET /events/{id} -> 200", "PATCH /events/{id} -> 200"},
    "booking": {"GET /bookings/{id} -> 200", "DELETE /bookings/{id} -> 200"},
}
SEEDED_EVENT = "seq-event"


def _seed_booking(svc: Any) -> None:
    """A location and an event on the booking service's bus, and wait until its copy has them."""
    emitter = svc.backends.broker.emitter()
    emitter.emit(contracts.LocationCreated("seq-loc", "Hall", "", "", [contracts.Hall("a", "", 1000)]), key="seq-loc")
    when = datetime(2027, 1, 1, tzinfo=UTC)
    emitter.emit(contracts.EventCreated(SEEDED_EVENT, "Seq", "seq-loc", when, when), key=SEEDED_EVENT)
    known_to_booking(testing.TestClient(svc.app), SEEDED_EVENT)


@pytest.mark.parametrize(("service", "schema"), [("events", events_schema), ("booking", booking_schema)])
def test_stateful_sequences(service: str, schema: Any) -> None:
    """schemathesis' stateful phase: sequences of calls, each using what earlier responses returned (the IDs of
    what a POST made); no 5xx and no response outside the document. Each sequence runs on services of its own,
    so that a sequence Hypothesis replays meets the same state. The event service is called as an organizer;
    the booking service as the user whose bookings they are, on an event seeded on its bus (a generated event
    ID is replaced by it when its length is even, as in the stateless runs)."""
    make = events.create_service if service == "events" else booking.create_service
    seen: set[str] = set()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            name = pubsubkit.new_id()
            config = make_config(service, f"memory://seq-bus-{name}", f"memory://seq-store-{name}")  # type: ignore[arg-type]
            self.service = make(config).start()
            if service == "booking":
                _seed_booking(self.service)

        def teardown(self) -> None:
            self.service.close()

        def before_call(self, case: Case[Any]) -> None:
            params = case.path_parameters
            if service == "booking" and case.path.startswith("/events/") and params:
                event_id = params.get("id")
                if isinstance(event_id, str) and len(event_id) % 2 == 0:
                    params["id"] = SEEDED_EVENT
            if service == "booking" and case.path == "/users/{id}/bookings" and params:
                params["id"] = USER

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            headers = as_organizer() if service == "events" else as_user(USER)
            return {"app": self.service.app, "headers": headers}

        def validate_response(
            self, response: Any, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            seen.add(f"{case.operation.label} -> {response.status_code}")
            case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=STATEFUL_SETTINGS)
    assert seen & LINKED[service], f"no sequence followed a link; responses seen: {sorted(seen)}"
