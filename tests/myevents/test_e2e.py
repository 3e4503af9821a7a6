"""The real thing: ``myevents`` processes under gunicorn on embedded SQLite in a temporary data directory.

The first test gives the services a secret through the environment; ``serve`` runs on the data directory's own
secret, which ``myevents token`` reads too.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

import pytest
from myevents_procs import Proc, call, free_port, myevents_command, wait_ready
from myevents_support import TEST_SECRET, as_organizer, as_user, bearer, wait_for

SECRET_ENV = {"MYEVENTS_JWT_SECRET": TEST_SECRET}


def test_book_sell_out_cancel_restart_and_stop(tmp_path: Path, procs: list[Proc]) -> None:
    data = str(tmp_path / "data")
    ev_port, bk_port = free_port(), free_port()
    ev_url, bk_url = f"http://127.0.0.1:{ev_port}", f"http://127.0.0.1:{bk_port}"

    def booking_service() -> Proc:
        p = Proc(
            tmp_path,
            "booking",
            "booking-service",
            "--bind",
            f"127.0.0.1:{bk_port}",
            "--data-dir",
            data,
            "--workers",
            "2",
            env=SECRET_ENV,
        )
        procs.append(p)
        return p

    org, ann, bob = as_organizer(), as_user("ann"), as_user("bob")
    events = Proc(
        tmp_path, "events", "event-service", "--bind", f"127.0.0.1:{ev_port}", "--data-dir", data, env=SECRET_ENV
    )
    procs.append(events)
    booking = booking_service()
    wait_ready(ev_url, events)
    wait_ready(bk_url, booking)

    club = {"Name": "Club", "Halls": [{"name": "floor", "capacity": 3}]}
    status, problem, headers = call("POST", ev_url + "/locations", club)
    assert (status, problem["type"], headers["WWW-Authenticate"]) == (
        401,
        "urn:myevents:problem:unauthorized",
        'Bearer realm="myevents"',
    )
    assert call("POST", ev_url + "/locations", club, ann)[0] == 403
    status, loc, _ = call("POST", ev_url + "/locations", club, org)
    assert status == 201
    status, ev, _ = call(
        "POST", ev_url + "/events", {"Name": "Gig", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}}, org
    )
    assert status == 201
    assert call("GET", ev_url + "/events")[0] == 200  # reads are public
    # The event and its location (heard in either order by the two workers) are both known.
    wait_for(
        lambda: call("GET", f"{bk_url}/events/{ev['ID']}")[1].get("Capacity") == 3,
        what="the booking service to hear of the event and its location",
    )

    book = f"{bk_url}/events/{ev['ID']}/bookings"
    status, first, headers = call(
        "POST", book, {"seats": 2, "userId": "ann"}, {"X-Correlation-ID": "e2e-book-1", **ann}
    )
    assert (status, headers["X-Correlation-ID"]) == (201, "e2e-book-1")
    assert call("POST", book, {"seats": 2}, bob)[0] == 409
    status, second, _ = call("POST", book, {"seats": 1}, bob)
    assert status == 201
    status, problem, _ = call("POST", book, {"seats": 1}, bob)
    assert (status, problem["type"]) == (409, "urn:myevents:problem:sold-out")
    assert call("DELETE", f"{bk_url}/bookings/{first['ID']}", headers=bob)[0] == 403
    assert call("DELETE", f"{bk_url}/bookings/{first['ID']}", headers=ann)[0] == 200
    assert call("GET", f"{bk_url}/events/{ev['ID']}")[1]["SeatsLeft"] == 2
    assert call("GET", book)[0] == 401
    before = call("GET", book, headers=org)[1]
    # By id: two workers made them, and ids of one second from two processes need not sort by creation.
    assert {b["ID"]: b["Cancelled"] for b in before} == {first["ID"]: True, second["ID"]: False}

    assert booking.stop() == 0
    assert any(r.get("message") == "booking service stopped" for r in booking.logs())
    # Events published while the booking service is down wait for it on the bus.
    status, later, _ = call(
        "POST", ev_url + "/events", {"Name": "Encore", "StartDate": 3, "EndDate": 4, "Location": {"ID": loc["ID"]}}, org
    )
    assert status == 201

    booking = booking_service()
    wait_ready(bk_url, booking)
    assert call("GET", book, headers=org)[1] == before
    assert call("GET", f"{bk_url}/events/{ev['ID']}")[1]["SeatsLeft"] == 2
    wait_for(lambda: call("GET", f"{bk_url}/events/{later['ID']}")[0] == 200, what="the event made while down")
    status, again, _ = call("POST", book, {"seats": 2}, ann)
    assert status == 201
    assert call("POST", book, {"seats": 1}, ann)[0] == 409
    mine = call("GET", f"{bk_url}/users/ann/bookings", headers=ann)[1]
    # By id, as above: both were made within one second, by either of the two workers.
    assert {b["ID"]: b for b in mine} == {first["ID"]: {**first, "Cancelled": True}, again["ID"]: again}
    assert call("GET", f"{bk_url}/users/ann/bookings", headers=bob)[0] == 403

    # A chunked body has no Content-Length: the limit holds on what is read.
    conn = http.client.HTTPConnection("127.0.0.1", bk_port, timeout=10)
    conn.request(
        "POST",
        f"/events/{ev['ID']}/bookings",
        body=iter([b"[" + b"1," * 40_000, b"1]"]),
        encode_chunked=True,
        headers={"Content-Type": "application/json", **ann},
    )
    assert conn.getresponse().status == 413
    conn.close()

    assert booking.stop() == 0
    assert events.stop(signal.SIGINT) == 0
    booked = [r for r in booking.logs() + events.logs() if r.get("correlation_id") == "e2e-book-1"]
    assert booked
    assert booked[0]["logger"] == "myevents.access"
    assert booked[0]["status"] == 201
    # Neither the secret nor a token is ever logged.
    logged = "".join(p.err.read_text() + p.out.read_text() for p in (events, booking))
    for secret in (TEST_SECRET, *(h["Authorization"].split()[1] for h in (org, ann, bob))):
        assert secret not in logged


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


def test_serve_runs_both_and_ctrl_c_stops_them(tmp_path: Path, procs: list[Proc]) -> None:
    ev_port, bk_port = free_port(), free_port()
    serve = Proc(
        tmp_path,
        "serve",
        "serve",
        "--event-bind",
        f"127.0.0.1:{ev_port}",
        "--booking-bind",
        f"127.0.0.1:{bk_port}",
        "--data-dir",
        str(tmp_path / "data"),
    )
    procs.append(serve)
    ev_url, bk_url = f"http://127.0.0.1:{ev_port}", f"http://127.0.0.1:{bk_port}"
    wait_ready(ev_url, serve)
    wait_ready(bk_url, serve)
    printed = serve.out.read_text()
    assert f"event service:   {ev_url}" in printed
    assert f"booking service: {bk_url}" in printed
    assert f"web front end:   {ev_url}/ui/" in printed
    # The pages call the booking service started here, which answers CORS for them.
    assert call("GET", ev_url + "/ui/config.json")[1] == {"bookingUrl": bk_url}
    assert call("GET", bk_url + "/health", headers={"Origin": ev_url})[2]["Access-Control-Allow-Origin"] == ev_url
    assert (tmp_path / "data" / "bus.db").exists()

    # No secret configured: serve made one in the data directory, and the token command signs with it.
    secret = tmp_path / "data" / "jwt-secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    cmd = [*myevents_command(), "token", "organizer", "--data-dir", str(tmp_path / "data")]
    org = bearer(subprocess.run(cmd, check=True, capture_output=True, text=True, env=serve.env).stdout.strip())
    hall = {"Name": "Hall", "Halls": [{"name": "h", "capacity": 1}]}
    loc = call("POST", ev_url + "/locations", hall, org)[1]
    event = {"Name": "x", "StartDate": 1, "EndDate": 1, "Location": {"ID": loc["ID"]}}
    ev = call("POST", ev_url + "/events", event, org)[1]
    wait_for(lambda: call("GET", f"{bk_url}/events/{ev['ID']}")[0] == 200, what="the booking service to hear of it")
    assert call("POST", ev_url + "/locations", hall, as_organizer())[0] == 401  # another secret's token

    if Path("/proc/self/task").exists():
        masters = _children(serve.popen.pid)
        assert len(masters) == 2
        for master in masters:
            assert _threads(master) == 1  # the relay and the listener run in the workers, not in the master
            [worker] = _children(master)
            assert _threads(worker) > 1

    assert serve.stop(signal.SIGINT, timeout=80, group=True) == 0  # within serve's own bound of 2 x 30 s + 15 s
    stopped = {r["message"] for r in serve.logs()}
    assert {"events service stopped", "booking service stopped"} <= stopped
    for url in (ev_url, bk_url):
        with pytest.raises(OSError):
            call("GET", url + "/health")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_tls_when_a_certificate_and_key_are_configured(tmp_path: Path, procs: list[Proc]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    events = Proc(
        tmp_path,
        "tls",
        "event-service",
        "--bind",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(tmp_path / "data"),
        "--certfile",
        str(cert),
        "--keyfile",
        str(key),
    )
    procs.append(events)
    wait_ready(f"https://127.0.0.1:{port}", events)
    with pytest.raises(OSError):
        call("GET", f"http://127.0.0.1:{port}/health")
    assert events.stop() == 0


def test_sigterm_turns_ready_false_first_then_drains(tmp_path: Path, procs: list[Proc]) -> None:
    """With a shutdown delay, SIGTERM makes /ready answer 503 while requests are still served; then it exits 0."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**SECRET_ENV, "MYEVENTS_SHUTDOWN_DELAY": "3"}
    data = str(tmp_path / "data")
    events = Proc(tmp_path, "events", "event-service", "--bind", f"127.0.0.1:{port}", "--data-dir", data, env=env)
    procs.append(events)
    wait_ready(url, events)
    events.popen.send_signal(signal.SIGTERM)
    _, body, _ = wait_for(
        lambda: (r := call("GET", url + "/ready"))[0] == 503 and r, timeout=20, what="/ready to turn 503"
    )
    assert body["checks"]["shutdown"].startswith("RuntimeError: shutting down")
    assert call("GET", url + "/events")[0] == 200  # still serving while the load balancer catches up
    assert events.popen.wait(60) == 0
    assert any(r.get("message") == "events service stopped" for r in events.logs())


