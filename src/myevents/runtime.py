"""What a service process holds: its backends, its web app and the background workers that move events.

``Service.start()`` starts the workers (outbox relay, listener) and must run in the process that serves
requests: under gunicorn that is each worker after the fork, never the master (threads do not survive a fork).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import attrs
from prometheus_client import CollectorRegistry

import pubsubkit
from myevents.web import WebApp

__all__ = [
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


class Worker(Protocol):
    """A background worker: started once, stopped once (stopping waits for in-flight work)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...


@attrs.define
class RelayWorker:
    relay: pubsubkit.OutboxRelay
    name: str = "relay"
    _started: bool = False

    def start(self) -> None:
        self.relay.start()
        self._started = True

    def stop(self) -> None:
        self.relay.stop()
        self._started = False

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

    def stop(self) -> None:
        self.listener.close()

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

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(10)

    def alive(self) -> bool:
        return True


def probes(backends: Backends, workers: Sequence[Worker]) -> dict[str, Callable[[], None]]:
    """Readiness probes: the broker and the store answer, and every background worker runs."""

    def running() -> None:
        dead = [w.name for w in workers if not w.alive()]
        if dead:
            raise RuntimeError(f"not running: {', '.join(dead)}")

    def broker() -> None:
        backends.broker.ping()

    def store() -> None:
        backends.store.ping()

    return {"broker": broker, "store": store, "workers": running}


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

    def close(self) -> None:
        """Stop the workers in order (the booking service's listener drains before its relay stops), then close
        the backends. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for w in self.workers:
                try:
                    w.stop()
                except Exception:
                    log.exception("stopping %s failed", w.name)
            self.backends.close()
            log.info("%s service stopped", self.name)
