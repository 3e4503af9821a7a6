"""The listener runtime shared by every backend.

One loop thread owns the backend's :class:`~pubsubkit.transport.Consumer`: it receives, settles (ack,
dead-letter, release) and keeps long deliveries leased. Worker lanes run the handlers; a message goes to the
lane of its key, so messages of one key are handled one after another, in order, while other keys proceed in
parallel. In-flight work is bounded. A handler that raises is retried in its lane with exponential backoff;
after the last attempt, or at once for a fatal error or an undecodable message, the message is dead-lettered
and the stream goes on. Nothing is acknowledged before its handler returned.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

import attrs
import pluggy

from pubsubkit.codec import Codec
from pubsubkit.envelope import Envelope, Header
from pubsubkit.errors import AlreadyProcessed, Closed, ConfigError, ConnectionLost, DecodeError
from pubsubkit.events import UnknownEvent
from pubsubkit.retry import RetryPolicy
from pubsubkit.store import MarkProcessed, Store, UnitOfWork
from pubsubkit.transport import Consumer, DeadLetter, Delivery, Transport

__all__ = ["Handler", "Listener", "Message"]

log = logging.getLogger("pubsubkit.listener")

#: Longest wait for new messages while handled ones are waiting to be acknowledged, in seconds.
_SETTLE_INTERVAL = 0.01

E = TypeVar("E")
Handler = Callable[[Any, "Message"], object]


@attrs.define
class Message:
    """What a handler gets besides the event: the envelope, the group, the attempt, and an inbox-aware unit of
    work for handlers that write state.

    :ivar inbox_id: the id recorded in the group's inbox once this handler is done with the message: the
        message id for the last (usually the only) handler of an event, ``<message id>#<position>`` for the
        handlers before it, so that a retry runs again only the handlers that did not finish.
    """

    envelope: Envelope
    group: str
    attempt: int
    store: Store | None = None
    inbox_id: str = ""
    _marked: UnitOfWork | None = None

    def __attrs_post_init__(self) -> None:
        if not self.inbox_id:
            self.inbox_id = self.envelope.id

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def recorded(self) -> bool:
        """Whether a unit of work of this handler committed the inbox record."""
        return self._marked is not None and self._marked.committed

    def reply_headers(self) -> dict[str, str]:
        """Headers for events caused by this one: same correlation id, this message as the causation."""
        hdrs = {
            Header.CORRELATION_ID: self.envelope.correlation_id or self.envelope.id,
            Header.CAUSATION_ID: self.envelope.id,
        }
        tp = self.envelope.headers.get(Header.TRACEPARENT)
        if tp:
            hdrs[Header.TRACEPARENT] = tp
        return hdrs

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work that also records this message in the group's inbox, atomically with the writes.

        If the message was processed before, committing raises AlreadyProcessed and nothing is written; the
        listener treats that as success. Only the first unit of work a handler opens carries the record;
        if it is abandoned, the listener records the message after the handler returns.
        """
        if self.store is None:
            raise ConfigError("Message.unit_of_work() needs a listener created with store=...")
        uow = UnitOfWork(self.store, headers=self.reply_headers())
        if self._marked is None:
            uow.mark_processed(self.group, self.inbox_id)
            self._marked = uow
        return uow


@attrs.define
class _Work:
    delivery: Delivery
    started: float


class _Outcome:
    ACK = "ack"
    DEAD = "dead"
    RELEASE = "release"


