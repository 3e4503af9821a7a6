"""Access control: who may call what, by signed tokens; the token command; the secret's configuration."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import jwt
import pytest
from falcon import testing
from myevents_support import TEST_AUTH, TEST_SECRET, as_organizer, as_user, bearer, known_to_booking, token
from myevents_support import new_event as create_event
from myevents_support import new_location as create_location

from myevents import cli, config
from myevents.runtime import Service
from myevents.web import auth
from myevents.web.problems import Problem
from pubsubkit import ConfigError

Headers = dict[str, str]


@pytest.fixture(autouse=True)
def _no_outside_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token command reads the process's variables: none of the caller's may leak in."""
    for name in list(os.environ):
        if name.startswith("MYEVENTS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def anonymous_events(events_service: Service) -> testing.TestClient:
    return testing.TestClient(events_service.app)


@pytest.fixture
def anonymous_booking(booking_service: Service) -> testing.TestClient:
    return testing.TestClient(booking_service.app)


@pytest.fixture
def event_id(events_client: testing.TestClient, booking_client: testing.TestClient) -> str:
    ev = create_event(events_client, create_location(events_client, 10)["ID"])
    known_to_booking(booking_client, ev["ID"])
    return str(ev["ID"])


@pytest.fixture
def ann_booking(booking_client: testing.TestClient, event_id: str) -> dict[str, Any]:
    r = booking_client.simulate_post(f"/events/{event_id}/bookings", json={"seats": 2}, headers=as_user("ann"))
    assert r.status_code == 201, r.text
    return dict(r.json)


def assert_401(r: testing.Result) -> dict[str, Any]:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith('Bearer realm="myevents"')
    doc: dict[str, Any] = r.json
    assert (doc["status"], doc["type"]) == (401, "urn:myevents:problem:unauthorized")
    return doc


def assert_403(r: testing.Result) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["type"] == "urn:myevents:problem:forbidden"


def protected(event_id: str, booking_id: str) -> list[tuple[str, str, str, Any]]:
    """Every route needing a token: (service, method, path, body)."""
    location = {"Name": "Hall", "Halls": [{"name": "h", "capacity": 1}]}
    event = {"Name": "x", "StartDate": 1, "EndDate": 2, "Location": {"ID": "l"}}
    return [
        ("events", "POST", "/locations", location),
        ("events", "PATCH", "/locations/l", {"Name": "y"}),
        ("events", "DELETE", "/locations/l", None),
        ("events", "POST", "/events", event),
        ("events", "PATCH", f"/events/{event_id}", {"Name": "y"}),
        ("events", "DELETE", f"/events/{event_id}", None),
        ("booking", "POST", f"/events/{event_id}/bookings", {"seats": 1}),
        ("booking", "GET", f"/events/{event_id}/bookings", None),
        ("booking", "GET", "/users/ann/bookings", None),
        ("booking", "GET", f"/bookings/{booking_id}", None),
        ("booking", "DELETE", f"/bookings/{booking_id}", None),
    ]


def _expired() -> str:
    return auth.issue(TEST_AUTH, "organizer", "organizer", 60, now=1_000_000)


def _bad_tokens() -> dict[str, str]:
    other = auth.AuthSettings(b"another-secret-that-is-long-enough-0123456789", "myevents")
    now = 1_900_000_000
    claims = {"sub": "ann", "role": "user", "iss": "myevents", "exp": now}
    return {
        "garbage": "not.a.token",
        "empty parts": "..",
        "another secret": auth.issue(other, "organizer", "organizer", 3600),
        "expired": _expired(),
        "another issuer": auth.issue(auth.AuthSettings(TEST_AUTH.secret, "someone-else"), "organizer", "x", 3600),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_AUTH.secret),
        "unknown role": jwt.encode({**claims, "role": "admin"}, TEST_AUTH.secret),
        "bad subject": jwt.encode({**claims, "sub": "a b"}, TEST_AUTH.secret),
        "alg none": jwt.encode({**claims, "role": "organizer"}, None, algorithm="none"),
    }


def test_401_without_a_token_on_every_protected_route(
    anonymous_events: testing.TestClient, anonymous_booking: testing.TestClient, event_id: str, ann_booking: Any
) -> None:
    clients = {"events": anonymous_events, "booking": anonymous_booking}
    for service, method, path, body in protected(event_id, ann_booking["ID"]):
        doc = assert_401(clients[service].simulate_request(method, path, json=body))
        assert "Authorization: Bearer" in doc["detail"], path


