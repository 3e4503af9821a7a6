"""What a message backend implements: a :class:`Transport` that publishes and opens :class:`Consumer`\\ s.

The listener runtime (:mod:`pubsubkit.listener`) is shared by every backend: it decodes, dispatches,
retries, dead-letters, orders per key and bounds in-flight work. A backend only moves envelopes:

- :meth:`Transport.publish` returns only when the broker has confirmed every message, or raises
  :class:`~pubsubkit.errors.PublishError`.
- :meth:`Consumer.receive` hands out deliveries; each stays the consumer's until :meth:`Consumer.ack`,
  :meth:`Consumer.release` or :meth:`Consumer.dead_letter` settles it. An unsettled delivery comes back
  (to this or another member of the group) after a crash or :meth:`Consumer.close`.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from pubsubkit.envelope import Envelope

__all__ = ["BrokerCapabilities", "Channel", "Consumer", "DeadLetter", "Delivery", "Transport"]


@attrs.frozen
class BrokerCapabilities:
    """What a message backend honestly can do. Docs and the conformance suite read these flags.

    :ivar ordered: messages with one key are delivered in publish order within a consumer group.
    :ivar persistent: messages survive a restart of the broker.
    :ivar consumer_groups: several groups each get every message; members of one group share them.
    :ivar replay: a new consumer group sees messages published before it first subscribed (a log).
    :ivar multi_process: producers and consumers may live in different processes.
    :ivar dead_letter_store: dead letters can be listed and replayed through the transport.
    :ivar restartable: the conformance suite may restart the server (needs the test-server scripts).
    """

    ordered: bool = True
    persistent: bool = True
    consumer_groups: bool = True
    replay: bool = False
    multi_process: bool = True
    dead_letter_store: bool = False
    restartable: bool = False

    def as_dict(self) -> dict[str, bool]:
        """The flags by name."""
        return attrs.asdict(self)


@attrs.frozen
class Delivery:
    """One received message, owned by the consumer until settled.

    :ivar envelope: the decoded envelope, or ``None`` when the bytes could not be parsed (poison).
    :ivar raw: the undecodable bytes when ``envelope`` is ``None``.
    :ivar error: why the envelope could not be parsed.
    :ivar attempt: how many times this message has been delivered to the group, this time included.
    :ivar token: backend-private handle (offset, delivery tag, receipt handle, row id).
    :ivar revoked: set by the consumer once the delivery is no longer its own (a Kafka partition revoked by a
        rebalance): the listener starts no new attempt of it and gives it back, and its new owner handles it.
    """

    envelope: Envelope | None
    attempt: int = 1
    token: Any = None
    raw: bytes | None = None
    error: str | None = None
    revoked: threading.Event | None = None

    @property
    def ordering_key(self) -> str | None:
        """The key whose messages the listener keeps in order (the envelope's key), if any."""
        return self.envelope.key if self.envelope is not None else None


@attrs.frozen
class DeadLetter:
    """Why a message was given up on; stored beside the original message in the dead-letter destination."""

    group: str
    reason: str  # "poison", "failed", "fatal"
    error: str
    attempts: int
    original_name: str | None
    envelope: Envelope | None
    raw: bytes | None = None
    dead_at: datetime | None = None
    id: str | None = None


@attrs.frozen
class Channel:
    """Where a broker carries the events of one name, as an AsyncAPI document describes it
    (:meth:`Transport.channel`).

    :ivar address: the channel's address at the broker (a topic, a routing key, a queue's name...).
    :ivar bindings: the AsyncAPI channel bindings of the broker's protocol, e.g. ``{"kafka": {"topic": ...}}``.
    :ivar headers: the headers the broker's wire format adds to every message, by name, with what each holds.
    :ivar payload_in: where the message's body holds the event's payload, when the body wraps it
        (``{"eventName": ..., "payload": {...}}``: ``"payload"``); ``None``: the body is the payload.
    :ivar name_in: where such a wrapping body names the event (``"eventName"``).
    """

    address: str
    bindings: Mapping[str, Any] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)
    payload_in: str | None = None
    name_in: str | None = None


