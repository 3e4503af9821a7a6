"""Consumer lag: how many messages wait for a consumer group, read from the broker every few seconds.

A running listener reports its own group's lag every ``lag_interval`` seconds (15 by default) to the
``pubsubkit_consumer_lag`` hook, which the built-in metrics turn into the gauge ``pubsubkit_consumer_lag``
(labels ``group`` and ``partition``). A :class:`LagMonitor` does the same for groups whose consumers run
elsewhere, or are stopped: ``broker.lag_monitor("booking").start()``. The lag comes from what the broker keeps
(:meth:`pubsubkit.plugin.Transport.lag`): Kafka's committed offsets against the partitions' ends, RabbitMQ's
and SQS's queue depths, the SQLite log's unsettled rows; never a call per message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from pubsubkit.errors import ConfigError, PubsubkitError
from pubsubkit.plugin.observers import Observers
from pubsubkit.transport import Transport
from pubsubkit.urls import redact

__all__ = ["DEFAULT_INTERVAL", "LagMonitor"]

log = logging.getLogger("pubsubkit.lag")

#: Seconds between two readings of a group's lag, by default.
DEFAULT_INTERVAL = 15.0


class LagMonitor:
    """Reads the lag of ``groups`` every ``interval`` seconds (in a thread, after :meth:`start`) and reports it
    to the observers (the ``pubsubkit_consumer_lag`` gauge). :meth:`poll` reads once, now."""

    def __init__(
        self, transport: Transport, groups: Sequence[str], observers: Observers, interval: float = DEFAULT_INTERVAL
    ) -> None:
        if not groups or not all(isinstance(g, str) and g for g in groups):
            raise ConfigError(f"a lag monitor needs consumer group names, not {list(groups)!r}")
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0:
            raise ConfigError(f"lag interval={interval!r}: give a number of seconds above 0, e.g. 15")
        self.transport = transport
        self.groups = list(groups)
        self.observers = observers
        self.interval = float(interval)
        self._latest: dict[str, Mapping[str, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def poll(self) -> dict[str, Mapping[str, int]]:
        """Read every group's lag now and report it; the groups the broker could tell, with their lag."""
        url = redact(self.transport.url)
        got: dict[str, Mapping[str, int]] = {}
        for group in self.groups:
            try:
                lag = self.transport.lag(group)
            except PubsubkitError as exc:
                if group not in self._warned:
                    log.warning("consumer lag of %s: %s (tried again every %gs)", group, exc, self.interval)
                    self._warned.add(group)
                continue
            self._warned.discard(group)
            if lag is None:
                continue
            got[group] = self._latest[group] = dict(lag)
            self.observers.consumer_lag(group, lag, url)
        return got

    def latest(self, group: str) -> int | None:
        """The total lag of ``group`` at the last reading; ``None`` before one (or where the broker cannot tell)."""
        lag = self._latest.get(group)
        return None if lag is None else sum(lag.values())

    def start(self) -> LagMonitor:
        """Poll every ``interval`` seconds in a daemon thread until :meth:`stop`; returns at once."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pubsubkit-lag", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # a reading must never end the monitor
                log.exception("consumer lag: reading failed")
            if self._stop.wait(self.interval):
                return

    def stop(self, timeout: float = 0.5) -> None:
        """Stop polling (the gauge keeps its last values), waiting at most ``timeout`` seconds for a reading under
        way: one that waits on an unreachable broker ends by itself, in its daemon thread. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