@pytest.mark.parametrize("kind", sorted(_bad_tokens()))
def test_401_with_a_bad_token_that_is_never_repeated(
    kind: str, anonymous_events: testing.TestClient, anonymous_booking: testing.TestClient, event_id: str
) -> None:
    bad = _bad_tokens()[kind]
    for client, method, path, body in (
        (anonymous_events, "POST", "/locations", {"Name": "Hall"}),
        (anonymous_booking, "POST", f"/events/{event_id}/bookings", {"seats": 1}),
        (anonymous_booking, "GET", "/users/ann/bookings", None),
    ):
        r = client.simulate_request(method, path, json=body, headers=bearer(bad))
        doc = assert_401(r)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert bad not in r.text
        assert TEST_SECRET not in r.text
        if kind == "expired":
            assert doc["detail"] == "the token has expired; get a new one"
        if kind == "another issuer":
            assert doc["detail"] == "the token is from another issuer"
    assert anonymous_booking.simulate_get(f"/events/{event_id}").status_code == 200  # public routes ignore it


@pytest.mark.parametrize("header", ["Basic YW5uOnB3", "Bearer", "Bearer ", "token-without-scheme"])
def test_401_for_an_authorization_header_that_is_not_a_bearer_token(
    header: str, anonymous_events: testing.TestClient
) -> None:
    assert_401(anonymous_events.simulate_post("/locations", json={"Name": "x"}, headers={"Authorization": header}))


def test_the_scheme_is_case_insensitive(anonymous_events: testing.TestClient) -> None:
    r = anonymous_events.simulate_post(
        "/locations", json={"Name": "x"}, headers={"Authorization": f"bearer {token('organizer')}"}
    )
    assert r.status_code == 201


def test_reads_of_events_and_locations_and_the_operations_routes_are_public(
    anonymous_events: testing.TestClient, anonymous_booking: testing.TestClient, event_id: str
) -> None:
    for path in ("/events", f"/events/{event_id}", f"/events/id/{event_id}", "/locations"):
        assert anonymous_events.simulate_get(path).status_code == 200, path
    assert anonymous_booking.simulate_get(f"/events/{event_id}").status_code == 200
    for client in (anonymous_events, anonymous_booking):
        for path in ("/health", "/ready", "/metrics", "/openapi.json", "/asyncapi.json"):
            assert client.simulate_get(path).status_code == 200, path


def test_a_user_may_not_create_or_change_events_and_locations(
    anonymous_events: testing.TestClient, events_client: testing.TestClient, event_id: str
) -> None:
    ann = as_user("ann")
    loc = create_location(events_client)
    for method, path, body in (
        ("POST", "/locations", {"Name": "Hall"}),
        ("PATCH", f"/locations/{loc['ID']}", {"Name": "y"}),
        ("DELETE", f"/locations/{loc['ID']}", None),
        ("POST", "/events", {"Name": "x", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}}),
        ("PATCH", f"/events/{event_id}", {"Name": "y"}),
        ("DELETE", f"/events/{event_id}", None),
    ):
        assert_403(anonymous_events.simulate_request(method, path, json=body, headers=ann))
    assert anonymous_events.simulate_get(f"/events/{event_id}").json["Cancelled"] is False
    locations = anonymous_events.simulate_get("/locations").json
    assert (len(locations), any(x["Cancelled"] for x in locations)) == (2, False)


def test_a_user_sees_and_cancels_only_their_own_bookings(
    anonymous_booking: testing.TestClient, event_id: str, ann_booking: dict[str, Any]
) -> None:
    ann, bob = as_user("ann"), as_user("bob")
    path = f"/bookings/{ann_booking['ID']}"
    assert_403(anonymous_booking.simulate_get(path, headers=bob))
    assert_403(anonymous_booking.simulate_delete(path, headers=bob))
    assert_403(anonymous_booking.simulate_get("/users/ann/bookings", headers=bob))
    assert_403(anonymous_booking.simulate_get(f"/events/{event_id}/bookings", headers=ann))
    assert anonymous_booking.simulate_get(f"/events/{event_id}").json["SeatsLeft"] == 8  # still booked
    assert anonymous_booking.simulate_get("/users/bob/bookings", headers=bob).json == []
    assert anonymous_booking.simulate_get("/users/ann/bookings", headers=ann).json == [ann_booking]
    assert anonymous_booking.simulate_get(path, headers=ann).json == ann_booking
    # An unknown booking is 404 for anyone with a token.
    assert anonymous_booking.simulate_get("/bookings/nope", headers=bob).status_code == 404
    assert anonymous_booking.simulate_delete(path, headers=ann).status_code == 200


def test_an_organizer_sees_and_cancels_any_booking(
    anonymous_booking: testing.TestClient, event_id: str, ann_booking: dict[str, Any]
) -> None:
    org = as_organizer()
    assert anonymous_booking.simulate_get("/users/ann/bookings", headers=org).json == [ann_booking]
    assert anonymous_booking.simulate_get(f"/events/{event_id}/bookings", headers=org).json == [ann_booking]
    r = anonymous_booking.simulate_delete(f"/bookings/{ann_booking['ID']}", headers=org)
    assert (r.status_code, r.json["Cancelled"], r.json["UserID"]) == (200, True, "ann")


