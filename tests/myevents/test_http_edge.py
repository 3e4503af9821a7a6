"""The HTTP edge of the services on real processes (``myevents serve``), over raw sockets: cut-off bodies,
duplicate keys, refused bodies on keep-alive connections, and the refusals gunicorn makes by itself."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from myevents_procs import Proc, call, free_port, wait_ready
from myevents_support import TEST_SECRET, as_organizer, as_user, wait_for

from myevents.edge import request_complete


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int, int]]:
    """Both services of one ``myevents serve`` on SQLite: their base URLs and ports."""
    tmp = tmp_path_factory.mktemp("edge")
    ev_port, bk_port = free_port(), free_port()
    proc = Proc(
        tmp,
        "serve",
        "serve",
        "--event-bind",
        f"127.0.0.1:{ev_port}",
        "--booking-bind",
        f"127.0.0.1:{bk_port}",
        "--data-dir",
        str(tmp / "data"),
        env={"MYEVENTS_JWT_SECRET": TEST_SECRET},
    )
    ev, bk = f"http://127.0.0.1:{ev_port}", f"http://127.0.0.1:{bk_port}"
    try:
        wait_ready(ev, proc)
        wait_ready(bk, proc)
        yield ev, bk, ev_port, bk_port
    finally:
        proc.stop(timeout=30)


@pytest.fixture(scope="module")
def event_id(served: tuple[str, str, int, int]) -> str:
    """An event with 100 seats that the booking service knows."""
    ev, bk, _, _ = served
    _, loc, _ = call(
        "POST", ev + "/locations", {"Name": "Hall", "Halls": [{"name": "a", "capacity": 100}]}, as_organizer()
    )
    body = {"Name": "Edge", "StartDate": 1_800_000_000, "EndDate": 1_800_007_200, "Location": {"ID": loc["ID"]}}
    _, event, _ = call("POST", ev + "/events", body, as_organizer())
    wait_for(lambda: call("GET", f"{bk}/events/{event['ID']}")[1].get("Capacity") == 100, timeout=20, what="copy")
    return str(event["ID"])


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(sock: socket.socket, request: bytes, *, shut: bool = False) -> Response:
    """Send ``request`` and read one response (by its Content-Length)."""
    sock.sendall(request)
    if shut:
        sock.shutdown(socket.SHUT_WR)
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
        head, sep, body = raw.partition(b"\r\n\r\n")
        found = re.search(rb"content-length: *(\d+)", head, re.I)
        if sep and found and len(body) >= int(found.group(1)):
            break
    return Response(raw)


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_a_cut_off_body_is_refused_and_books_nothing(served: tuple[str, str, int, int], event_id: str) -> None:
    _, bk, _, bk_port = served
    headers = {**as_user("cutoff"), "Content-Type": "application/json", "Content-Length": "100"}
    with connect(bk_port) as sock:
        got = exchange(sock, request("POST", f"/events/{event_id}/bookings", b'{"seats": 1}', headers), shut=True)
    assert got.status == 400
    assert got.headers["content-type"] == "application/problem+json"
    assert "ended after 12 of the 100 bytes" in got.json()["detail"]
    assert call("GET", f"{bk}/users/cutoff/bookings", headers=as_user("cutoff"))[1] == []


@pytest.mark.parametrize(
    ("service", "path", "body", "field"),
    [
        ("booking", "/events/{id}/bookings", b'{"seats": -5, "seats": 1}', "seats"),
        ("events", "/locations", b'{"Name": "a", "Halls": [{"name": "x", "capacity": 1}], "Name": "b"}', "Name"),
        (
            "events",
            "/locations",
            b'{"Name": "a", "Halls": [{"name": "x", "name": "y", "capacity": 1}]}',
            "Halls[0].name",
        ),
    ],
)
def test_a_key_given_twice_is_refused(
    served: tuple[str, str, int, int], event_id: str, service: str, path: str, body: bytes, field: str
) -> None:
    _, _, ev_port, bk_port = served
    auth = as_user("twice") if service == "booking" else as_organizer()
    headers = {**auth, "Content-Type": "application/json", "Content-Length": str(len(body))}
    with connect(bk_port if service == "booking" else ev_port) as sock:
        got = exchange(sock, request("POST", path.format(id=event_id), body, headers))
    assert got.status == 422
    assert {"field": field, "reason": "given twice"} in got.json()["errors"]


def test_a_refused_body_closes_the_connection_it_left_unread(served: tuple[str, str, int, int]) -> None:
    """A 413 (or a 401 before the body is read) says Connection: close; a body that was read keeps it alive."""
    _, _, ev_port, _ = served
    big = b'{"Name": "' + b"x" * 70_000 + b'"}'
    headers = {**as_organizer(), "Content-Type": "application/json", "Content-Length": str(len(big))}
    with connect(ev_port) as sock:
        got = exchange(sock, request("POST", "/locations", big, headers))
        assert got.status == 413
        assert got.headers["connection"] == "close"
        assert sock.recv(1) == b"", "the server did not close the connection it said it would"
    with connect(ev_port) as sock:
        got = exchange(sock, request("POST", "/locations", big, {"Content-Length": str(len(big))}))
        assert (got.status, got.headers["connection"]) == (401, "close")
    small = b'{"Name": "Kept", "Halls": [{"name": "a", "capacity": 1}]}'
    headers = {**as_organizer(), "Content-Type": "application/json", "Content-Length": str(len(small))}
    with connect(ev_port) as sock:
        assert exchange(sock, request("POST", "/locations", small, headers)).status == 201
        again = exchange(sock, request("GET", "/health"))
        assert again.status == 200, "a fully read request's connection was not kept"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request("GET", "/health", headers={"Authorization": "Bearer " + "a" * 9000}), 431),
        (request("GET", "/" + "a" * 5000), 414),
        (request("GET", "/health", headers={"Content-Length": "-1"}), 400),
        (request("POST", "/health", b"0\r\n\r\n", {"Content-Length": "5", "Transfer-Encoding": "chunked"}), 400),
    ],
    ids=["header-too-large", "uri-too-long", "negative-length", "length-and-chunked"],
)
def test_the_servers_own_refusals_are_problem_documents(
    served: tuple[str, str, int, int], raw: bytes, status: int
) -> None:
    for port in served[2:]:
        with connect(port) as sock:
            got = exchange(sock, raw)
        assert got.status == status
        assert got.headers["content-type"] == "application/problem+json"
        problem = got.json()
        assert (problem["status"], problem["type"]) == (status, "about:blank")
        assert problem["title"]


def test_the_services_still_answer(served: tuple[str, str, int, int], tmp_path: Path) -> None:
    ev, bk, _, _ = served
    assert call("GET", ev + "/health")[0] == 200
    assert call("GET", bk + "/health")[0] == 200


def test_slow_clients_hold_no_thread(served: tuple[str, str, int, int], event_id: str) -> None:
    """200 connections per service sending their request slowly (a head never finished, or a head and the start
    of a body) hold no thread: /health on both and a booking still answer. The latencies are printed (run with
    -s to see them), not asserted."""
    ev, bk, ev_port, bk_port = served
    slow: list[socket.socket] = []
    partial_body = request(
        "POST", f"/events/{event_id}/bookings", b"{", {"Content-Type": "application/json", "Content-Length": "100"}
    )
    try:
        for port in (ev_port, bk_port):
            for i in range(200):
                sock = connect(port)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n" if i % 2 else partial_body)
                slow.append(sock)
        took: list[float] = []
        for _ in range(10):
            start = time.monotonic()
            assert call("GET", ev + "/health")[0] == 200
            assert call("GET", bk + "/health")[0] == 200
            status, _, _ = call("POST", f"{bk}/events/{event_id}/bookings", {"seats": 1}, as_user("patient"))
            assert status == 201
            took.append(time.monotonic() - start)
        print(
            f"\n400 slow connections held: two /health and a booking took {1000 * min(took):.0f} ms at best,"
            f" {1000 * sorted(took)[len(took) // 2]:.0f} ms median, {1000 * max(took):.0f} ms at worst"
        )
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize(
    ("raw", "complete"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", False),
        (b"POST /x HTTP/1.1\r\ncontent-length:  5 \r\n\r\nabcde", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: many\r\n\r\n", True),
        (b"POST /x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n" + b"x" * 70_000, True),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", False),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", True),
        (b"GET /" + b"a" * 70_000, True),
    ],
)
def test_when_a_buffered_request_is_handed_to_a_thread(raw: bytes, complete: bool) -> None:
    assert request_complete(raw) is complete