class Consumer(abc.ABC):
    """A member of a consumer group, as the listener runtime sees it. Used from one thread at a time.

    :cvar lease_seconds: how long a delivery stays this consumer's without :meth:`extend` (a visibility
        timeout); the listener extends the deliveries in flight every third of it. ``None``: no lease, a
        delivery is the consumer's until settled.
    :cvar window: the most unsettled deliveries the broker hands this consumer at a time (RabbitMQ's prefetch);
        ``None``: only the listener's ``max_in_flight`` limits them. A listener whose window is full runs the
        batches its lanes hold rather than wait their ``max_wait`` for messages that cannot come.
    """

    lease_seconds: float | None = None
    window: int | None = None

    @abc.abstractmethod
    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Wait up to ``timeout`` seconds for at least one message; return at most ``max_messages``."""

    @abc.abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Settle deliveries as handled: they are never delivered to this group again."""

    @abc.abstractmethod
    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give deliveries back unhandled, for redelivery as soon as possible (shutdown, cancelled work)."""

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, letter: DeadLetter) -> None:
        """Move a delivery to the dead-letter destination and settle it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group; unsettled deliveries go back to it. Idempotent."""

    def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:  # noqa: B027 - optional hook
        """Keep long-running deliveries owned (visibility timeout, lease); a no-op where not needed."""

    def set_window(self, max_in_flight: int) -> None:  # noqa: B027 - optional hook
        """Called by the listener once, after joining and before the first :meth:`receive`, with its
        ``max_in_flight``. A consumer whose broker pushes messages ahead (a prefetch) takes no more than that at
        a time and says so in :attr:`window`, so that the group's other members get the rest; the default does
        nothing."""

    def keep_alive(self) -> None:  # noqa: B027 - optional hook
        """Called instead of :meth:`receive` while the listener has no room for more messages: serve the
        connection (a Kafka consumer's rebalance callbacks run only while it polls) without taking any."""

    def bind_settler(self, settle: Callable[[], None]) -> None:  # noqa: B027 - optional hook
        """Take the listener's ``settle()``: it settles, through this consumer, the deliveries whose handlers
        have finished (ack, release, dead letter), waiting briefly (about 50 ms) for one when none has. A
        consumer that must hand work back in the middle of :meth:`receive` (a Kafka partition revoked by a
        rebalance) calls it there until the deliveries in flight are settled, so that the new owner does not
        handle them again."""


class Transport(abc.ABC):
    """A connection to one message backend, shared by the emitters and listeners of a process."""

    capabilities: BrokerCapabilities = BrokerCapabilities()
    url: str = ""

    @abc.abstractmethod
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Store every envelope at the broker, in order; return once all are confirmed or raise PublishError."""

    @abc.abstractmethod
    def consumer(self, group: str, names: Collection[str] | None, *, history: bool = True) -> Consumer:
        """Join consumer ``group``, interested in ``names`` (``None``: every name). May deliver other names.

        ``history``: a group that joins for the first time starts at the earliest retained message (True) or at
        the messages published from now on (False); a group that exists resumes where it is either way. Brokers
        without the ``replay`` capability keep no history and start from now regardless.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~pubsubkit.errors.ConnectionLost` when the broker cannot be reached."""

    def lag(self, group: str) -> Mapping[str, int] | None:
        """How many messages wait for ``group``, by partition or queue, as the broker can tell without taking
        any (offsets, queue depths); ``None`` when it cannot. Called every ``lag_interval`` seconds by a running
        listener, never per message."""
        return None

    def channel(self, name: str) -> Channel:
        """Where the events called ``name`` travel, for an AsyncAPI document (:mod:`pubsubkit.asyncapi`); the
        default is an address of the event's name without bindings. A backend whose convention differs (one
        topic for every name, an exchange) says so here."""
        return Channel(address=name)

    def dead_letters(self, group: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """List stored dead letters (where ``capabilities.dead_letter_store``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list dead letters")

    def replay_dead_letter(self, letter_id: str) -> None:
        """Publish a dead letter's original message again and remove it from the dead-letter store."""
        raise NotImplementedError(f"{type(self).__name__} cannot replay dead letters")

    def forget_group(self, group: str) -> bool:
        """Remove what the broker keeps for ``group`` (its position, its queues; its dead letters stay): a group
        that joins under that name again is a new one. Returns whether the group existed."""
        raise NotImplementedError(f"{type(self).__name__} cannot remove a consumer group")

    def reset_group(self, group: str, since: datetime | None = None) -> int:
        """Move ``group`` back so that it receives again every retained message (``since`` None) or those that
        occurred at or after ``since``; returns how many it will receive again. Only brokers with the ``replay``
        capability can; what the group's members hold is handed out again (an inbox absorbs the repeats)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot move a group back: it keeps no log to replay (capability replay)"
        )
