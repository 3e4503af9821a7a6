"""Waiting to try again: the one backoff primitive, and the retry policy of handlers.

Every loop of pubsubkit that waits before trying again (a publish after a lost connection, the relay, the
listener reconnecting or settling, a backend's own retries) waits with a :class:`Backoff` through a
:class:`Retrier`, on a stop event: closing what runs the loop ends the wait at once.

>>> stop = threading.Event()
>>> retry_call(lambda: 42, retry_on=(ConnectionLost,), stop=stop)
42
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import attrs

from pubsubkit.errors import ConfigError, ConnectionLost, DecodeError, FatalError

__all__ = ["Backoff", "Retrier", "RetryPolicy", "retry_call"]

T = TypeVar("T")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class Backoff:
    """Exponentially growing waits: ``initial``, then ``multiplier`` times the one before, at most ``max_delay``
    seconds, each multiplied by a random factor in ``[1 - jitter, 1 + jitter]``."""

    initial: float = attrs.field(default=0.1, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_delay: float = attrs.field(default=5.0, validator=_positive)
    jitter: float = attrs.field(default=0.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.jitter > 1:
            raise ConfigError(f"Backoff.jitter must be within 0..1, got {self.jitter}")

    def base(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (from 1), before jitter."""
        return float(min(self.max_delay, self.initial * self.multiplier ** max(0, attempt - 1)))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1) before the next one."""
        base = self.base(attempt)
        if self.jitter:
            base *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return float(max(0.0, min(base, self.max_delay)))


class Retrier:
    """The waits of one retrying loop: each :meth:`wait` waits the next delay of ``backoff`` on ``stop``.

    :param deadline: a :func:`time.monotonic` time after which :meth:`wait` no longer waits (returns ``False``).
    """

    def __init__(self, backoff: Backoff, stop: threading.Event, deadline: float | None = None) -> None:
        self.backoff = backoff
        self.stop = stop
        self.deadline = deadline
        self.failures = 0

    def wait(self) -> bool:
        """Wait before the next try; ``True`` to try again, ``False`` when stopped or past the deadline."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            return False
        return not self.stop.wait(delay)

    @property
    def next_delay(self) -> float:
        """The wait after the next failure, without jitter (for log messages)."""
        return self.backoff.base(self.failures + 1)

    def reset(self) -> None:
        """Start again from the first delay (after a success)."""
        self.failures = 0


def retry_call(
    fn: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...] = (ConnectionLost,),
    stop: threading.Event,
    backoff: Backoff = Backoff(),
    deadline: float | None = None,
    attempts: int | None = None,
    retryable: Callable[[BaseException], bool] | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``fn()``, tried again after an error of ``retry_on`` (for which ``retryable`` holds, when given).

    Waits ``backoff``'s delays on ``stop``; gives up, raising the last error, when ``stop`` is set, when the
    next try would start after ``deadline`` (a :func:`time.monotonic` time) or after ``attempts`` tries.
    ``on_retry`` is told of each error that is retried.
    """
    retrier: Retrier | None = None  # made at the first failure: the usual call succeeds at once
    while True:
        try:
            return fn()
        except retry_on as exc:
            if retrier is None:
                retrier = Retrier(backoff, stop, deadline)
            if retryable is not None and not retryable(exc):
                raise
            if attempts is not None and retrier.failures + 1 >= attempts:
                raise
            if on_retry is not None:
                on_retry(exc)
            if not retrier.wait():
                raise


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter.

    :ivar attempts: total attempts of a handler per message, the first included; after the last one the
        message is dead-lettered.
    :ivar initial: delay before the second attempt, in seconds.
    :ivar multiplier: each further delay is this many times the one before.
    :ivar max_delay: the longest delay, in seconds.
    :ivar jitter: each delay is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
    :ivar fatal: exception types never retried: the message is dead-lettered at once. By default
        :class:`~pubsubkit.errors.FatalError`, :class:`~pubsubkit.errors.DecodeError` and
        :class:`~pubsubkit.errors.ConfigError` (such as ``msg.unit_of_work()`` on a listener without a store),
        which no retry can cure.
    """

    attempts: int = 5
    initial: float = attrs.field(default=0.05, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_delay: float = attrs.field(default=10.0, validator=_positive)
    jitter: float = attrs.field(default=0.2, validator=_positive)
    fatal: tuple[type[BaseException], ...] = (FatalError, DecodeError, ConfigError)

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.jitter > 1:
            raise ConfigError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    @property
    def backoff(self) -> Backoff:
        """The waits between attempts, as a :class:`Backoff`."""
        return Backoff(self.initial, self.multiplier, self.max_delay, self.jitter)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1) before the next one."""
        return self.backoff.delay(attempt)

    def is_fatal(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one of :attr:`fatal`: no retry, the message is dead-lettered at once."""
        return isinstance(exc, self.fatal)