class Listener:
    """Runs handlers for the messages of one consumer group.

    >>> listener = broker.listener("booking", store=store)
    >>> @listener.on(EventCreated)
    ... def project(event, msg): ...
    >>> listener.run(handle_signals=True)  # until SIGTERM / SIGINT / stop(), then drains

    :param group: consumer group: every group gets every message; members of one group share them.
    :param retry: attempts and backoff per message.
    :param max_in_flight: messages received but not yet settled, at most.
    :param concurrency: worker lanes; messages of one key always use the same lane.
    :param store: enables the inbox (duplicate deliveries have one effect) and :meth:`Message.unit_of_work`.
    :param drain_timeout: on stop, how long in-flight handlers may take before their messages are released.
    """

    def __init__(
        self,
        transport: Transport,
        group: str,
        codec: Codec,
        pm: pluggy.PluginManager | None = None,
        *,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 100,
        concurrency: int = 4,
        store: Store | None = None,
        drain_timeout: float = 30.0,
        poll_interval: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        if not group:
            raise ConfigError("a listener needs a consumer group name")
        if max_in_flight < 1 or concurrency < 1:
            raise ConfigError("max_in_flight and concurrency must be >= 1")
        self.transport = transport
        self.group = group
        self.codec = codec
        self.retry = retry or RetryPolicy()
        self.max_in_flight = max_in_flight
        self.concurrency = concurrency
        self.store = store
        self.drain_timeout = drain_timeout
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._handlers: dict[str, list[Handler]] = {}
        self._fallback: list[Handler] = []
        self._hooks = _Hooks(pm)
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._abandon = threading.Event()
        self._running = threading.Lock()
        self._results: queue.SimpleQueue[tuple[_Work, str, DeadLetter | None]] = queue.SimpleQueue()
        self._lanes: list[queue.SimpleQueue[list[_Work] | None]] = []
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None
        self.handled = 0

    # --- subscribing -------------------------------------------------------------------------------------

    def on(self, *event_types: type[Any]) -> Callable[[Callable[[E, Message], object]], Callable[[E, Message], object]]:
        """Decorator: run the function for each of ``event_types`` (``UnknownEvent`` for the fallback)."""

        def deco(fn: Callable[[E, Message], object]) -> Callable[[E, Message], object]:
            for et in event_types:
                self.add_handler(et, fn)
            return fn

        return deco

    def add_handler(self, event_type: type[Any] | str, fn: Handler) -> None:
        if event_type is UnknownEvent:
            self._fallback.append(fn)
            return
        name = event_type if isinstance(event_type, str) else self.codec.registry.name_of(event_type)
        self._handlers.setdefault(name, []).append(fn)

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    # --- running -----------------------------------------------------------------------------------------

    def start(self) -> Listener:
        """Run in a background thread; returns at once."""
        t = threading.Thread(target=self.run, name=f"pubsubkit-listener-{self.group}", daemon=True)
        self._loop_thread = t
        t.start()
        return self

    def run(self, *, handle_signals: bool = False) -> None:
        """Receive and handle until :meth:`stop` (or SIGTERM / SIGINT with ``handle_signals``), then drain."""
        if not self._running.acquire(blocking=False):
            raise ConfigError("this listener is already running")
        if self._closed.is_set():
            raise Closed("listener is closed")
        previous: dict[signal.Signals, Any] = {}
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            names = None if self._fallback else self.names
            consumer = self._open(names)
            self._ready.set()
            try:
                self._loop(consumer)
            finally:
                consumer.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._closed.set()
            self._running.release()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: draining listener %s", signum, self.group)
        self._stop.set()

    def stop(self) -> None:
        """Ask the loop to stop receiving and drain; returns at once (see :meth:`close` to wait)."""
        self._stop.set()

    def close(self, timeout: float | None = None) -> bool:
        """Stop, wait until in-flight work is settled and the consumer left its group. Idempotent.

        Waits at most ``timeout`` seconds (default ``drain_timeout`` + 10); returns whether the loop has ended
        (or never ran in a thread of :meth:`start`).
        """
        self._stop.set()
        t = self._loop_thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout if timeout is not None else self.drain_timeout + 10)
            return not t.is_alive()
        return True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the listener has joined its group (its subscription exists at the broker).

        Brokers without replay only keep what is published after that; returns ``False`` on timeout or if
        the listener stopped before it joined.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._closed.is_set() or (deadline is not None and time.monotonic() > deadline):
                return False
        return True

    @property
    def stopped(self) -> bool:
        return self._closed.is_set()

    def _open(self, names: Sequence[str] | None) -> Consumer:
        delay = 0.1
        while True:
            try:
                return self.transport.consumer(self.group, names)
            except ConnectionLost:
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 5.0)

    def _loop(self, consumer: Consumer) -> None:
        self._lanes = [queue.SimpleQueue() for _ in range(self.concurrency)]
        self._threads = [
            threading.Thread(target=self._lane, args=(q,), name=f"pubsubkit-{self.group}-{i}", daemon=True)
            for i, q in enumerate(self._lanes)
        ]
        for t in self._threads:
            t.start()
        in_flight: dict[int, _Work] = {}
        consumer.bind_settler(functools.partial(self._settle_for, consumer, in_flight))
        lease = getattr(consumer, "lease_seconds", None)
        next_extend = time.monotonic() + (lease / 3 if lease else 1e18)
        rr = 0
        try:
            while not self._stop.is_set():
                self._settle(consumer, in_flight, block=len(in_flight) >= self.max_in_flight)
                free = self.max_in_flight - len(in_flight)
                if free <= 0:
                    self._with_reconnect(consumer.keep_alive)
                    continue
                # With work in flight, come back soon to settle it: acks wait for the next turn of this loop.
                wait = min(self.poll_interval, _SETTLE_INTERVAL) if in_flight else self.poll_interval
                try:
                    got = consumer.receive(min(free, self.batch_size), wait)
                except ConnectionLost as exc:
                    log.warning("listener %s: %s; retrying", self.group, exc)
                    self._stop.wait(0.5)
                    continue
                if got:
                    self._hooks.received([d.envelope for d in got if d.envelope is not None], self.group)
                now = time.monotonic()
                # One hand-over per lane and receive, not per message: waking a lane thread costs more than
                # handling a small message.
                batches: dict[int, list[_Work]] = {}
                for d in got:
                    work = _Work(d, now)
                    in_flight[id(work)] = work
                    key = d.ordering_key
                    if key is None:
                        lane = rr % self.concurrency
                        rr += 1
                    else:
                        lane = zlib.crc32(key.encode()) % self.concurrency
                    batch = batches.get(lane)
                    if batch is None:
                        batches[lane] = [work]
                    else:
                        batch.append(work)
                for lane, works in batches.items():
                    self._lanes[lane].put(works)
                if lease and now >= next_extend:
                    consumer.extend([w.delivery for w in in_flight.values()], lease)
                    next_extend = now + lease / 3
        finally:
            self._drain(consumer, in_flight)

    def _drain(self, consumer: Consumer, in_flight: dict[int, _Work]) -> None:
        deadline = time.monotonic() + self.drain_timeout
        for q in self._lanes:
            q.put(None)
        while in_flight and time.monotonic() < deadline:
            self._settle(consumer, in_flight, block=True)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()  # lanes skip work still queued: it is released below and may go elsewhere
        self._settle(consumer, in_flight, block=False)
        if in_flight:
            log.warning("listener %s: %d messages unfinished after drain; released", self.group, len(in_flight))
            leftovers = [w.delivery for w in in_flight.values()]
            for w in in_flight.values():
                if w.delivery.envelope is not None:
                    self._hooks.handled(w.delivery.envelope, self.group, "released", 0.0, w.delivery.attempt)
            in_flight.clear()
            try:
                consumer.release(leftovers)
            except ConnectionLost:
                log.warning("listener %s: could not release on close; they come back after their lease", self.group)

    def _settle_for(self, consumer: Consumer, in_flight: dict[int, _Work]) -> None:
        """Settle the handlers' results, waiting briefly for one (called by the consumer, from within receive)."""
        self._settle(consumer, in_flight, block=bool(in_flight))

    def _settle(self, consumer: Consumer, in_flight: dict[int, _Work], *, block: bool) -> None:
        items = []
        try:
            if block:
                items.append(self._results.get(timeout=0.05))
            while True:
                items.append(self._results.get_nowait())
        except queue.Empty:
            pass
        if not items:
            return
        acks, releases = [], []
        for work, outcome, letter in items:
            in_flight.pop(id(work), None)
            if outcome == _Outcome.ACK:
                acks.append(work.delivery)
            elif outcome == _Outcome.RELEASE:
                releases.append(work.delivery)
                if work.delivery.envelope is not None:  # settles it for observers too (the in-flight gauge)
                    self._hooks.handled(work.delivery.envelope, self.group, "released", 0.0, work.delivery.attempt)
            else:
                assert letter is not None
                self._with_reconnect(functools.partial(consumer.dead_letter, work.delivery, letter))
                self._hooks.dead_lettered(letter)
        if acks:
            self._with_reconnect(lambda: consumer.ack(acks))
        if releases:
            self._with_reconnect(lambda: consumer.release(releases))

    def _with_reconnect(self, fn: Callable[[], None]) -> None:
        """Settle even across a short broker outage; if the broker stays away the delivery comes back later."""
        delay = 0.1
        for _ in range(8):
            try:
                fn()
                return
            except ConnectionLost as exc:
                log.warning("listener %s: settling failed (%s); retrying", self.group, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        log.error("listener %s: gave up settling; the broker will redeliver", self.group)

    # --- handling ----------------------------------------------------------------------------------------

    def _lane(self, q: queue.SimpleQueue[list[_Work] | None]) -> None:
        while True:
            works = q.get()
            if works is None:
                return
            for work in works:  # in order: messages of one key are in one lane's batches
                if self._abandon.is_set():
                    break
                try:
                    outcome, letter = self._handle(work.delivery)
                except BaseException as exc:  # a bug here must not lose the message: give it back
                    log.exception("listener %s: internal error", self.group)
                    outcome, letter = _Outcome.RELEASE, None
                    if not isinstance(exc, Exception):
                        raise
                self._results.put((work, outcome, letter))

    def _letter(self, d: Delivery, reason: str, error: str, attempts: int) -> DeadLetter:
        env = d.envelope
        return DeadLetter(
            group=self.group,
            reason=reason,
            error=error,
            attempts=attempts,
            original_name=env.name if env is not None else None,
            envelope=env,
            raw=d.raw,
        )

    def _handle(self, d: Delivery) -> tuple[str, DeadLetter | None]:
        if d.revoked is not None and d.revoked.is_set():
            return _Outcome.RELEASE, None  # no longer the consumer's: its new owner handles it
        env = d.envelope
        if env is None:
            return _Outcome.DEAD, self._letter(d, "poison", d.error or "undecodable message", d.attempt)
        handlers = self._handlers.get(env.name)
        if handlers is None:
            if env.name in self.codec.registry or not self._fallback:
                self._hooks.handled(env, self.group, "skipped", 0.0, d.attempt)
                return _Outcome.ACK, None
            handlers = self._fallback
        if self.store is not None and self.store.inbox_contains(self.group, env.id):
            self._hooks.handled(env, self.group, "duplicate", 0.0, d.attempt)
            return _Outcome.ACK, None
        try:
            event = self.codec.decode(env)
        except DecodeError as exc:
            return _Outcome.DEAD, self._letter(d, "poison", str(exc), d.attempt)
        attempt = d.attempt
        while True:
            start = time.monotonic()
            try:
                duplicate = self._run_handlers(handlers, event, env, attempt)
            except Exception as exc:
                took = time.monotonic() - start
                error = f"{type(exc).__name__}: {exc}"
                if self.retry.is_fatal(exc):
                    self._hooks.handled(env, self.group, "failed", took, attempt)
                    log.warning("listener %s: %s %s fatal: %s", self.group, env.name, env.id, error)
                    return _Outcome.DEAD, self._letter(d, "fatal", _with_trace(exc, error), attempt)
                if attempt >= self.retry.attempts:
                    self._hooks.handled(env, self.group, "failed", took, attempt)
                    log.warning("listener %s: %s %s failed %d times: %s", self.group, env.name, env.id, attempt, error)
                    return _Outcome.DEAD, self._letter(d, "failed", _with_trace(exc, error), attempt)
                self._hooks.handled(env, self.group, "retry", took, attempt)
                if self._backoff(d, self.retry.delay(attempt)):
                    return _Outcome.RELEASE, None
                attempt += 1
                continue
            outcome = "duplicate" if duplicate else "ok"
            self._hooks.handled(env, self.group, outcome, time.monotonic() - start, attempt)
            if not duplicate:
                self.handled += 1
            return _Outcome.ACK, None

    def _backoff(self, d: Delivery, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; ``True`` when the listener stops or the delivery is revoked."""
        if d.revoked is None:
            return self._stop.wait(delay)
        deadline = time.monotonic() + delay
        while not d.revoked.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._stop.wait(min(left, 0.05)):
                return True
        return True

    def _run_handlers(self, handlers: Sequence[Handler], event: Any, env: Envelope, attempt: int) -> bool:
        """Run each handler not yet recorded in the inbox; ``True`` if another delivery did all the work."""
        store = self.store
        last = len(handlers) - 1
        for i, fn in enumerate(handlers):
            inbox_id = env.id if i == last else f"{env.id}#{i}"
            if store is not None and i < last and store.inbox_contains(self.group, inbox_id):
                continue  # done by an earlier attempt
            msg = Message(env, self.group, attempt, store, inbox_id)
            try:
                fn(event, msg)
                if store is not None and not msg.recorded:
                    store.commit([MarkProcessed(self.group, inbox_id)])
            except AlreadyProcessed:
                if i == last:
                    return True
                # another delivery of this message finished this handler first: go on with the next one
        return False


def _with_trace(exc: BaseException, error: str) -> str:
    tb = "".join(traceback.format_exception(exc)[-3:])
    return f"{error}\n{tb}"[:4000]


class _Hooks:
    """Observation hooks, called only when some plugin implements them."""

    def __init__(self, pm: pluggy.PluginManager | None) -> None:
        def get(name: str) -> Any:
            if pm is None:
                return None
            hook = getattr(pm.hook, name)
            return hook if hook.get_hookimpls() else None

        self._received = get("pubsubkit_received")
        self._handled = get("pubsubkit_handled")
        self._dead = get("pubsubkit_dead_lettered")

    def received(self, envelopes: list[Envelope], group: str) -> None:
        if self._received is not None and envelopes:
            self._received(envelopes=envelopes, group=group)

    def handled(self, envelope: Envelope, group: str, outcome: str, seconds: float, attempt: int) -> None:
        if self._handled is not None:
            self._handled(envelope=envelope, group=group, outcome=outcome, seconds=seconds, attempt=attempt)

    def dead_lettered(self, letter: DeadLetter) -> None:
        if self._dead is not None:
            self._dead(letter=letter)
