"""The emitter retries publish failures within retry_for, except those that say retrying cannot help."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pytest

import pubsubkit
from pubsubkit.codec import Codec
from pubsubkit.emitter import Emitter
from pubsubkit.envelope import Envelope, new_id
from pubsubkit.events import EventRegistry
from pubsubkit.transport import Consumer, Transport


class Final(pubsubkit.PublishError):
    retryable = False


class Failing(Transport):
    """Fails the first ``failures`` publishes with ``error``."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        raise NotImplementedError

    def close(self) -> None:
        pass


def envelope() -> Envelope:
    return Envelope(id=new_id(), name="x", payload=b"{}")


@pytest.mark.parametrize("error", [pubsubkit.PublishError("not confirmed"), pubsubkit.ConnectionLost("gone")])
def test_retryable_errors_are_retried(error: Exception) -> None:
    t = Failing(error, 2)
    Emitter(t, Codec(EventRegistry()), retry_for=10).publish([envelope()])
    assert t.calls == 3


def test_a_publish_error_that_is_not_retryable_is_raised_at_once() -> None:
    t = Failing(Final("returned as unroutable"), 5)
    with pytest.raises(Final):
        Emitter(t, Codec(EventRegistry()), retry_for=10).publish([envelope()])
    assert t.calls == 1
