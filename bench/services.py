"""myevents under gunicorn: HTTP throughput, end-to-end latency and memory of the two services.

The services run as real processes (``myevents event-service`` / ``booking-service``, one gunicorn worker of 8
threads each, log level ``warning``), on embedded SQLite unless a broker URL is given. The load generator is
Python threads on keep-alive ``http.client`` connections, on the same two cores as the services.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pubsubkit
from bench.common import BROKER_URLS, Row, Target, installed_scheme, progress, run_name, skip_row, sqlite_url
from myevents import contracts

#: The services sign and check bearer tokens with this secret; the load generator makes its own tokens with it.
SECRET = secrets.token_urlsafe(48)
ISSUER = "myevents-bench"
RSS_TARGET_MB = 80.0
LATENCY_TARGET_MS = 15.0
RATE = 500.0  # events per second of the latency runs
SQS_RATE = 50.0  # the SQS emulator's (reported only: it is an emulator)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    """One myevents service process (a gunicorn master and its worker), output in files under ``tmp``."""

    def __init__(self, tmp: Path, service: str, env: dict[str, str]) -> None:
        self.service = service
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        script = Path(sys.executable).with_name("myevents")
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "myevents"]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MYEVENTS_")}
        self.err = tmp / f"{service}.err"
        with self.err.open("ab") as err:
            self.popen = subprocess.Popen(
                [*cmd, service, "--bind", f"127.0.0.1:{self.port}"],
                stdout=err,
                stderr=err,
                env={**clean, "MYEVENTS_LOG_LEVEL": "warning", **env},
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.service} exited: {self.err.read_text()[-1500:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if call(self.base, "GET", "/ready")[0] == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.service} not ready after {timeout} s: {self.err.read_text()[-1500:]}")

    def rss_mb(self) -> tuple[float, float, float, float]:
        """(current RSS of master + workers, their peak RSS added up, the largest process's peak, their current
        PSS: shared pages counted once), in MB."""
        import psutil

        procs = [psutil.Process(self.popen.pid)]
        procs += procs[0].children(recursive=True)
        now = peak = biggest = pss = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                now += p.memory_info().rss / 2**20
                pss += getattr(p.memory_full_info(), "pss", 0) / 2**20
                hwm = _vm_hwm_mb(p.pid) or p.memory_info().rss / 2**20
                peak += hwm
                biggest = max(biggest, hwm)
        return now, peak, biggest, pss

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


def _vm_hwm_mb(pid: int) -> float | None:
    """The peak resident set of a process, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def token(role: str, subject: str) -> str:
    """A bearer token the services accept, for ``subject`` in ``role`` (``organizer`` or ``user``)."""
    from myevents.web import auth

    return auth.issue(auth.AuthSettings(SECRET.encode(), ISSUER), role, subject, 3600)  # type: ignore[arg-type]


