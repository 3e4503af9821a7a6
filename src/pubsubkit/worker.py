"""``pubsubkit run MODULE:OBJECT``: an application's listeners (and outbox relays) as a worker process.

The target is a :class:`Worker`, a :class:`~pubsubkit.Listener`, an :class:`~pubsubkit.OutboxRelay`, a list of
those, or a function returning one of them (called in the worker process, so that each process opens its own
connections)::

    # myapp/worker.py
    def projector() -> pubsubkit.Worker:
        broker, store = pubsubkit.open_broker(BUS), pubsubkit.open_store(DB)
        listener = broker.listener("projector", store=store)
        listener.add_handler(OrderPlaced, project)
        return pubsubkit.Worker([listener], relays=[broker.relay(store)], close=lambda: (store.close(), broker.close()))

    $ pubsubkit run myapp.worker:projector --port 9100

It starts the relays and listeners, answers ``GET /live``, ``/ready`` (200 once every listener has joined its
group, 503 with the reason otherwise) and ``/metrics`` on ``--port``, and on SIGTERM or SIGINT stops receiving,
drains (running handlers finish and are acknowledged) and exits 0; it exits 1 when a listener stops by itself
(a fatal error when joining). ``--workers N`` runs N such processes, each on ``--port`` + its index, and
stops them all when one ends.
"""

from __future__ import annotations

import http.server
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from pubsubkit.errors import ConfigError
from pubsubkit.listener import Listener
from pubsubkit.outbox import OutboxRelay

__all__ = ["Worker", "as_worker", "run_worker", "supervise"]

log = logging.getLogger("pubsubkit.run")

#: How long ``/ready`` may stay 503 at start before the worker logs that a listener has not joined its group.
_JOIN_WARNING = 30.0


@attrs.define
class Worker:
    """What ``pubsubkit run`` runs: listeners, the outbox relays that publish what their handlers emit, the
    Prometheus registry ``/metrics`` serves (default: prometheus_client's), and what to close at the end."""

    listeners: Sequence[Listener] = ()
    relays: Sequence[OutboxRelay] = ()
    registry: Any = None
    close: Callable[[], None] | None = None

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Whether every listener has joined its group and none has stopped; the state of each."""
        states = {}
        for listener in self.listeners:
            if listener.stopped:
                states[listener.group] = "stopped"
            elif listener.wait_ready(0):
                states[listener.group] = "ready"
            else:
                states[listener.group] = "joining"
        return all(s == "ready" for s in states.values()), states


def as_worker(obj: object, target: str = "the target") -> Worker:
    """``obj`` (what a ``pubsubkit run`` target named or returned) as a :class:`Worker`; ConfigError naming the fix."""
    if isinstance(obj, Worker):
        return obj
    items = list(obj) if isinstance(obj, list | tuple) else [obj]
    listeners = [o for o in items if isinstance(o, Listener)]
    relays = [o for o in items if isinstance(o, OutboxRelay)]
    others = [o for o in items if not isinstance(o, Listener | OutboxRelay)]
    if others or not listeners:
        what = type(others[0]).__name__ if others else "no listener"
        raise ConfigError(
            f"{target} gave {what}: give pubsubkit run a pubsubkit.Worker, a Listener, a list of listeners and"
            " relays, or a function returning one of those"
        )
    return Worker(listeners, relays)


def run_worker(worker: Worker, *, port: int | None = None, host: str = "127.0.0.1", name: str = "worker") -> int:
    """Run ``worker`` until SIGTERM or SIGINT (then drain) or until a listener stops by itself; the exit status."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = None
    status = 1
    try:
        for relay in worker.relays:
            relay.start()
        for listener in worker.listeners:
            listener.start()
        if port is not None:
            server = _serve(worker, host, port)
            print(f"pubsubkit run: {name}: health and metrics on http://{host}:{server.server_port}", flush=True)
        groups = ", ".join(listener.group for listener in worker.listeners)
        print(f"pubsubkit run: {name}: listening as {groups}; SIGTERM or Ctrl-C drains and stops", flush=True)
        status = _wait(worker, stop)
    finally:
        drained = _stop(worker, name)
        if server is not None:
            server.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(status, drained)


def _wait(worker: Worker, stop: threading.Event) -> int:
    start = time.monotonic()
    warned = False
    while not stop.wait(0.2):
        ready, states = worker.ready()
        if "stopped" in states.values():
            log.error("pubsubkit run: a listener stopped by itself (%s); stopping", states)
            return 1
        if not ready and not warned and time.monotonic() - start > _JOIN_WARNING:
            log.warning("pubsubkit run: not ready after %.0fs: %s", _JOIN_WARNING, states)
            warned = True
    return 0


def _stop(worker: Worker, name: str) -> int:
    print(f"pubsubkit run: {name}: draining", flush=True)
    for listener in worker.listeners:
        listener.stop()
    status = 0
    for listener in worker.listeners:
        if not listener.close():
            log.error("pubsubkit run: listener %s did not drain in time", listener.group)
            status = 1
    for relay in worker.relays:
        relay.stop()
    if worker.close is not None:
        worker.close()
    print(f"pubsubkit run: {name}: stopped", flush=True)
    return status


def _serve(worker: Worker, host: str, port: int) -> http.server.ThreadingHTTPServer:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    registry = worker.registry if worker.registry is not None else REGISTRY

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/live":
                self._send(200, "application/json", b'{"status":"live"}')
            elif self.path == "/ready":
                ready, states = worker.ready()
                body = json.dumps({"status": "ready" if ready else "unready", "listeners": states}).encode()
                self._send(200 if ready else 503, "application/json", body)
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._send(404, "application/json", b'{"title":"not found: GET /live, /ready or /metrics"}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    try:
        server = http.server.ThreadingHTTPServer((host, port), Health)
    except OSError as exc:
        raise ConfigError(
            f"pubsubkit run: cannot serve on {host}:{port} ({exc.strerror}): pick another --port"
        ) from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="pubsubkit-run-http", daemon=True).start()
    return server


def supervise(target: str, workers: int, port: int | None, host: str) -> int:
    """Run ``workers`` processes of ``pubsubkit run target``; SIGTERM / SIGINT go to each; when one ends, the
    others are stopped. The exit status is the first non-zero one of theirs, else 0."""
    procs = []
    for i in range(workers):
        argv = [sys.executable, "-m", "pubsubkit", "run", target, "--workers", "1", "--name", f"worker {i + 1}"]
        if port is not None:
            argv += ["--port", str(port + i if port else 0), "--host", host]
        procs.append(subprocess.Popen(argv))
    stopping = threading.Event()

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.2)
        if not stopping.is_set():
            forward(signal.SIGTERM, None)
        codes = [p.wait() for p in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A worker still starting when the signal came ends by it (its handler was not installed yet): a clean stop.
    stopped = (-signal.SIGTERM, -signal.SIGINT)
    return next((c for c in codes if c != 0 and not (stopping.is_set() and c in stopped)), 0)
