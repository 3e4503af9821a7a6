"""Retry policy: how many attempts, how long between them, and which errors are worth retrying."""

from __future__ import annotations

import random

import attrs

from pubsubkit.errors import ConfigError, DecodeError, FatalError

__all__ = ["RetryPolicy"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigError(f"RetryPolicy.{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter.

    :ivar attempts: total attempts of a handler per message, the first included; after the last one the
        message is dead-lettered.
    :ivar initial: delay before the second attempt, in seconds.
    :ivar multiplier: each further delay is this many times the one before.
    :ivar max_delay: the longest delay, in seconds.
    :ivar jitter: each delay is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
    :ivar fatal: exception types never retried: the message is dead-lettered at once.
    """

    attempts: int = 5
    initial: float = attrs.field(default=0.05, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_delay: float = attrs.field(default=10.0, validator=_positive)
    jitter: float = attrs.field(default=0.2, validator=_positive)
    fatal: tuple[type[BaseException], ...] = (FatalError, DecodeError)

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.jitter > 1:
            raise ConfigError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1) before the next one."""
        base = min(self.max_delay, self.initial * self.multiplier ** max(0, attempt - 1))
        if self.jitter:
            base *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return float(max(0.0, min(base, self.max_delay)))

    def is_fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, self.fatal)