def test_the_user_of_a_booking_comes_from_the_token(
    anonymous_booking: testing.TestClient, event_id: str, user: Callable[[str], Headers]
) -> None:
    path = f"/events/{event_id}/bookings"
    r = anonymous_booking.simulate_post(path, json={"seats": 1}, headers=user("ann"))
    assert (r.status_code, r.json["UserID"]) == (201, "ann")
    # The original's userId is still accepted when it names the token's subject (in any case of the field name).
    r = anonymous_booking.simulate_post(path, json={"seats": 1, "UserID": "ann"}, headers=user("ann"))
    assert (r.status_code, r.json["UserID"]) == (201, "ann")
    # Naming someone else is refused, and books nothing.
    r = anonymous_booking.simulate_post(path, json={"seats": 1, "userId": "bob"}, headers=user("ann"))
    assert_403(r)
    assert "userId" in r.json["detail"]
    assert anonymous_booking.simulate_get("/users/bob/bookings", headers=as_organizer()).json == []
    assert anonymous_booking.simulate_get(f"/events/{event_id}").json["SeatsLeft"] == 8
    # An organizer books as itself too.
    r = anonymous_booking.simulate_post(path, json={"seats": 1}, headers=as_organizer())
    assert (r.status_code, r.json["UserID"]) == (201, "organizer")


def test_an_audience_is_checked_when_configured(tmp_path: Path) -> None:
    env = {"MYEVENTS_JWT_SECRET": TEST_SECRET, "MYEVENTS_JWT_AUDIENCE": "myevents-api"}
    settings = auth.settings(config.load("events", env=env, data_dir=str(tmp_path)))
    assert settings.audience == "myevents-api"
    good = auth.issue(settings, "user", "ann", 60)
    assert auth.verify(settings, good) == auth.Principal("ann", "user")
    for other in (TEST_AUTH, auth.AuthSettings(TEST_AUTH.secret, "myevents", "elsewhere")):
        with pytest.raises(Problem) as err:
            auth.verify(settings, auth.issue(other, "user", "ann", 60))
        assert err.value.status_code == 401
    # Without a configured audience a token's aud is not checked.
    assert auth.verify(TEST_AUTH, good).subject == "ann"


def test_neither_secret_nor_token_is_logged(
    caplog: pytest.LogCaptureFixture,
    anonymous_events: testing.TestClient,
    anonymous_booking: testing.TestClient,
    event_id: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    used = [token("organizer"), token("user", "ann"), *_bad_tokens().values()]
    for t in used:
        anonymous_events.simulate_post("/locations", json={"Name": "Hall"}, headers=bearer(t))
        anonymous_booking.simulate_post(f"/events/{event_id}/bookings", json={"seats": 1}, headers=bearer(t))
        anonymous_booking.simulate_get("/users/ann/bookings", headers=bearer(t))
    assert caplog.records  # the access log saw every request
    logged = caplog.text + "".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    for secret in (TEST_SECRET, *used):
        assert secret not in logged


# --- the token command ---------------------------------------------------------------------------------------


def run_token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["token", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_token_command_prints_just_a_token_the_services_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYEVENTS_JWT_SECRET", TEST_SECRET)
    code, out, err = run_token(capsys, "user", "ann", "--data-dir", str(tmp_path))
    assert (code, err, out.count("\n")) == (0, "", 1)
    assert auth.verify(TEST_AUTH, out.strip()) == auth.Principal("ann", "user")
    code, out, _ = run_token(capsys, "organizer", "--ttl", "30m", "--data-dir", str(tmp_path))
    assert auth.verify(TEST_AUTH, out.strip()) == auth.Principal("organizer", "organizer")
    claims = jwt.decode(out.strip(), TEST_SECRET, algorithms=["HS256"], issuer="myevents")
    assert claims["exp"] - claims["iat"] == 1800
    assert not (tmp_path / auth.SECRET_FILE).exists()  # a configured secret leaves the data dir alone


def test_the_token_command_takes_issuer_and_secret_from_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"jwt_secret": TEST_SECRET, "jwt_issuer": "me.example"}))
    code, out, _ = run_token(capsys, "user", "bob", "--ttl", "2h", "--config", str(path))
    assert code == 0
    claims = jwt.decode(out.strip(), TEST_SECRET, algorithms=["HS256"], issuer="me.example")
    assert (claims["sub"], claims["role"], claims["exp"] - claims["iat"]) == ("bob", "user", 7200)


