"""The web front end's routes: its static files, its config.json, the redirect to it, and CORS on the booking
service for the pages' origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from falcon import testing
from myevents_support import TEST_SECRET

from myevents import booking, config, events
from myevents.cli import _origins
from myevents.web.ui import FILES
from pubsubkit import ConfigError

ORIGIN = "http://localhost:8181"


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_static_files_are_served_with_their_type(events_client: testing.TestClient, name: str) -> None:
    r = events_client.simulate_get(f"/ui/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == FILES[name]
    assert r.headers["cache-control"] == "no-cache"
    assert r.content == (Path(events.__file__).parent.parent / "web" / "ui" / name).read_bytes()


def test_the_page_is_at_ui_slash(events_client: testing.TestClient) -> None:
    r = events_client.simulate_get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in r.text
    assert 'aria-live="polite"' in r.text
    assert "<main" in r.text
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self' http://localhost:8282;" in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    for other in ("/ui", "/"):
        r = events_client.simulate_get(other)
        assert (r.status_code, r.headers["location"]) == (302, "/ui/"), other


def test_an_unknown_file_is_404(events_client: testing.TestClient) -> None:
    r = events_client.simulate_get("/ui/secret.txt")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_config_json_gives_the_booking_url(events_client: testing.TestClient) -> None:
    assert events_client.simulate_get("/ui/config.json").json == {"bookingUrl": "http://localhost:8282"}


def test_the_booking_url_is_configured_by_variable_or_flag(urls: dict[str, str]) -> None:
    env = {"MYEVENTS_BOOKING_URL": "https://book.example.org/"}
    assert config.load("events", env=env).booking_url == "https://book.example.org"
    assert config.load("events", env=env, booking_url="http://h:1").booking_url == "http://h:1"
    with pytest.raises(ConfigError, match="MYEVENTS_BOOKING_URL"):
        config.load("events", env={"MYEVENTS_BOOKING_URL": "book.example.org"})
    env = {"MYEVENTS_UI_ORIGINS": "http://a:1, https://b"}
    assert config.load("booking", env=env).ui_origins == ("http://a:1", "https://b")
    assert config.load("booking", env=env, ui_origins="http://c:2").ui_origins == ("http://c:2",)


def test_the_origins_of_serve_name_this_machine_both_ways() -> None:
    assert _origins("http://localhost:8181") == ["http://localhost:8181", "http://127.0.0.1:8181"]
    assert _origins("https://127.0.0.1:9") == ["https://127.0.0.1:9", "https://localhost:9"]
    assert _origins("http://events.example.org:80") == ["http://events.example.org:80"]


def test_the_booking_service_answers_a_preflight_from_the_pages(booking_client: testing.TestClient) -> None:
    r = booking_client.simulate_options(
        "/events/x/bookings",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


def test_the_booking_service_answers_cors_on_requests_and_problems(booking_client: testing.TestClient) -> None:
    r = booking_client.simulate_get("/events/nowhere", headers={"Origin": ORIGIN})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Correlation-ID" in r.headers["access-control-expose-headers"]
    r = booking_client.simulate_get("/users/alice/bookings", headers={"Origin": "http://127.0.0.1:8181"})
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (200, "http://127.0.0.1:8181")


def test_other_origins_get_no_cors_headers(booking_client: testing.TestClient) -> None:
    r = booking_client.simulate_get("/users/alice/bookings", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_the_configured_origins_are_the_allowed_ones(urls: dict[str, str]) -> None:
    env = {
        "MYEVENTS_BROKER_URL": urls["bus"],
        "MYEVENTS_STORE_URL": urls["booking"],
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        "MYEVENTS_UI_ORIGINS": "https://events.example.org",
    }
    svc = booking.create_service(config.load("booking", env=env))
    try:
        client = testing.TestClient(svc.app)
        r = client.simulate_get("/health", headers={"Origin": "https://events.example.org"})
        assert r.headers["access-control-allow-origin"] == "https://events.example.org"
        assert "access-control-allow-origin" not in client.simulate_get("/health", headers={"Origin": ORIGIN}).headers
    finally:
        svc.close()
