"""The outbox relay: publishes events committed with a unit of work, in commit order, then marks them sent.

A crash after publishing and before marking means the batch is published again: delivery is at least once,
and consumers with an inbox see one effect. Several processes may run a relay on one store; a lease in the
store lets only one of them publish at a time, so order holds.
"""

from __future__ import annotations

import logging
import threading
import time

from pubsubkit.checks import seconds, whole
from pubsubkit.emitter import Emitter
from pubsubkit.envelope import new_id
from pubsubkit.errors import ConnectionLost, PublishError
from pubsubkit.plugin.observers import NO_OBSERVERS, Observers
from pubsubkit.retry import Backoff, Retrier, retry_call
from pubsubkit.store import Store
from pubsubkit.urls import redact

__all__ = ["OutboxRelay"]

log = logging.getLogger("pubsubkit.outbox")


class OutboxRelay:
    """Moves outbox entries from ``store`` to the broker behind ``emitter``.

    :param batch_size: entries read and published per round trip.
    :param poll_interval: how often to look for entries committed by other processes; commits in this
        process wake the relay at once.
    :param lease: seconds a relay holds the store's relay lease between renewals.

    A batch is published once per round (the emitter's own retry is off); a failed round is retried after a
    growing wait (:attr:`BACKOFF`), which :meth:`stop` ends: the relay's loop is the one retry layer.
    """

    #: Waits between rounds after the broker or the store failed.
    BACKOFF = Backoff(initial=0.1, multiplier=2.0, max_delay=5.0)

    def __init__(
        self,
        store: Store,
        emitter: Emitter,
        observers: Observers = NO_OBSERVERS,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        lease: float = 10.0,
    ) -> None:
        self.store = store
        self.emitter = emitter
        self.batch_size = whole("relay", "batch_size", batch_size)
        self.poll_interval = seconds("relay", "poll_interval", poll_interval, positive=True)
        self.lease = seconds("relay", "lease", lease, positive=True)
        self.owner = new_id()
        self._url = redact(store.url)
        self._observers = observers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.relayed = 0

    def relay_once(self) -> int:
        """Publish one batch of pending entries; returns how many were published."""
        entries = self.store.outbox_pending(self.batch_size)
        if not entries:
            return 0
        self.emitter.publish([e.envelope for e in entries], retry_for=0)
        self.store.outbox_mark_sent([e.seq for e in entries])
        self.relayed += len(entries)
        if self._observers.wants_relayed:
            # A short batch was all there was; after a full one, count what waits behind it.
            waiting = len(entries) if len(entries) < self.batch_size else len(entries) + self.store.outbox_count()
            self._observers.outbox_relayed(len(entries), waiting, self._url)
        return len(entries)

    def drain(self, timeout: float = 30.0) -> None:
        """Publish until the outbox is empty, waiting out broker outages; raise after ``timeout`` seconds (the
        last error, or :class:`TimeoutError`)."""
        deadline = time.monotonic() + timeout
        while retry_call(
            self.relay_once,
            retry_on=(ConnectionLost, PublishError),
            retryable=lambda exc: getattr(exc, "retryable", True),
            stop=self._stop,
            backoff=self.BACKOFF,
            deadline=deadline,
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("outbox did not drain in time")

    def run(self) -> None:
        """Relay until :meth:`stop`. Broker outages are waited out; nothing is dropped."""
        seen = -1
        retrier = Retrier(self.BACKOFF, self._stop)
        has_lease = False
        lease_until = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if not has_lease or now > lease_until - self.lease / 2:
                    has_lease = self.store.outbox_claim(self.owner, self.lease)
                    lease_until = now + self.lease
                if has_lease and self.relay_once():
                    retrier.reset()
                    continue
            except (ConnectionLost, PublishError) as exc:
                log.warning("outbox relay: %s; retrying in %.1fs", exc, retrier.next_delay)
                retrier.wait()
                continue
            except Exception:
                log.exception("outbox relay: unexpected error; retrying in %.1fs", retrier.next_delay)
                retrier.wait()
                continue
            seen = self.store.wait_outbox(seen, self.poll_interval)

    def start(self) -> OutboxRelay:
        """Run :meth:`run` in a background thread; returns at once."""
        self._thread = threading.Thread(target=self.run, name="pubsubkit-outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the relay thread (entries not yet published stay in the outbox). Idempotent.

        Waits at most ``timeout`` seconds; returns whether the thread has ended (or never started).
        """
        self._stop.set()
        self.store.notify_outbox()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
