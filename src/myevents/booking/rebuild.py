"""Rebuilding the booking service's copy of events and locations from the history the broker keeps.

The copy (collections ``booking_events`` and ``booking_locations``) is wiped and read again from the bus by a
consumer group of its own, ``booking-rebuild-<id>``, with the projector's own handlers. A group that joins for
the first time receives every message the broker kept (brokers with the ``replay`` capability), and its inbox
records are its own, so nothing is skipped because the service's group ``booking`` handled it before. Bookings
are never changed; once the group has caught up, every event's ``booked`` and ``seats_left`` are recomputed from
the capacity just rebuilt and the seats of the bookings kept, and the temporary group is removed from the broker.

The booking service must be stopped meanwhile: its listener would write into the copy being rebuilt, and a
booking made while seats are recomputed could be counted wrong. With ``into``, the copy is rebuilt into another
store and the bookings are copied there first; the service's store is only read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
from prometheus_client import CollectorRegistry

import pubsubkit
from myevents.booking.ledger import Ledger
from myevents.booking.metrics import BookingMetrics
from myevents.booking.models import BOOKINGS, EVENT_COPIES, LOCATION_COPIES, Booking
from myevents.booking.projector import GROUP, Projector
from pubsubkit.plugin import hookimpl
from pubsubkit.plugin.observers import Outcome
from pubsubkit.urls import redact

__all__ = ["IDLE_SECONDS", "WAIT_SECONDS", "RebuildResult", "rebuild"]

log = logging.getLogger("myevents.booking.rebuild")

#: Seconds without any message received or settled after which the temporary group has caught up.
IDLE_SECONDS = 3.0
#: Seconds the rebuild waits for the first message (joining a Kafka group takes a few) before it concludes that
#: the broker kept nothing.
WAIT_SECONDS = 60.0
#: Documents deleted or copied in one unit of work (DynamoDB takes 100 writes in a transaction).
_BATCH = 100
#: Seconds between two progress lines.
_PROGRESS_EVERY = 2.0


@attrs.define
class RebuildResult:
    """What a rebuild did.

    :ivar group: the temporary consumer group that read the history.
    :ivar read: messages received (every name: the booking service's own events are read and skipped).
    :ivar applied: messages the projector's handlers applied.
    :ivar failed: messages given up on (dead letters of ``group``): the copy misses what they carried.
    :ivar before: events and locations in the copy before it was wiped (of the source store with ``into``).
    :ivar after: events and locations in the rebuilt copy.
    :ivar bookings: bookings kept (copied, with ``into``), and those naming an event the copy does not know.
    """

    group: str
    read: int = 0
    applied: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    seconds: float = 0.0
    before: tuple[int, int] = (0, 0)
    after: tuple[int, int] = (0, 0)
    bookings: int = 0
    orphans: int = 0

    @property
    def complete(self) -> bool:
        """No message failed and the copy knows at least as many events and locations as before."""
        return self.failed == 0 and self.after[0] >= self.before[0] and self.after[1] >= self.before[1]


class _Watch:
    """Counts what the temporary group receives and settles (a plugin of the broker's plugin manager)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.lock = threading.Lock()
        self.received = 0
        self.settled = 0
        self.outcomes: Counter[str] = Counter()
        self.last = time.monotonic()

    def _touch(self) -> None:
        self.last = time.monotonic()

    @hookimpl
    def pubsubkit_received(self, envelopes: Any, group: str) -> None:
        if group == self.group:
            with self.lock:
                self.received += len(envelopes)
                self._touch()

    @hookimpl
    def pubsubkit_handled(self, group: str, outcome: Outcome) -> None:
        if group == self.group:
            with self.lock:
                self.outcomes[outcome.value] += 1
                if outcome.final:
                    self.settled += 1
                self._touch()

    @hookimpl
    def pubsubkit_dead_lettered(self, letter: pubsubkit.DeadLetter) -> None:
        # A message that failed was reported as handled ("failed"); a poison one (undecodable) only here.
        if letter.group == self.group and letter.reason == "poison":
            with self.lock:
                self.outcomes["failed"] += 1
                self.settled += 1
                self._touch()

    def idle_for(self) -> float:
        """Seconds since the last message was received or settled, or 0 while some are not settled."""
        with self.lock:
            return 0.0 if self.settled < self.received else time.monotonic() - self.last


def _counts(ledger: Ledger) -> tuple[int, int]:
    return _count(ledger.store, EVENT_COPIES), _count(ledger.store, LOCATION_COPIES)


def _ids(store: pubsubkit.Store, collection: str, after: str | None) -> list[str]:
    return [str(d["id"]) for d in store.find_raw(collection, {}, _BATCH, after)]


def _count(store: pubsubkit.Store, collection: str) -> int:
    n, after = 0, None
    while ids := _ids(store, collection, after):
        n, after = n + len(ids), ids[-1]
    return n


def _wipe(coll: pubsubkit.Collection[Any]) -> int:
    """Delete every document of ``coll`` (read raw: a document the class no longer decodes goes too)."""
    n = 0
    while ids := _ids(coll.store, coll.name, None):
        coll.store.commit([coll.delete_op(i, must_exist=False) for i in ids])
        n += len(ids)
    return n


def _copy_bookings(source: pubsubkit.Store, target: Ledger) -> int:
    """Put every booking of ``source`` into the target store (replacing any with the same id)."""
    bookings = source.collection(BOOKINGS, Booking, indexes=["event_id", "user_id"])
    n, batch = 0, []
    for b in bookings.iter(page_size=_BATCH):
        batch.append(target.bookings.put_op(b))
        if len(batch) == _BATCH:
            target.store.commit(batch)
            n, batch = n + len(batch), []
    if batch:
        target.store.commit(batch)
        n += len(batch)
    return n


def recompute_seats(ledger: Ledger) -> tuple[int, int]:
    """Set every event's ``booked`` to the seats of its bookings not cancelled, and ``seats_left`` to its
    capacity less those (the invariant :meth:`Ledger.book` and the projector's fix-ups keep). Returns how many
    bookings were counted and how many name an event the copy does not know."""
    booked: Counter[str] = Counter()
    kept = 0
    for b in ledger.bookings.iter(page_size=500):
        kept += 1
        if not b.cancelled:
            booked[b.event_id] += b.seats
    for ev in ledger.events.iter(page_size=500):
        seats = booked.get(ev.id, 0)
        if ev.booked != seats or ev.seats_left != ev.capacity - seats:
            ledger.events.update(
                ev.id, set={"booked": seats, "seats_left": ev.capacity - seats}, expect={"capacity": ev.capacity}
            )
    orphans = len([e for e in booked if ledger.events.find_one(e) is None])
    return kept, orphans


def _forget(broker: pubsubkit.Broker, group: str) -> None:
    """Remove the temporary group; Kafka may need a moment to see that its member left."""
    for attempt in range(10):
        try:
            broker.transport.forget_group(group)
            return
        except NotImplementedError:
            log.warning("broker %s cannot remove consumer group %s; it stays there, unused", broker.url, group)
            return
        except pubsubkit.PubsubkitError as exc:
            if attempt == 9:
                log.warning("could not remove consumer group %s (%s); remove it by hand", group, exc)
                return
            time.sleep(0.5)


def check_replay(broker: pubsubkit.Broker) -> None:
    """Raise :class:`pubsubkit.ConfigError` naming the fix when ``broker`` keeps no history to rebuild from."""
    if not broker.capabilities.replay:
        raise pubsubkit.ConfigError(
            f"broker {broker.url} keeps no history (capability replay is false), so the booking service's copy"
            " cannot be rebuilt from it: rebuild needs a broker that keeps a log (Kafka, SQLite); check"
            " MYEVENTS_BROKER_URL or the config file"
        )


def rebuild(
    broker: pubsubkit.Broker,
    store: pubsubkit.Store,
    *,
    source: pubsubkit.Store | None = None,
    idle: float = IDLE_SECONDS,
    wait: float = WAIT_SECONDS,
    progress: Callable[[str], None] = lambda line: None,
) -> RebuildResult:
    """Rebuild the copy of events and locations in ``store`` from ``broker``'s history (see the module).

    :param source: the service's store when the copy is rebuilt into another one (``store``): its bookings
        are copied into ``store`` first, and it is only read.
    :param idle: seconds without a message, once every one received is settled, after which the history has
        been read.
    :param wait: seconds to wait for the first message before concluding that the broker kept nothing.
    :param progress: called with one line of progress now and then, and a last one.
    """
    check_replay(broker)
    if broker.pm is None:
        raise pubsubkit.ConfigError("rebuild needs a broker opened with pubsubkit.open_broker (it has no plugins)")
    started = time.monotonic()
    ledger = Ledger(store, BookingMetrics(CollectorRegistry()))
    group = f"{GROUP}-rebuild-{pubsubkit.new_id()}"
    result = RebuildResult(group)
    result.before = _prepare(ledger, source, progress)
    watch = _Watch(group)
    broker.pm.register(watch)
    try:
        _read_history(broker, store, ledger, watch, idle=idle, wait=wait, progress=progress)
    finally:
        broker.pm.unregister(watch)
    result.read = watch.received
    result.applied = watch.outcomes["ok"]
    result.skipped = watch.outcomes["skipped"]
    result.duplicates = watch.outcomes["duplicate"]
    result.failed = watch.outcomes["failed"]
    result.bookings, result.orphans = recompute_seats(ledger)
    result.after = _counts(ledger)
    result.seconds = time.monotonic() - started
    progress(
        f"done in {result.seconds:.1f}s: {result.read} read, {result.applied} applied, {result.skipped} skipped"
        f" (no handler), {result.duplicates} duplicates, {result.failed} failed; copy: {result.after[0]} events,"
        f" {result.after[1]} locations; seats recomputed from {result.bookings} bookings"
    )
    return result


def _prepare(ledger: Ledger, source: pubsubkit.Store | None, progress: Callable[[str], None]) -> tuple[int, int]:
    """Copy ``source``'s bookings into ``ledger``'s store (when given), wipe the copy; the copy's counts before."""
    store = ledger.store
    if source is not None:
        pending = source.outbox_count()
        if pending:
            raise pubsubkit.ConfigError(
                f"{pending} events of the booking service wait in the outbox of {redact(source.url)}: start the booking"
                " service on that store until they are published (pubsubkit_outbox_pending in its /metrics falls to"
                " 0), stop it, then rebuild"
            )
        before = _counts(Ledger(source, BookingMetrics(CollectorRegistry())))
        copied = _copy_bookings(source, ledger)
        progress(f"copied {copied} bookings into {redact(store.url)}")
    else:
        before = _counts(ledger)
    wiped = _wipe(ledger.events) + _wipe(ledger.locations)
    progress(
        f"the copy had {before[0]} events and {before[1]} locations; {wiped} documents of it"
        f" wiped in {redact(store.url)}"
    )
    return before


def _read_history(
    broker: pubsubkit.Broker,
    store: pubsubkit.Store,
    ledger: Ledger,
    watch: _Watch,
    *,
    idle: float,
    wait: float,
    progress: Callable[[str], None],
) -> None:
    """Project ``broker``'s history into ``ledger`` with the new consumer group of ``watch`` (a plugin of the
    broker, which counts what the group receives), until the history has been read."""
    group = watch.group
    listener = broker.listener(group, store=store, poll_interval=0.1, history=True)
    try:
        Projector(ledger).subscribe(listener)
        listener.start()
        if not listener.wait_ready(wait):
            raise pubsubkit.ConnectionLost(f"could not join the broker {broker.url} within {wait:.0f}s")
        progress(f"reading the history of {broker.url} with consumer group {group}")
        joined = time.monotonic()
        next_line = joined + _PROGRESS_EVERY
        while True:
            time.sleep(0.05)
            if listener.stopped:
                raise pubsubkit.ConnectionLost(f"the listener of {group} stopped; see the log above")
            now = time.monotonic()
            with watch.lock:
                received, applied = watch.received, watch.outcomes["ok"]
            if now >= next_line:
                progress(f"{received} read, {applied} applied")
                next_line = now + _PROGRESS_EVERY
            if received == 0:
                if now - joined >= wait:
                    break  # the broker kept nothing
            elif watch.idle_for() >= idle:
                break
    finally:
        listener.close()
        _forget(broker, group)
