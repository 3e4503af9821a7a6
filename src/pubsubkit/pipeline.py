"""What happens to one delivery: the per-message pipeline, from a delivery to its :class:`Settlement`.

In order: a revoked delivery is released; an undecodable one dead-lettered as poison; one without handlers
acknowledged (skipped); one the group's inbox has acknowledged (duplicate); else it is decoded and its
handlers run, each through the middleware chain, retried with backoff until they succeed (ack), fail for
the last time or fatally (dead letter), or the listener stops (release). The pipeline only decides and
tells the observers; the listener runtime settles with the broker.
"""

from __future__ import annotations

import enum
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

import attrs

from pubsubkit.codec import Codec
from pubsubkit.coroutines import not_awaited
from pubsubkit.envelope import Envelope
from pubsubkit.errors import AlreadyProcessed, DecodeError
from pubsubkit.handlers import Handler, HandlerTable
from pubsubkit.message import Message, inbox_id
from pubsubkit.plugin.observers import Observers, Outcome
from pubsubkit.retry import RetryPolicy
from pubsubkit.store import MarkProcessed, Store
from pubsubkit.transport import DeadLetter, Delivery

__all__ = ["ACK", "RELEASE", "Pipeline", "Settle", "Settlement"]

log = logging.getLogger("pubsubkit.listener")

#: How many distinct skipped event names a listener logs (each once); more are not remembered.
_SKIPPED_NAMES_LOGGED = 1000


class Settle(enum.Enum):
    """How the runtime settles a delivery with the broker."""

    ACK = "ack"
    DEAD = "dead"
    RELEASE = "release"


@attrs.frozen
class Settlement:
    """The pipeline's verdict on one delivery: how to settle it, and the dead letter for :attr:`Settle.DEAD`."""

    action: Settle
    letter: DeadLetter | None = None


ACK = Settlement(Settle.ACK)
RELEASE = Settlement(Settle.RELEASE)


