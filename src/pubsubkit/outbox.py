"""The outbox relay: publishes events committed with a unit of work, in commit order, then marks them sent.

A crash after publishing and before marking means the batch is published again: delivery is at least once,
and consumers with an inbox see one effect. Several processes may run a relay on one store; a lease in the
store lets only one of them publish at a time, so order holds.
"""

from __future__ import annotations

import logging
import threading
import time

import pluggy

from pubsubkit.emitter import Emitter
from pubsubkit.envelope import new_id
from pubsubkit.errors import ConnectionLost, PublishError
from pubsubkit.registry import redact
from pubsubkit.store import Store

__all__ = ["OutboxRelay"]

log = logging.getLogger("pubsubkit.outbox")


class OutboxRelay:
    """Moves outbox entries from ``store`` to the broker behind ``emitter``.

    :param batch_size: entries read and published per round trip.
    :param poll_interval: how often to look for entries committed by other processes; commits in this
        process wake the relay at once.
    :param lease: seconds a relay holds the store's relay lease between renewals.
    """

    def __init__(
        self,
        store: Store,
        emitter: Emitter,
        pm: pluggy.PluginManager | None = None,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        lease: float = 10.0,
    ) -> None:
        self.store = store
        self.emitter = emitter
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.owner = new_id()
        self._url = redact(store.url)
        hook = pm.hook.pubsubkit_outbox_relayed if pm is not None else None
        self._hook = hook if hook is not None and hook.get_hookimpls() else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.relayed = 0

    def relay_once(self) -> int:
        """Publish one batch of pending entries; returns how many were published."""
        entries = self.store.outbox_pending(self.batch_size)
        if not entries:
            return 0
        self.emitter.publish([e.envelope for e in entries])
        self.store.outbox_mark_sent([e.seq for e in entries])
        self.relayed += len(entries)
        if self._hook is not None:
            # A short batch was all there was; after a full one, count what waits behind it.
            waiting = len(entries) if len(entries) < self.batch_size else len(entries) + self.store.outbox_count()
            self._hook(count=len(entries), pending=waiting, url=self._url)
        return len(entries)

    def drain(self, timeout: float = 30.0) -> None:
        """Publish until the outbox is empty (or raise after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.relay_once():
            if time.monotonic() > deadline:
                raise TimeoutError("outbox did not drain in time")

    def run(self) -> None:
        """Relay until :meth:`stop`. Broker outages are waited out; nothing is dropped."""
        seen = -1
        delay = 0.1
        has_lease = False
        lease_until = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if not has_lease or now > lease_until - self.lease / 2:
                    has_lease = self.store.outbox_claim(self.owner, self.lease)
                    lease_until = now + self.lease
                if has_lease and self.relay_once():
                    delay = 0.1
                    continue
            except (ConnectionLost, PublishError) as exc:
                log.warning("outbox relay: %s; retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception:
                log.exception("outbox relay: unexpected error; retrying")
                self._stop.wait(1.0)
                continue
            seen = self.store.wait_outbox(seen, self.poll_interval)

    def start(self) -> OutboxRelay:
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
