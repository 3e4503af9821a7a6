"""The listener runtime shared by every backend.

One loop thread owns the backend's :class:`~pubsubkit.transport.Consumer`: it receives, settles (ack,
dead-letter, release) and keeps long deliveries leased. Worker lanes run the per-delivery
:class:`~pubsubkit.pipeline.Pipeline` (inbox, decoding, handlers, retries, dead letters); a message goes to the
lane of its key, so messages of one key are handled one after another, in order, while other keys proceed in
parallel. In-flight work is bounded. Nothing is acknowledged before its handlers returned.

The parts: :mod:`pubsubkit.handlers` (which function runs for which event), :mod:`pubsubkit.pipeline` (a
delivery to its settlement) and this module (the loop, the lanes, settling, draining, signals).
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from pubsubkit.batch import Batch, BatchHandler
from pubsubkit.batching import BatchRunner
from pubsubkit.checks import seconds, whole
from pubsubkit.codec import Codec
from pubsubkit.errors import Closed, ConfigError, ConnectionLost
from pubsubkit.handlers import E, Handler, HandlerTable
from pubsubkit.lanes import Lanes, ThreadLanes
from pubsubkit.message import Message
from pubsubkit.pipeline import Pipeline, Settle, Settlement
from pubsubkit.plugin.observers import NO_OBSERVERS, Observers, Outcome
from pubsubkit.retry import Backoff, Retrier, RetryPolicy, retry_call
from pubsubkit.store import Store
from pubsubkit.transport import Consumer, Delivery, Transport

if TYPE_CHECKING:
    from pubsubkit.lag import LagMonitor

__all__ = ["Batch", "Handler", "Listener", "Message"]

log = logging.getLogger("pubsubkit.listener")

#: Longest wait for new messages while handled ones are waiting to be acknowledged, in seconds.
_SETTLE_INTERVAL = 0.01
#: Waits before joining the group again after the broker could not be reached.
_JOIN_BACKOFF = Backoff(initial=0.1, multiplier=2.0, max_delay=5.0)
#: Waits before receiving again after a lost connection.
_RECEIVE_BACKOFF = Backoff(initial=0.5, multiplier=1.0, max_delay=0.5)
#: Waits between tries of a settlement (ack, release, dead letter) across a short broker outage.
_SETTLE_BACKOFF = Backoff(initial=0.1, multiplier=2.0, max_delay=2.0)
_SETTLE_ATTEMPTS = 8


#: What a lane gives back: a delivery and its settlement.
_Result = tuple[Delivery, Settlement]


def _check_arguments(
    group: object,
    store: object,
    retry: object,
    max_in_flight: int,
    concurrency: int,
    drain_timeout: float,
    poll_interval: float,
    batch_size: int,
) -> None:
    """The checks of :class:`Listener`'s arguments, each error naming the argument and the fix."""
    if not isinstance(group, str) or not group:
        raise ConfigError(f"a listener needs a consumer group name (a non-empty str), not {group!r}")
    if store is not None and not isinstance(store, Store):
        hint = f" (open it with pubsubkit.open_store({store!r}))" if isinstance(store, str) else ""
        raise TypeError(f"store= takes a pubsubkit Store or None, not {type(store).__name__}{hint}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry= takes a pubsubkit.RetryPolicy, not {type(retry).__name__}")
    for name, value in (("max_in_flight", max_in_flight), ("concurrency", concurrency), ("batch_size", batch_size)):
        whole("listener", name, value)
    seconds("listener", "poll_interval", poll_interval, positive=True)
    seconds("listener", "drain_timeout", drain_timeout)