class Pipeline:
    """Turns deliveries of ``group`` into settlements (see the module docstring). Thread-safe: each worker
    lane calls :meth:`process` for its own deliveries.

    :param stop: set when the listener stops: a retry waiting its backoff gives the delivery back instead.
    """

    def __init__(
        self,
        group: str,
        handlers: HandlerTable,
        codec: Codec,
        retry: RetryPolicy,
        observers: Observers,
        stop: threading.Event,
        store: Store | None = None,
    ) -> None:
        self.group = group
        self.handlers = handlers
        self.codec = codec
        self.retry = retry
        self.observers = observers
        self.stop = stop
        self.store = store
        # Without middleware (None), the handler is called directly; ``acall`` runs async handlers on the loop.
        self.call, self.acall = observers.handler_chains(group)
        self.handled = 0  # messages whose handlers all ran to completion here
        self._skipped_names: set[str] = set()
        self._lock = threading.Lock()

    def process(self, d: Delivery) -> Settlement:
        """The settlement of one delivery, after running its handlers (with their retries) if it has any."""
        routed = self.route(d)
        if isinstance(routed, Settlement):
            return routed
        env, handlers = routed
        if self.store is not None and self.store.inbox_contains(self.group, env.id):
            return self.duplicate(d, env)
        event = self.decode(d, env)
        if isinstance(event, Settlement):
            return event
        attempt = d.attempt
        while True:
            start = time.monotonic()
            try:
                duplicate = self._run_handlers(handlers, event, env, attempt)
            except Exception as exc:
                verdict = self.failed(d, env, exc, attempt, time.monotonic() - start)
                if verdict is not None:
                    return verdict
                if self._backoff(d, self.retry.delay(attempt)):
                    return RELEASE
                attempt += 1
                continue
            return self.succeeded(env, duplicate, attempt, time.monotonic() - start)

    # --- the steps, shared with the async lanes (pubsubkit.async_lanes) --------------------------------------

    def route(self, d: Delivery) -> Settlement | tuple[Envelope, Sequence[Handler]]:
        """The delivery's envelope and handlers, or its settlement when it has no handlers to run."""
        if d.revoked is not None and d.revoked.is_set():
            return RELEASE  # no longer the consumer's: its new owner handles it
        env = d.envelope
        if env is None:
            return self._dead(d, "poison", d.error or "undecodable message", d.attempt)
        handlers = self.handlers.lookup(env.name)
        if not handlers:
            self._skipped(env.name)
            self.observers.handled(env, self.group, Outcome.SKIPPED, 0.0, d.attempt)
            return ACK
        return env, handlers

    def duplicate(self, d: Delivery, env: Envelope) -> Settlement:
        """The settlement of a delivery the group's inbox has already acknowledged."""
        self.observers.handled(env, self.group, Outcome.DUPLICATE, 0.0, d.attempt)
        return ACK

    def decode(self, d: Delivery, env: Envelope) -> Any:
        """The decoded event, or the dead letter's settlement of a payload that does not decode."""
        try:
            return self.codec.decode(env)
        except DecodeError as exc:
            return self._dead(d, "poison", str(exc), d.attempt)

    def failed(self, d: Delivery, env: Envelope, exc: Exception, attempt: int, took: float) -> Settlement | None:
        """After a failed attempt: the dead letter's settlement, or ``None`` when the message is retried."""
        if self.retry.is_fatal(exc) or attempt >= self.retry.attempts:
            return self.gave_up(d, env, exc, attempt, took)
        self.observers.handled(env, self.group, Outcome.RETRY, took, attempt)
        return None

    def gave_up(self, d: Delivery, env: Envelope, exc: Exception, attempt: int, took: float) -> Settlement:
        """The dead letter's settlement of a message whose handler failed for the last time (reason ``fatal``
        for a fatal error, else ``failed``)."""
        self.observers.handled(env, self.group, Outcome.FAILED, took, attempt)
        reason = "fatal" if self.retry.is_fatal(exc) else "failed"
        return self._dead(d, reason, _with_trace(exc, f"{type(exc).__name__}: {exc}"), attempt)

    def succeeded(self, env: Envelope, duplicate: bool, attempt: int, took: float) -> Settlement:
        """After the handlers ran to their end (or another delivery had done all the work)."""
        self.observers.handled(env, self.group, Outcome.DUPLICATE if duplicate else Outcome.OK, took, attempt)
        if not duplicate:
            self.handled += 1
        return ACK

    def _backoff(self, d: Delivery, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; ``True`` when the listener stops or the delivery is revoked."""
        if d.revoked is None:
            return self.stop.wait(delay)
        deadline = time.monotonic() + delay
        while not d.revoked.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.stop.wait(min(left, 0.05)):
                return True
        return True

    def _run_handlers(self, handlers: Sequence[Handler], event: Any, env: Envelope, attempt: int) -> bool:
        """Run each handler not yet recorded in the inbox; ``True`` if another delivery did all the work."""
        store = self.store
        count = len(handlers)
        for i, fn in enumerate(handlers):
            record = inbox_id(env.id, i, count)
            if store is not None and i < count - 1 and store.inbox_contains(self.group, record):
                continue  # done by an earlier attempt
            msg = Message(env, self.group, attempt, store, record)
            try:
                if self.call is None:
                    result = fn(event, msg)
                    if result is not None and inspect.isawaitable(result):
                        raise not_awaited(fn, result)
                else:
                    self.call(fn, event, msg)
                if store is not None and not msg.recorded:
                    store.commit([MarkProcessed(self.group, record)])
            except AlreadyProcessed:
                if i == count - 1:
                    return True
                # another delivery of this message finished this handler first: go on with the next one
        return False

    def _skipped(self, name: str) -> None:
        """Log, once per name, that this group has no handler for ``name`` (its messages are acknowledged)."""
        if name in self._skipped_names or len(self._skipped_names) >= _SKIPPED_NAMES_LOGGED:
            return
        with self._lock:
            if name in self._skipped_names:
                return
            self._skipped_names.add(name)
        log.info(
            "listener %s: no handler for event name %r; its messages are acknowledged and skipped (logged once"
            " per name; a class whose @pubsubkit.event name differs from the wire name is one cause)",
            self.group,
            name,
        )

    def _dead(self, d: Delivery, reason: str, error: str, attempts: int) -> Settlement:
        env = d.envelope
        first_line = error.partition("\n")[0][:300]
        log.warning(
            "listener %s: dead-lettered %s %s (%s after %d attempt%s): %s",
            self.group,
            env.name if env is not None else "an undecodable message",
            env.id if env is not None else "",
            reason,
            attempts,
            "" if attempts == 1 else "s",
            first_line,
        )
        letter = DeadLetter(
            group=self.group,
            reason=reason,
            error=error,
            attempts=attempts,
            original_name=env.name if env is not None else None,
            envelope=env,
            raw=d.raw,
        )
        return Settlement(Settle.DEAD, letter)


def _with_trace(exc: BaseException, error: str) -> str:
    tb = "".join(traceback.format_exception(exc)[-3:])
    return f"{error}\n{tb}"[:4000]
