"""Issue 23: the booking projector as a process of its own, ``pubsubkit run myevents.booking.worker:projector``,
next to a booking service that only serves requests (``MYEVENTS_PROJECTOR=apart``), drained by SIGTERM.

Real processes on ``MYEVENTS_E2E_BROKER`` and ``MYEVENTS_E2E_STORE`` (see ``test_walk.py``): the event service
creates events; the projector builds the booking copy; SIGTERM in the middle of a burst of events drains it
(exit 0), and a projector started again afterwards brings the copy to every event: none is lost.
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "procs"))
from backend_urls import AWS, broker_url, store_url
from myevents_procs import Proc, call, free_port, pubsubkit_command, wait_ready
from myevents_support import TEST_SECRET, as_organizer, wait_for

from pubsubkit.testing import unique_name

pytestmark = pytest.mark.walk

BROKER = os.environ.get("MYEVENTS_E2E_BROKER", "embedded")
STORE = os.environ.get("MYEVENTS_E2E_STORE", "embedded")
#: The combinations it runs on (one embedded, two with external servers), to keep the matrix's time in check.
COMBINATIONS = (("embedded", "embedded"), ("kafka", "mongo"), ("rabbitmq", "mongo"))
EVENTS = 60
WAIT = 60.0


@pytest.mark.skipif((BROKER, STORE) not in COMBINATIONS, reason=f"runs on {COMBINATIONS}")
def test_the_projector_runs_as_a_worker_and_sigterm_drains_it(tmp_path: Path, procs: list[Proc]) -> None:
    run = unique_name("worker")
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "MYEVENTS_BROKER_URL": broker_url(BROKER, run, data),
        "MYEVENTS_DATA_DIR": str(data),
        "MYEVENTS_JWT_SECRET": TEST_SECRET,
        **{k: os.environ.get(k, v) for k, v in AWS.items()},
    }
    if STORE != "embedded":
        env["MYEVENTS_STORE_URL"] = store_url(STORE, run, data)
    ev_url, bk_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    org = as_organizer()

    def projector(name: str) -> tuple[Proc, str]:
        port = free_port()
        p = Proc(
            tmp_path, name, "run", "myevents.booking.worker:projector", "--port", str(port),
            env=env, command=pubsubkit_command(),
        )  # fmt: skip
        procs.append(p)
        wait_ready(f"http://127.0.0.1:{port}", p)
        return p, f"http://127.0.0.1:{port}"

    events = Proc(tmp_path, "events", "event-service", "--bind", ev_url.removeprefix("http://"), env=env)
    procs.append(events)
    wait_ready(ev_url, events)
    first, first_url = projector("projector-1")
    ready = call("GET", first_url + "/ready")[1]
    assert ready == {"status": "ready", "listeners": {"booking": "ready"}}
    booking = Proc(
        tmp_path, "booking", "booking-service", "--bind", bk_url.removeprefix("http://"),
        env={**env, "MYEVENTS_PROJECTOR": "apart"},
    )  # fmt: skip
    procs.append(booking)
    wait_ready(bk_url, booking)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, got, _ = call("POST", ev_url + path, body, org)
        assert status == 201, got
        return dict(got)

    loc = post("/locations", {"Name": "Hall", "Halls": [{"name": "floor", "capacity": 40}]})

    def new_event(i: int) -> str:
        made = post("/events", {"Name": f"Show {i}", "StartDate": 1, "EndDate": 2, "Location": {"ID": loc["ID"]}})
        return str(made["ID"])

    first_id = new_event(0)
    wait_for(lambda: call("GET", f"{bk_url}/events/{first_id}")[0] == 200, timeout=WAIT, what="the first copy")
    handled = 'pubsubkit_handled_total{group="booking",name="eventCreated",outcome="ok"} 1.0'
    wait_for(lambda: handled in call_text(first_url + "/metrics"), timeout=WAIT, what="the worker's metrics")

    # SIGTERM while a burst of events arrives: the projector drains (exit 0), and nothing is lost.
    with ThreadPoolExecutor(4) as pool:
        burst = pool.map(new_event, range(1, EVENTS))
        first.popen.send_signal(signal.SIGTERM)
        ids = [first_id, *burst]
    assert first.popen.wait(30) == 0, first.err.read_text()[-2000:] + first.out.read_text()[-2000:]
    said = first.out.read_text()
    assert "draining" in said, said
    assert ": stopped" in said, said
    projector("projector-2")
    wait_for(
        lambda: all(call("GET", f"{bk_url}/events/{i}")[1].get("Capacity") == 40 for i in ids),
        timeout=WAIT,
        what=f"the booking copy to have all {EVENTS} events after the restart",
    )


def call_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())