@functools.cache
def organizer() -> str:
    return token("organizer", "bench")


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request on a fresh connection, as an organizer."""
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    try:
        return request(conn, method, path, body)
    finally:
        conn.close()


def request(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any = None, bearer: str | None = None
) -> tuple[int, Any]:
    """One request on a kept-alive connection (as an organizer unless ``bearer`` is given); (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {bearer or organizer()}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw and raw[:1] in b"[{" else None


@contextlib.contextmanager
def services(broker_url: str | None = None) -> Iterator[tuple[Service, Service, Path]]:
    """Both services on one broker (embedded SQLite by default), each with its own SQLite store."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-myevents-"))
    data = tmp / "data"
    data.mkdir()
    env = {
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_BROKER_URL": broker_url or sqlite_url(data / "bus.db"),
        "MYEVENTS_JWT_SECRET": SECRET,
        "MYEVENTS_JWT_ISSUER": ISSUER,
    }
    env.update({k: os.environ.get(k, "test") for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    started: list[Service] = []
    try:
        for name in ("event-service", "booking-service"):
            started.append(Service(tmp, name, env))
        for s in started:
            s.wait_ready()
        yield started[0], started[1], data
    finally:
        for s in started:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def new_event(events: Service, booking: Service, capacity: int = 1_000_000) -> str:
    """A location and an event on it, once the booking service knows the event with its capacity."""
    status, loc = call(
        events.base, "POST", "/locations", {"Name": "Bench", "Halls": [{"name": "h", "capacity": capacity}]}
    )
    assert status == 201, loc
    body = {"Name": "Bench", "StartDate": 1_800_000_000, "EndDate": 1_800_007_200, "Location": {"ID": loc["ID"]}}
    status, ev = call(events.base, "POST", "/events", body)
    assert status == 201, ev
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, got = call(booking.base, "GET", f"/events/{ev['ID']}")
        if status == 200 and got.get("Capacity") == capacity:
            return str(ev["ID"])
        time.sleep(0.05)
    raise TimeoutError("the booking service never heard of the event")


# --- HTTP throughput --------------------------------------------------------------------------------------------


def load(base: str, method: str, path: Any, seconds: float, threads: int = 8) -> tuple[int, int, float]:
    """``threads`` keep-alive clients hammering ``path`` (a str, or a function of a counter giving
    ``(path, body, bearer token)``) for ``seconds``; (requests answered 2xx, other answers, seconds)."""
    stop = time.monotonic() + seconds
    ok = [0] * threads
    bad = [0] * threads

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
        i = k
        while time.monotonic() < stop:
            p, body, bearer = path(i) if callable(path) else (path, None, None)
            status, _ = request(conn, method, p, body, bearer)
            if 200 <= status < 300:
                ok[k] += 1
            else:
                bad[k] += 1
            i += threads
        conn.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(ok), sum(bad), time.perf_counter() - start


def http_rows(events: Service, booking: Service, seconds: float) -> list[Row]:
    event_id = new_event(events, booking)
    location = _any_location(events)
    for i in range(19):
        body = {"Name": f"Bench {i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": location}}
        call(events.base, "POST", "/events", body)
    rows = []
    progress(f"http: GET /events for {seconds:.0f} s (20 events listed)")
    ok, bad, secs = load(events.base, "GET", "/events", seconds)
    rows.append(_req_row("events", "GET /events", ok, bad, secs))
    users = [token("user", f"user{i}") for i in range(100)]
    progress(f"http: POST /events/{{id}}/bookings for {seconds:.0f} s")
    ok, bad, secs = load(
        booking.base,
        "POST",
        lambda i: (f"/events/{event_id}/bookings", {"seats": 1, "userId": f"user{i % 100}"}, users[i % 100]),
        seconds,
    )
    rows.append(_req_row("booking", "POST /events/{id}/bookings", ok, bad, secs))
    return rows


def _any_location(events: Service) -> str:
    _, locs = call(events.base, "GET", "/locations")
    return str(locs[0]["ID"])


def _req_row(service: str, case: str, ok: int, bad: int, seconds: float) -> Row:
    row = Row("http", service, "gunicorn", case, ok / seconds, "req/s", ok, seconds, extra={"errors": bad})
    progress(f"  {case:28} {row.value:8,.0f} req/s ({ok} ok, {bad} errors)")
    return row


def http_throughput(quick: bool) -> tuple[list[Row], list[Target]]:
    """Requests per second of ``GET /events`` and ``POST /events/{id}/bookings`` on embedded SQLite."""
    with services() as (events, booking, _):
        return http_rows(events, booking, 3.0 if quick else 15.0), []


# --- memory ---------------------------------------------------------------------------------------------------


def rss(quick: bool) -> tuple[list[Row], list[Target]]:
    """Resident memory of each service: idle after start-up, and the peak after HTTP load."""
    rows: list[Row] = []
    with services() as (events, booking, _):
        time.sleep(2)
        idle = {s.service: s.rss_mb() for s in (events, booking)}
        http_rows(events, booking, 2.0 if quick else 10.0)
        loaded = {s.service: s.rss_mb() for s in (events, booking)}
    targets = []
    for name in ("event-service", "booking-service"):
        now, _, _, pss = idle[name]
        _, peak, peak_biggest, _ = loaded[name]
        rows.append(Row("rss", name, "gunicorn", "idle (master + worker)", now, "MB"))
        rows.append(Row("rss", name, "gunicorn", "idle PSS (master + worker, shared pages once)", pss, "MB"))
        rows.append(Row("rss", name, "gunicorn", "peak after load (master + worker)", peak, "MB"))
        rows.append(Row("rss", name, "gunicorn", "peak after load (worker alone)", peak_biggest, "MB"))
        targets.append(Target(f"{name} RSS idle, master + worker (MB)", now, RSS_TARGET_MB, 1.0, "<="))
        progress(f"  {name}: idle {now:.1f} MB, peak after load {peak:.1f} MB")
    return rows, targets


# --- end-to-end latency ---------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": values[0] if values else float("nan"), "p95": float("nan"), "p99": float("nan")}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98]}


def paced(n: int, send: Any, rate: float = RATE) -> float:
    """Call ``send(i)`` ``n`` times at ``rate`` a second (open loop); the rate achieved."""
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(i)
    return n / (time.perf_counter() - start)


def created_latency(events: Service, booking: Service, n: int, rate: float) -> tuple[list[float], float]:
    """``POST /events`` until the booking service answers ``GET /events/{id}`` for it (polled), in ms."""
    location = _any_location(events)
    pending: dict[str, float] = {}
    lock = threading.Lock()
    got: list[float] = []
    done = threading.Event()
    done_at = [0.0]

    def poll() -> None:
        conn = http.client.HTTPConnection(booking.base.removeprefix("http://"), timeout=10)
        while not (done.is_set() and (not pending or time.monotonic() > done_at[0] + 30)):
            with lock:
                todo = list(pending.items())
            for event_id, sent in todo:
                if request(conn, "GET", f"/events/{event_id}")[0] == 200:
                    got.append((time.perf_counter() - sent) * 1000)
                    with lock:
                        del pending[event_id]
            time.sleep(0.001)
        conn.close()

    conn = http.client.HTTPConnection(events.base.removeprefix("http://"), timeout=10)

    def send(i: int) -> None:
        sent = time.perf_counter()
        status, ev = request(
            conn, "POST", "/events", {"Name": f"L{i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": location}}
        )
        assert status == 201, ev
        with lock:
            pending[ev["ID"]] = sent

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    achieved = paced(n, send, rate)
    done_at[0] = time.monotonic()
    done.set()
    poller.join(60)
    conn.close()
    return got, achieved


def booked_latency(booking: Service, bus_url: str, event_id: str, n: int, rate: float) -> tuple[list[float], float]:
    """``POST /events/{id}/bookings`` until a consumer group of the bench's own handles the eventBooked, in ms."""
    sent: dict[str, float] = {}
    got: list[float] = []
    done = threading.Event()
    broker = pubsubkit.open_broker(bus_url)
    listener = broker.listener(run_name("latency"), poll_interval=0.05)

    probed = threading.Event()

    def heard(event: contracts.EventBooked, msg: pubsubkit.Message) -> None:
        if event.user_id.startswith("probe-"):
            probed.set()
        at = sent.get(event.user_id)
        if at is not None:
            got.append((time.perf_counter() - at) * 1000)
            if len(got) >= n:
                done.set()

    listener.add_handler(contracts.EventBooked, heard)
    listener.start()
    listener.wait_ready(60)
    conn = http.client.HTTPConnection(booking.base.removeprefix("http://"), timeout=10)
    tag = run_name("u")

    def send(i: int) -> None:
        user = f"{tag}-{i}"
        bearer = token("user", user)
        sent[user] = time.perf_counter()
        status, body = request(conn, "POST", f"/events/{event_id}/bookings", {"seats": 1, "userId": user}, bearer)
        assert status == 201, body

    try:
        # Joining a group may take seconds after the subscription exists (a Kafka rebalance): book until the
        # listener hears one, so the paced run measures delivery, not the join.
        deadline = time.monotonic() + 60
        while not probed.is_set() and time.monotonic() < deadline:
            probe = f"probe-{tag}"
            request(conn, "POST", f"/events/{event_id}/bookings", {"seats": 1, "userId": probe}, token("user", probe))
            probed.wait(0.5)
        achieved = paced(n, send, rate)
        done.wait(30)
    finally:
        conn.close()
        listener.close()
        broker.close()
    return got, achieved


WARMUP = 20  # the first answers of each latency run are left out (connections, caches, a group's first fetch)
LATENCY_TARGETS = ("sqlite", "kafka", "rabbitmq")  # where the p99 goal applies; SQS is reported only


def _latency_target(backend: str, p99: float | None) -> list[Target]:
    if backend not in LATENCY_TARGETS:
        return []
    return [Target(f"{backend}: e2e p99 at {RATE:.0f}/s (ms)", p99, LATENCY_TARGET_MS, 1.0, "<=")]


def latency_rows(backend: str, broker_url: str | None, n: int, rate: float = RATE) -> tuple[list[Row], list[Target]]:
    """Both latency cases on one broker (``None``: embedded SQLite); one row per percentile."""
    cases = ("POST /events -> booking copy", "POST bookings -> eventBooked consumer")
    if broker_url is not None and (reason := installed_scheme(broker_url)) is not None:
        return [skip_row("latency", backend, "myevents", c, reason) for c in cases], _latency_target(backend, None)
    rows: list[Row] = []
    worst: float | None = None
    with services(broker_url) as (events, booking, data):
        event_id = new_event(events, booking)
        bus = broker_url or sqlite_url(data / "bus.db")
        for case, fn in (
            (cases[0], lambda: created_latency(events, booking, n + WARMUP, rate)),
            (cases[1], lambda: booked_latency(booking, bus, event_id, n + WARMUP, rate)),
        ):
            progress(f"latency: {backend}: {case}, {n} (+{WARMUP} warm-up) at {rate:.0f}/s")
            values, achieved = fn()
            values = values[WARMUP:]
            pct = percentiles(values)
            for name, ms in pct.items():
                rows.append(
                    Row(
                        "latency",
                        backend,
                        "myevents",
                        f"{case} {name}",
                        ms,
                        "ms",
                        len(values),
                        extra={"rate": achieved},
                    )
                )
            worst = max(worst or 0.0, pct["p99"])
            got = f"{len(values)} of {n}, {achieved:.0f}/s"
            progress(f"  p50 {pct['p50']:.1f} ms, p95 {pct['p95']:.1f} ms, p99 {pct['p99']:.1f} ms ({got})")
    return rows, _latency_target(backend, worst)


def latency(quick: bool) -> tuple[list[Row], list[Target]]:
    """End-to-end latency at 500 events/s on embedded SQLite and on each broker whose plugin is installed."""
    n = 200 if quick else 1500
    rows, targets = latency_rows("sqlite", None, n)
    for backend, url in BROKER_URLS.items():
        try:
            # The SQS emulator handles fewer than 100 messages a second here: a short, slower run says as much.
            if backend == "sqs":
                r, t = latency_rows(backend, url(run_name("lat")), min(n, 300), SQS_RATE)
            else:
                r, t = latency_rows(backend, url(run_name("lat")), n)
        except Exception as exc:
            r = [skip_row("latency", backend, "myevents", "both", f"failed: {type(exc).__name__}: {exc}"[:300])]
            t = _latency_target(backend, None)
        rows += r
        targets += t
    return rows, targets
