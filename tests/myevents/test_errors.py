"""Every error is a problem document with the right status; nothing a client sends causes a 500."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from myevents_support import known_to_booking, new_event, new_location

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(r: testing.Result, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = r.json
    assert set(doc) >= PROBLEM_KEYS
    assert doc["status"] == status
    return doc


@pytest.fixture
def event_id(events_client: testing.TestClient, booking_client: testing.TestClient) -> str:
    ev = new_event(events_client, new_location(events_client)["ID"])
    known_to_booking(booking_client, ev["ID"])
    return str(ev["ID"])


@pytest.fixture
def writes(
    events_client: testing.TestClient, booking_client: testing.TestClient, event_id: str
) -> list[tuple[testing.TestClient, str, str]]:
    """Every route taking a JSON body: (client, method, path)."""
    return [
        (events_client, "POST", "/events"),
        (events_client, "PATCH", f"/events/{event_id}"),
        (events_client, "POST", "/locations"),
        (booking_client, "POST", f"/events/{event_id}/bookings"),
    ]


def test_400_for_malformed_or_empty_json(writes: list[tuple[testing.TestClient, str, str]]) -> None:
    for client, method, path in writes:
        for body in ("{", "", "   ", '{"a": 1,}', "NaN", '"\\ud800"', "[" * 2000, b"\xff\xfe"):
            r = client.simulate_request(method, path, body=body, content_type="application/json")
            assert_problem(r, 400)


def test_415_for_other_content_types(writes: list[tuple[testing.TestClient, str, str]]) -> None:
    for client, method, path in writes:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
            headers = {"Content-Type": ctype} if ctype else {}
            r = client.simulate_request(method, path, body="{}", headers=headers)
            doc = assert_problem(r, 415)
            assert "application/json" in doc["detail"]


def test_413_by_content_length_and_by_what_was_sent(writes: list[tuple[testing.TestClient, str, str]]) -> None:
    big = json.dumps({"Name": "x" * 70_000})
    for client, method, path in writes:
        r = client.simulate_request(method, path, body=big, content_type="application/json")
        assert_problem(r, 413)
        # No Content-Length (a chunked body): the limit holds on what is actually read.
        r = client.simulate_request(
            method,
            path,
            content_type="application/json",
            extras={"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(big.encode()), "wsgi.input_terminated": True},
        )
        assert_problem(r, 413)
        r = client.simulate_request(
            method, path, content_type="application/json", headers={"Content-Length": "99999999999"}
        )
        assert_problem(r, 413)


def test_422_lists_every_bad_field(events_client: testing.TestClient) -> None:
    body = {
        "Name": "",
        "Halls": [{"name": "a", "capacity": 0}, {"capacity": "9"}, "hall"],
        "OpenTime": 25,
        "Colour": "red",
        "name": "twice",
    }
    doc = assert_problem(events_client.simulate_post("/locations", json=body), 422)
    assert doc["type"] == "urn:myevents:problem:invalid-fields"
    assert doc["errors"] == [
        {"field": "Name", "reason": "must not be empty"},
        {"field": "Halls[0].capacity", "reason": "must be between 1 and 1000000"},
        {"field": "Halls[1].capacity", "reason": "must be an integer"},
        {"field": "Halls[1].name", "reason": "is required"},
        {"field": "Halls[2]", "reason": "must be a JSON object"},
        {"field": "OpenTime", "reason": "must be between 0 and 24"},
        {"field": "Colour", "reason": "unknown field"},
        {"field": "name", "reason": "given twice (as 'Name' too; names are case-insensitive)"},
    ]


def test_422_for_a_body_that_is_not_an_object(writes: list[tuple[testing.TestClient, str, str]]) -> None:
    for client, method, path in writes:
        for body in ("[]", "1", "null", '"text"'):
            doc = assert_problem(client.simulate_request(method, path, body=body, content_type="application/json"), 422)
            assert doc["errors"] == [{"field": "", "reason": "must be a JSON object"}]


def test_422_for_missing_and_mistyped_event_fields(events_client: testing.TestClient) -> None:
    doc = assert_problem(events_client.simulate_post("/events", json={"StartDate": -1, "EndDate": 1.5}), 422)
    assert doc["errors"] == [
        {"field": "StartDate", "reason": "must be between 0 and 253402300799"},
        {"field": "EndDate", "reason": "must be an integer"},
        {"field": "Name", "reason": "is required"},
        {"field": "Location", "reason": "is required"},
    ]
    doc = assert_problem(
        events_client.simulate_post("/events", json={"Name": "x", "StartDate": 1, "EndDate": 2, "Location": {"id": 5}}),
        422,
    )
    assert doc["errors"] == [{"field": "Location.ID", "reason": "must be a string"}]
    doc = assert_problem(events_client.simulate_post("/locations", json={"Name": "x", "ID": "no spaces"}), 422)
    assert doc["errors"] == [{"field": "ID", "reason": "must be letters, digits, _ and -"}]


def test_a_number_without_a_fraction_is_an_integer(
    events_client: testing.TestClient, booking_client: testing.TestClient, event_id: str
) -> None:
    """JSON Schema, and so the OpenAPI documents, count 2.0 and 2e3 as integers: so do the services."""
    r = events_client.simulate_post(
        "/locations", json={"Name": "x", "OpenTime": 8.0, "Halls": [{"name": "a", "capacity": 2e3}]}
    )
    assert r.status_code == 201, r.text
    assert (r.json["OpenTime"], r.json["Halls"][0]["capacity"]) == (8, 2000)
    assert isinstance(r.json["OpenTime"], int)
    r = booking_client.simulate_post(f"/events/{event_id}/bookings", json={"seats": 1.0})
    assert r.status_code == 201, r.text
    assert r.json["Seats"] == 1
    for seats in (1.5, 1e300):
        doc = assert_problem(booking_client.simulate_post(f"/events/{event_id}/bookings", json={"seats": seats}), 422)
        assert doc["errors"][0]["field"] == "Seats"


def test_the_documents_and_the_decoder_agree_on_blank_text(events_client: testing.TestClient) -> None:
    """Blank is what str.strip removes (NEL, U+3000 too); the documents spell that out, since \\S is not the same
    in every regex engine."""
    doc = events_client.simulate_get("/openapi.json").json
    pattern = re.compile(doc["components"]["schemas"]["LocationRequest"]["properties"]["Name"]["pattern"])
    assert "\\S" not in pattern.pattern
    for name in ("\x85", "\u3000 \t", "\x1f", "a", "\x85a"):
        r = events_client.simulate_post("/locations", json={"Name": name})
        assert (r.status_code == 201) == bool(pattern.search(name)), (name, r.text)
        if r.status_code != 201:
            assert assert_problem(r, 422)["errors"] == [{"field": "Name", "reason": "must not be empty"}]


def test_404_and_405_are_problems_too(events_client: testing.TestClient, booking_client: testing.TestClient) -> None:
    doc = assert_problem(events_client.simulate_get("/nowhere"), 404)
    assert doc["detail"] == "nothing at /nowhere"
    r = events_client.simulate_put("/events")
    doc = assert_problem(r, 405)
    assert r.headers["allow"] == "GET, POST, OPTIONS"
    assert doc["detail"].startswith("PUT is not allowed on /events")
    assert_problem(events_client.simulate_delete("/locations"), 405)
    assert_problem(booking_client.simulate_put("/bookings/x"), 405)
    assert_problem(booking_client.simulate_post("/users/u/bookings", json={}), 405)
    assert_problem(booking_client.simulate_get("/events/a/b/c"), 404)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["Name", "name", "ID", "StartDate", "EndDate", "Duration", "Location", "Halls", "OpenTime", "seats", "userId"]
)
near_valid = st.dictionaries(field_names, json_values, max_size=6)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | near_valid)
def test_no_json_body_causes_a_server_error(writes: list[tuple[testing.TestClient, str, str]], body: Any) -> None:
    for client, method, path in writes:
        r = client.simulate_request(method, path, json=body)
        assert r.status_code < 500, (path, body, r.text)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_no_bytes_cause_a_server_error(writes: list[tuple[testing.TestClient, str, str]], raw: bytes) -> None:
    for client, method, path in writes:
        r = client.simulate_request(method, path, body=raw, content_type="application/json")
        assert r.status_code < 500, (path, raw, r.text)