def test_sigterm_under_load_answers_every_accepted_request_and_keeps_every_write(
    tmp_path: Path, procs: list[Proc]
) -> None:
    """SIGTERM while 8 clients write and read without pause, bypassing /ready as no load balancer would.

    The service keeps answering through its shutdown delay (1 s), then exits 0. No request gets a 5xx. When it
    closes its listening socket, the connections still waiting in the kernel's queue are reset: those requests
    were never read, so none of the writes among them happened and a client may send them again. Every event
    answered 201 is there after a restart.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**SECRET_ENV, "MYEVENTS_SHUTDOWN_DELAY": "1"}
    data = str(tmp_path / "data")

    def start() -> Proc:
        p = Proc(tmp_path, "events", "event-service", "--bind", f"127.0.0.1:{port}", "--data-dir", data, env=env)
        procs.append(p)
        wait_ready(url, p)
        return p

    events = start()
    org = as_organizer()
    status, loc, _ = call("POST", url + "/locations", {"Name": "L", "Halls": [{"name": "h", "capacity": 5}]}, org)
    assert status == 201
    lock = threading.Lock()
    accepted: list[str] = []
    answers: Counter[int] = Counter()
    refused: Counter[str] = Counter()
    cut: list[str] = []
    cut_writes: list[str] = []
    stop = threading.Event()
    signalled = threading.Event()
    after_signal = Counter[int]()
    t_signal = [float("inf")]

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            body = {"Name": f"e{n}-{i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}}
            try:
                status, answer, _ = call("POST", url + "/events", body, org) if i % 2 else call("GET", url + "/events")
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ConnectionRefusedError):
                    with lock:
                        refused[type(exc.reason).__name__] += 1
                    time.sleep(0.01)
                    continue
                with lock:
                    cut.append(f"{time.monotonic() - t_signal[0]:.2f}s {exc!r}")
                    if i % 2:
                        cut_writes.append(body["Name"])
                continue
            except (http.client.HTTPException, OSError) as exc:
                with lock:
                    cut.append(f"{time.monotonic() - t_signal[0]:.2f}s {exc!r}")
                    if i % 2:
                        cut_writes.append(body["Name"])
                continue
            with lock:
                answers[status] += 1
                if signalled.is_set():
                    after_signal[status] += 1
                if status == 201:
                    accepted.append(answer["ID"])

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: answers[201] >= 20, timeout=30, what="20 events written under load")
    t_signal[0] = time.monotonic()
    signalled.set()
    events.popen.send_signal(signal.SIGTERM)
    code = events.popen.wait(60)
    stop.set()
    for t in threads:
        t.join(30)
    assert code == 0
    during_delay = [c for c in cut if float(c.split("s ", 1)[0]) < 0.9]
    assert not during_delay, f"requests cut while the service still served: {during_delay[:3]}"
    assert not [s for s in answers if s >= 500 and s != 503], answers
    assert after_signal[201] > 0, "nothing was served during the shutdown delay"
    assert answers[503] == 0, answers  # writes are still taken while /ready says 503

    again = start()
    everything = call("GET", url + "/events")[1]
    listed = {e["ID"] for e in everything}
    done_anyway = {e["Name"] for e in everything} & set(cut_writes)
    assert not done_anyway, f"writes done although their answer was cut: {sorted(done_anyway)[:3]}"
    assert set(accepted) <= listed, f"{len(set(accepted) - listed)} accepted events lost"
    assert again.stop() == 0
