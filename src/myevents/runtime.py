"""What a service process holds: its backends, its web app and the background workers that move events.

``Service.start()`` starts the workers (outbox relay, listener) and must run in the process that serves
requests: under gunicorn that is each worker after the fork, never the master (threads do not survive a fork).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from prometheus_client import CollectorRegistry

import pubsubkit
from myevents.shutdown import draining
from myevents.web import WebApp

__all__ = [
    "CLOSE_SECONDS",
    "DRAIN_SECONDS",
    "Backends",
    "Deps",
    "ListenerWorker",
    "RelayWorker",
    "Service",
    "TaskWorker",
    "Worker",
    "open_backends",
    "probes",
]

log = logging.getLogger("myevents.runtime")

#: Seconds :meth:`Service.close` takes at most for its workers (gunicorn's graceful timeout, 30 s, is well above).
CLOSE_SECONDS = 15.0
#: Seconds a listener's running handlers may take to finish on close; what is unfinished then goes back to the
#: broker unacknowledged. Within :data:`CLOSE_SECONDS`, leaving time to settle, leave the group and stop the relay.
DRAIN_SECONDS = 10.0


@attrs.define
class Backends:
    """A service's broker and store, whose metrics (and the service's own) go to ``registry``."""

    broker: pubsubkit.Broker
    store: pubsubkit.Store
    registry: CollectorRegistry

    def close(self) -> None:
        self.store.close()
        self.broker.close()


def open_backends(broker_url: str, store_url: str) -> Backends:
    """Open both backends, with a registry of their own (so two apps in one process never collide)."""
    registry = CollectorRegistry()
    pm = pubsubkit.get_plugin_manager(metrics_registry=registry)
    broker = pubsubkit.open_broker(broker_url, pm=pm)
    try:
        store = pubsubkit.open_store(store_url, pm=pm)
    except BaseException:
        broker.close()
        raise
    return Backends(broker, store, registry)


@attrs.frozen
class Deps:
    """What ``create_app`` is given: the backends and the readiness probes."""

    backends: Backends
    probes: Mapping[str, Callable[[], None]]
    #: The service's AsyncAPI document (:mod:`myevents.asyncapi`), served at ``/asyncapi.json``.
    asyncapi: Mapping[str, Any] = attrs.field(factory=dict, kw_only=True)


class Worker(Protocol):
    """A background worker: started once, stopped once (stopping waits for in-flight work, at most ``timeout``
    seconds, and returns whether the worker has stopped)."""

    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float) -> bool: ...

    def alive(self) -> bool: ...


@attrs.define
class RelayWorker:
    relay: pubsubkit.OutboxRelay
    name: str = "relay"
    _started: bool = False

    def start(self) -> None:
        self.relay.start()
        self._started = True

    def stop(self, timeout: float) -> bool:
        self._started = False
        return self.relay.stop(timeout)

    def alive(self) -> bool:
        return self._started


#: Seconds ``ListenerWorker.start`` waits for its listener to join its group before going on anyway.
JOIN_TIMEOUT = 30.0


@attrs.define
class ListenerWorker:
    listener: pubsubkit.Listener
    name: str = "listener"

    def start(self) -> None:
        """Start the listener and wait until it has joined its group: on brokers without replay (RabbitMQ, SQS)
        an event published before the group's queue exists never reaches it."""
        self.listener.start()
        if not self.listener.wait_ready(JOIN_TIMEOUT):
            log.warning("listener %s has not joined its group after %.0fs; going on", self.listener.group, JOIN_TIMEOUT)

    def stop(self, timeout: float) -> bool:
        return self.listener.close(timeout)

    def alive(self) -> bool:
        return not self.listener.stopped


@attrs.define
class TaskWorker:
    """A one-off job run in a thread at start-up (a catch-up pass); done is as good as alive."""

    task: Callable[[], None]
    name: str = "task"
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"myevents-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.task()
        except Exception:
            log.exception("%s failed", self.name)

    def stop(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def alive(self) -> bool:
        return True


def probes(backends: Backends, workers: Sequence[Worker]) -> dict[str, Callable[[], None]]:
    """Readiness probes: not shutting down, the broker and the store answer, and every background worker runs."""

    def shutdown() -> None:
        if draining.is_set():
            raise RuntimeError("shutting down: finishing the requests in progress")

    def running() -> None:
        dead = [w.name for w in workers if not w.alive()]
        if dead:
            raise RuntimeError(f"not running: {', '.join(dead)}")

    def broker() -> None:
        backends.broker.ping()

    def store() -> None:
        backends.store.ping()

    return {"shutdown": shutdown, "broker": broker, "store": store, "workers": running}


class Service:
    """A web app with its backends and background workers."""

    def __init__(self, name: str, app: WebApp, backends: Backends, workers: Sequence[Worker]) -> None:
        self.name = name
        self.app = app
        self.backends = backends
        self.workers = list(workers)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def start(self) -> Service:
        with self._lock:
            if not self._started:
                for w in self.workers:
                    w.start()
                self._started = True
                log.info("%s service started", self.name, extra={"workers": [w.name for w in self.workers]})
        return self

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Stop the workers in order (the booking service's listener drains before its relay stops), then close
        the backends. Idempotent.

        The workers share ``timeout`` seconds: each waits at most for what is left of it. One still running then
        is left behind (its thread is a daemon) with a warning.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            deadline = time.monotonic() + timeout
            for w in self.workers:
                try:
                    if not w.stop(max(0.0, deadline - time.monotonic())):
                        log.warning("%s did not stop within the %.0f s of closing; going on", w.name, timeout)
                except Exception:
                    log.exception("stopping %s failed", w.name)
            self.backends.close()
            log.info("%s service stopped", self.name)