def test_the_token_command_refuses_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    code, out, err = run_token(capsys, "user", "--data-dir", data)
    assert (code, out) == (2, "")
    assert "myevents token user NAME" in err
    assert run_token(capsys, "user", "a b", "--data-dir", data)[0] == 2
    for args in (["admin"], ["user", "ann", "--ttl", "soon"], ["user", "ann", "--ttl", "0"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["token", *args, "--data-dir", data])
        assert exit_.value.code == 2
    capsys.readouterr()


# --- the secret -------------------------------------------------------------------------------------------------


def test_without_a_configured_secret_one_is_made_once_in_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    cfg = config.load("booking", env={}, data_dir=str(data))
    assert cfg.jwt_secret is None
    first = auth.settings(cfg)
    secret_file = data / auth.SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(first.secret) >= auth.MIN_SECRET_BYTES
    assert auth.settings(config.load("events", env={}, data_dir=str(data))) == first
    assert os.listdir(data) == [auth.SECRET_FILE]  # no temporary file left behind
    # The token command signs with it, so a fresh machine needs no setup.
    code, out, _ = run_token(capsys, "user", "ann", "--data-dir", str(data))
    assert code == 0
    assert auth.verify(first, out.strip()).subject == "ann"
    assert first.secret.decode() not in repr(first)


def test_a_data_dir_where_no_secret_can_be_made_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"cannot make the token secret .* set MYEVENTS_JWT_SECRET"):
        auth.settings(config.load("events", env={}, data_dir=str(tmp_path / "file" / "data")))


def test_a_short_secret_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config.load("events", env={"MYEVENTS_JWT_SECRET": "too-short-secret"})
    message = str(err.value)
    assert message.startswith("MYEVENTS_JWT_SECRET is 16 bytes; HS256 needs at least 32")
    assert "secrets.token_urlsafe" in message
    assert "too-short-secret" not in message
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"jwt_secret": "x" * 31}))
    with pytest.raises(ConfigError, match=r"^config key jwt_secret is 31 bytes"):
        config.load("events", config_file=str(path), env={})
    (tmp_path / auth.SECRET_FILE).write_text("short\n")
    with pytest.raises(ConfigError, match=re.escape(f"the token secret in {tmp_path}/jwt-secret is 5 bytes")):
        auth.settings(config.load("events", env={}, data_dir=str(tmp_path)))


def test_the_variables_win_over_the_file_and_the_secret_is_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"jwt_secret": "f" * 40, "jwt_issuer": "file-issuer", "jwt_audience": "file-aud"}))
    env = {"MYEVENTS_JWT_SECRET": TEST_SECRET, "MYEVENTS_JWT_ISSUER": "env-issuer"}
    cfg = config.load("events", config_file=str(path), env=env)
    assert (cfg.jwt_secret, cfg.jwt_issuer, cfg.jwt_audience) == (TEST_SECRET, "env-issuer", "file-aud")
    assert TEST_SECRET not in repr(cfg)
    assert config.load("events", config_file=str(path), env={}).jwt_issuer == "file-issuer"
    assert config.load("events", env={}).jwt_issuer == "myevents"


def test_a_token_valid_for_longer_than_the_maximum_is_refused(events_client: testing.TestClient) -> None:
    """However well signed: a token whose expiry lies more than 30 days ahead (the year 10^22 here) gets 401."""
    forever = jwt.encode(
        {"sub": "mallory", "role": "organizer", "iss": TEST_AUTH.issuer, "iat": 0, "exp": 10**22},
        TEST_AUTH.secret,
        algorithm=auth.ALGORITHM,
    )
    r = events_client.simulate_post("/locations", json={"Name": "x", "Halls": []}, headers=bearer(forever))
    assert r.status_code == 401
    assert "valid for longer than the 2592000s this service accepts" in r.json["detail"]
    assert auth.verify(TEST_AUTH, token("user", "ann", ttl=29 * 86400)).subject == "ann"
    short = attrs.evolve(TEST_AUTH, max_lifetime=60)
    with pytest.raises(Problem):
        auth.verify(short, token("user", "ann", ttl=3600))


def test_the_maximum_lifetime_is_configurable_and_myevents_token_keeps_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"MYEVENTS_JWT_SECRET": TEST_SECRET, "MYEVENTS_JWT_MAX_LIFETIME": "3600"}
    assert config.load("events", env=env).jwt_max_lifetime == 3600
    with pytest.raises(ConfigError, match="MYEVENTS_JWT_MAX_LIFETIME: 'soon' is not a whole number of seconds"):
        config.load("events", env={**env, "MYEVENTS_JWT_MAX_LIFETIME": "soon"})
    os.environ.update(env)
    try:
        assert cli.main(["token", "user", "ann", "--ttl", "2h", "--data-dir", str(tmp_path)]) == 2
        assert "would be refused: the services accept at most 3600s" in capsys.readouterr().err
        assert cli.main(["token", "user", "ann", "--ttl", "30m", "--data-dir", str(tmp_path)]) == 0
    finally:
        for name in env:
            os.environ.pop(name)
