"""``pubsubkit run MODULE:OBJECT``: a worker process with health and metrics, drained by SIGTERM, and clear
errors for a bad target (over a SQLite log, which another process can publish to)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import pubsubkit
from pubsubkit.testing import wait_until

APP = """
import os, time, attrs, pubsubkit

@pubsubkit.event("workerPing")
@attrs.frozen
class Ping:
    n: int

BUS = os.environ["TEST_BUS"]
MARKS = os.environ["TEST_MARKS"]

def handle(event, msg):
    open(f"{MARKS}/started-{event.n}", "w").close()
    if event.n == 0:
        time.sleep(1.5)  # still running when SIGTERM comes: drained, not cut off
    open(f"{MARKS}/done-{event.n}", "w").close()

def worker():
    broker = pubsubkit.open_broker(BUS)
    listener = broker.listener("workers", poll_interval=0.05)
    listener.add_handler(Ping, handle)
    return pubsubkit.Worker([listener], close=broker.close)

not_a_worker = 42
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The application module (importable here too, for its event class) and the environment of its workers."""
    (tmp_path / "workerapp.py").write_text(textwrap.dedent(APP))
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("TEST_BUS", f"sqlite:///{tmp_path}/bus.db")
    monkeypatch.setenv("TEST_MARKS", str(marks))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "workerapp", raising=False)
    return {**os.environ, "PYTHONPATH": str(tmp_path), "OUT": str(tmp_path / "out.txt")}


class Run:
    """A ``pubsubkit run`` process, its output in a file."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.out = Path(env["OUT"])
        with self.out.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "pubsubkit", "run", *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.out.read_text()

    def port(self) -> int:
        def line() -> str | None:
            assert self.popen.poll() is None, self.output()
            return next((x for x in self.output().splitlines() if "health and metrics on http://" in x), None)

        wait_until(lambda: line() is not None, 20, "the port line")
        return int(str(line()).rsplit(":", 1)[1])

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_worker_serves_health_and_metrics_and_sigterm_drains_a_running_handler(app: dict[str, str]) -> None:
    marks = Path(os.environ["TEST_MARKS"])
    proc = Run("workerapp:worker", "--port", "0", env=app)
    try:
        port = proc.port()
        assert get(f"http://127.0.0.1:{port}/live")[0] == 200
        wait_until(lambda: get(f"http://127.0.0.1:{port}/ready")[0] == 200, 20, "/ready")
        assert json.loads(get(f"http://127.0.0.1:{port}/ready")[1]) == {
            "status": "ready",
            "listeners": {"workers": "ready"},
        }
        import workerapp  # type: ignore[import-not-found]

        with pubsubkit.open_broker(os.environ["TEST_BUS"]) as broker:
            broker.emitter().emit_many([workerapp.Ping(n=i) for i in range(5)])
            wait_until(lambda: (marks / "started-0").exists(), 20, "the slow handler to start")
            proc.popen.send_signal(signal.SIGTERM)
            assert proc.popen.wait(30) == 0, proc.output()
            assert "draining" in proc.output(), proc.output()
            assert "stopped" in proc.output(), proc.output()
            assert (marks / "done-0").exists(), "the running handler was cut off"
            assert broker.transport.groups() == {"workers": 0}  # type: ignore[attr-defined]
    finally:
        proc.kill()


def test_metrics_name_the_handled_messages(app: dict[str, str]) -> None:
    marks = Path(os.environ["TEST_MARKS"])
    proc = Run("workerapp:worker", "--port", "0", env=app)
    try:
        port = proc.port()
        wait_until(lambda: get(f"http://127.0.0.1:{port}/ready")[0] == 200, 20, "/ready")
        import workerapp

        with pubsubkit.open_broker(os.environ["TEST_BUS"]) as broker:
            broker.emitter().emit(workerapp.Ping(n=7))
        wait_until(lambda: (marks / "done-7").exists(), 20, "the handler")
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'pubsubkit_handled_total{group="workers",name="workerPing",outcome="ok"} 1.0' in body, body[:3000]
        assert get(f"http://127.0.0.1:{port}/nothing")[0] == 404
    finally:
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(30) == 0, proc.output()


def test_two_workers_share_the_group_and_sigterm_stops_both(app: dict[str, str]) -> None:
    marks = Path(os.environ["TEST_MARKS"])
    proc = Run("workerapp:worker", "--workers", "2", env=app)
    try:
        import workerapp

        wait_until(lambda: proc.output().count("listening as workers") == 2, 30, "both workers to listen")

        with pubsubkit.open_broker(os.environ["TEST_BUS"]) as broker:
            broker.emitter().emit_many([workerapp.Ping(n=i) for i in range(1, 21)])
        wait_until(lambda: all((marks / f"done-{i}").exists() for i in range(1, 21)), 30, "20 handled")
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(30) == 0, proc.output()
        assert proc.output().count(": stopped") == 2, proc.output()
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("workerapp", "name the object as MODULE:OBJECT"),
        ("nosuchmodule:worker", "no module named 'nosuchmodule'"),
        ("workerapp:nothing", "module workerapp has no nothing; its public names:"),
        ("workerapp:not_a_worker", "workerapp:not_a_worker gave int: give pubsubkit run a pubsubkit.Worker"),
    ],
)
def test_a_bad_target_exits_2_naming_the_fix(app: dict[str, str], target: str, message: str) -> None:
    proc = Run(target, env=app)
    assert proc.popen.wait(30) == 2, proc.output()
    assert message in proc.output(), proc.output()