class Listener:
    """Runs handlers for the messages of one consumer group::

        listener = broker.listener("booking", store=store)

        @listener.on(EventCreated)
        def project(event, msg): ...

        listener.run(handle_signals=True)  # until SIGTERM / SIGINT / stop(), then drains

    :param group: consumer group: every group gets every message; members of one group share them.
    :param observers: the plugins' observers and handler middleware (:class:`~pubsubkit.plugin.Observers`).
    :param retry: attempts and backoff per message.
    :param max_in_flight: messages received but not yet settled, at most.
    :param concurrency: worker lanes; messages of one key always use the same lane.
    :param store: enables the inbox (duplicate deliveries have one effect) and :meth:`Message.unit_of_work`.
    :param drain_timeout: on stop, how long in-flight handlers may take before their messages are released.
    :param history: a group that joins for the first time receives what the broker kept from before (brokers with
        the ``replay`` capability); False: only what is published from its first join on.
    :param lag_interval: seconds between two readings of the group's lag while it runs (the gauge
        ``pubsubkit_consumer_lag``, :attr:`lag`); 0: none.
    """

    def __init__(
        self,
        transport: Transport,
        group: str,
        codec: Codec,
        observers: Observers = NO_OBSERVERS,
        *,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 100,
        concurrency: int = 4,
        store: Store | None = None,
        drain_timeout: float = 30.0,
        poll_interval: float = 0.5,
        batch_size: int = 100,
        history: bool = True,
        lag_interval: float = 15.0,
    ) -> None:
        _check_arguments(group, store, retry, max_in_flight, concurrency, drain_timeout, poll_interval, batch_size)
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
        if not isinstance(history, bool):
            raise ConfigError(f"listener {group}: history={history!r}: give True (the default) or False")
        self.history = history
        seconds("listener", "lag_interval", lag_interval)
        self.lag_interval = lag_interval
        self._lag: LagMonitor | None = None
        self._table = HandlerTable(codec.registry, f"pubsubkit-async-{group}")
        self._observers = observers
        self._stop = threading.Event()
        self._quit = threading.Event()  # set when close() stops waiting: settling retries end too
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._abandon = threading.Event()
        self._running = threading.Lock()
        self._pipeline = Pipeline(group, self._table, codec, self.retry, observers, self._stop, store)
        self._batches = BatchRunner(self._pipeline)
        # A lane puts one (work, settlement) per message, or a batch's list of them (acknowledged together).
        self._results: queue.SimpleQueue[_Result | list[_Result]] = queue.SimpleQueue()
        self._lanes: Lanes
        self._loop_thread: threading.Thread | None = None

    @property
    def handled(self) -> int:
        """Messages whose handlers all ran to completion in this listener."""
        return self._pipeline.handled

    # --- subscribing -------------------------------------------------------------------------------------

    def on(self, *event_types: type[Any]) -> Callable[[Callable[[E, Message], object]], Callable[[E, Message], object]]:
        """Decorator: run the function for each of ``event_types`` (``UnknownEvent`` for the fallback)."""
        return self._table.decorator(*event_types)

    def add_handler(self, event_type: type[Any] | str, fn: Handler) -> None:
        """Run ``fn`` for ``event_type`` (an event class, a wire name, or ``UnknownEvent``)."""
        self._table.add(event_type, fn)

    def on_batch(
        self, *event_types: type[Any] | str, max_size: int = 100, max_wait: float = 0.2
    ) -> Callable[[Callable[[list[Any], Batch], object]], Callable[[list[Any], Batch], object]]:
        """Decorator: run the function with lists of events of ``event_types``, ``fn(events, batch)``.

        A batch holds up to ``max_size`` messages and waits at most ``max_wait`` seconds after its first for
        more; its messages are acknowledged together after the function returned. Retries, dead letters, the
        rule for a poison message inside a batch and the inbox: :mod:`pubsubkit.batching`. A batch holds
        messages of one lane, so for full batches make the listener with ``max_in_flight`` of at least
        ``max_size`` times ``concurrency`` (or ``concurrency=1``).
        """

        def deco(fn: Callable[[list[Any], Batch], object]) -> Callable[[list[Any], Batch], object]:
            self.add_batch_handler(event_types, fn, max_size=max_size, max_wait=max_wait)
            return fn

        return deco

    def add_batch_handler(
        self, event_types: Sequence[type[Any] | str], fn: BatchHandler, *, max_size: int = 100, max_wait: float = 0.2
    ) -> None:
        """Run ``fn(events, batch)`` for batches of ``event_types`` (see :meth:`on_batch`)."""
        whole("on_batch", "max_size", max_size)
        seconds("on_batch", "max_wait", max_wait)
        if max_size > self.max_in_flight:
            raise ConfigError(
                f"on_batch(max_size={max_size}) is more than this listener's max_in_flight={self.max_in_flight}:"
                f" the batch could never fill; make the listener with max_in_flight={max_size} or more"
            )
        if isinstance(event_types, (str, type)):
            event_types = (event_types,)
        self._table.add_batch(tuple(event_types), fn, max_size, max_wait)

    @property
    def names(self) -> list[str]:
        """The wire names this listener has handlers for."""
        return self._table.names

    # --- running -----------------------------------------------------------------------------------------

    def start(self) -> Listener:
        """Run in a background thread; returns at once. A listener runs once: starting it again, or after
        :meth:`close`, raises here (ConfigError, Closed) rather than in the thread."""
        if self._closed.is_set() or (self._loop_thread is None and self._stop.is_set()):
            raise Closed(f"listener {self.group} is closed: make a new one with broker.listener({self.group!r})")
        if self._loop_thread is not None or self._running.locked():
            raise ConfigError(f"listener {self.group} is already running: start() it once")
        t = threading.Thread(target=self.run, name=f"pubsubkit-listener-{self.group}", daemon=True)
        self._loop_thread = t
        t.start()
        return self

    async def serve(self) -> None:
        """Run inside an event loop: the loop of :meth:`run` in a thread while the calling task awaits, until
        :meth:`stop` or :meth:`close`; re-raises what ended it (a fatal error when joining). Cancelling the
        task stops the listener and waits for its drain before the cancellation goes on. An ASGI app runs it
        as a task from its lifespan (or uses ``async with listener:``). Its ``async def`` handlers run on the
        caller's loop, so they can use what the application made on it; do not block that loop (a sync
        :meth:`close` called on it would wait for handlers that cannot run)."""
        import asyncio  # here: asyncio is loaded only by those who use it

        from pubsubkit.coroutines import in_own_thread

        self._table.runner.bind(asyncio.get_running_loop())  # async handlers run on the application's loop
        task = asyncio.ensure_future(in_own_thread(self.run, f"pubsubkit-listener-{self.group}"))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.stop()
            await task
            raise

    async def __aenter__(self) -> Listener:
        """``async with listener:`` starts it (in a thread) and, on the way out, closes it without blocking
        the event loop. Its ``async def`` handlers run on the caller's loop."""
        import asyncio

        self._table.runner.bind(asyncio.get_running_loop())
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        from pubsubkit.coroutines import in_own_thread

        await in_own_thread(self.close, f"pubsubkit-listener-{self.group}-close")

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
            consumer = self._open(self._table.subscription)
            consumer.set_window(self.max_in_flight)
            self._ready.set()
            if self.lag_interval > 0:
                from pubsubkit.lag import LagMonitor

                self._lag = LagMonitor(self.transport, [self.group], self._observers, self.lag_interval).start()
            try:
                self._loop(consumer)
            finally:
                if self._lag is not None:
                    self._lag.stop()
                consumer.close()
                self._table.runner.close()
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
            if t.is_alive():
                self._quit.set()  # a settlement still retrying gives up: the broker redelivers
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
    def lag(self) -> int | None:
        """Messages waiting for the group at the last reading (every ``lag_interval`` seconds while it runs);
        ``None`` before the first, when the broker cannot tell, or with ``lag_interval=0``."""
        return None if self._lag is None else self._lag.latest(self.group)

    @property
    def started(self) -> bool:
        """Whether :meth:`start` or :meth:`run` was called (the listener may have stopped since)."""
        return self._loop_thread is not None or self._running.locked() or self._closed.is_set()

    @property
    def stopped(self) -> bool:
        """Whether the listener's loop has ended (after :meth:`close`, or a fatal error when joining)."""
        return self._closed.is_set()

    def _open(self, names: Sequence[str] | None) -> Consumer:
        """Join the group, waiting out a broker that cannot be reached (until :meth:`stop`)."""
        # Passed only when False, so that a backend written before the keyword existed keeps working.
        extra = {} if self.history else {"history": False}
        return retry_call(
            lambda: self.transport.consumer(self.group, names, **extra), stop=self._stop, backoff=_JOIN_BACKOFF
        )

    def _loop(self, consumer: Consumer) -> None:
        self._lanes = self._start_lanes()
        in_flight: dict[int, Delivery] = {}
        consumer.bind_settler(functools.partial(self._settle_for, consumer, in_flight))
        lease = consumer.lease_seconds
        next_extend = time.monotonic() + (lease / 3 if lease else 1e18)
        reconnect = Retrier(_RECEIVE_BACKOFF, self._stop)
        rr = 0
        flushed = False
        window = min(self.max_in_flight, consumer.window or self.max_in_flight)
        try:
            while not self._stop.is_set():
                full = len(in_flight) >= window
                if full and not flushed and self._table.has_batches:
                    self._lanes.flush()  # nothing more can come until something is settled: run what is held
                    flushed = True
                self._settle(consumer, in_flight, block=full)
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
                    reconnect.wait()
                    continue
                reconnect.reset()
                if got:
                    flushed = False  # more came: a full window again runs what the lanes hold then
                    self._observers.received([d.envelope for d in got if d.envelope is not None], self.group)
                now = time.monotonic()
                # One hand-over per lane and receive, not per message: waking a lane thread costs more than
                # handling a small message.
                batches: dict[int, list[Delivery]] = {}
                for d in got:
                    in_flight[id(d)] = d
                    key = d.ordering_key
                    if key is None:
                        lane = rr % self.concurrency
                        rr += 1
                    else:
                        lane = zlib.crc32(key.encode()) % self.concurrency
                    batch = batches.get(lane)
                    if batch is None:
                        batches[lane] = [d]
                    else:
                        batch.append(d)
                for lane, deliveries in batches.items():
                    self._lanes.put(lane, deliveries)
                if lease and now >= next_extend:
                    consumer.extend(list(in_flight.values()), lease)
                    next_extend = now + lease / 3
        finally:
            self._drain(consumer, in_flight)

    def _drain(self, consumer: Consumer, in_flight: dict[int, Delivery]) -> None:
        deadline = time.monotonic() + self.drain_timeout
        self._lanes.stop()
        while in_flight and time.monotonic() < deadline:
            self._settle(consumer, in_flight, block=True)
        self._lanes.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()  # lanes skip work still queued: it is released below and may go elsewhere
        self._settle(consumer, in_flight, block=False)
        if in_flight:
            log.warning("listener %s: %d messages unfinished after drain; released", self.group, len(in_flight))
            leftovers = list(in_flight.values())
            for d in leftovers:
                self._released(d)
            in_flight.clear()
            try:
                consumer.release(leftovers)
            except ConnectionLost:
                log.warning("listener %s: could not release on close; they come back after their lease", self.group)

    def _settle_for(self, consumer: Consumer, in_flight: dict[int, Delivery]) -> None:
        """Settle the handlers' results, waiting briefly for one (called by the consumer, from within receive)."""
        self._settle(consumer, in_flight, block=bool(in_flight))

    def _settle(self, consumer: Consumer, in_flight: dict[int, Delivery], *, block: bool) -> None:
        items: list[_Result] = []
        try:
            if block:
                got = self._results.get(timeout=0.05)
                items.extend(got) if isinstance(got, list) else items.append(got)
            while True:
                got = self._results.get_nowait()
                items.extend(got) if isinstance(got, list) else items.append(got)
        except queue.Empty:
            pass
        if not items:
            return
        acks, releases = [], []
        for d, settlement in items:
            in_flight.pop(id(d), None)
            if settlement.action is Settle.ACK:
                acks.append(d)
            elif settlement.action is Settle.RELEASE:
                releases.append(d)
                self._released(d)
            else:
                letter = settlement.letter
                assert letter is not None
                self._with_reconnect(functools.partial(consumer.dead_letter, d, letter))
                self._observers.dead_lettered(letter)
        if acks:
            self._with_reconnect(lambda: consumer.ack(acks))
        if releases:
            self._with_reconnect(lambda: consumer.release(releases))

    def _settle_failed(self, exc: BaseException) -> None:
        log.warning("listener %s: settling failed (%s); retrying", self.group, exc)

    def _released(self, d: Delivery) -> None:
        """Tell the observers a delivery goes back unfinished (it settles the in-flight gauge too)."""
        if d.envelope is not None:
            self._observers.handled(d.envelope, self.group, Outcome.RELEASED, 0.0, d.attempt)

    def _with_reconnect(self, fn: Callable[[], None]) -> None:
        """Settle even across a short broker outage; if the broker stays away the delivery comes back later."""
        try:
            retry_call(
                fn, stop=self._quit, backoff=_SETTLE_BACKOFF, attempts=_SETTLE_ATTEMPTS, on_retry=self._settle_failed
            )
        except ConnectionLost:
            log.error("listener %s: gave up settling; the broker will redeliver", self.group)

    # --- the worker lanes ----------------------------------------------------------------------------------

    def _start_lanes(self) -> Lanes:
        """Threads; tasks on the runner's event loop when a handler is ``async def`` (pubsubkit.async_lanes)."""
        if self._table.has_async:
            from pubsubkit.async_lanes import AsyncLanes

            loop = self._table.runner.loop()
            return AsyncLanes(
                self._pipeline, loop, self.concurrency, self._results, self._abandon, self._batches, self._table
            )
        return ThreadLanes(self._pipeline, self._batches, self._table, self.concurrency, self._results, self._abandon)
